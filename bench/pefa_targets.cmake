# PEFA benchmarks (not part of ctest), included from bench/CMakeLists.txt.
#   bench-pefa : ERM / PEFA-XS / PEFA-XL single-thread latency on SciFact, as ratios
#   bench-y    : sizes and row-access cost of Y encodings (docs/y-encoding.md)
#   bench-open : open time and resident memory, 4 MB vs 4 GB index (needs ~4 GB free)
set(PEFA_BENCH_DATA "${CMAKE_SOURCE_DIR}/build/bench-data" CACHE PATH "GloVe cache (bench/fetch_glove.sh)")
foreach(b pefa_bench y_bench xs_graph_bench)
  add_executable(${b} ${CMAKE_CURRENT_SOURCE_DIR}/${b}.c)
  target_compile_options(${b} PRIVATE ${PEFA_WARNINGS})
  target_include_directories(${b} PRIVATE ${CMAKE_SOURCE_DIR}/libidx ${CMAKE_SOURCE_DIR}/tools)
  target_link_libraries(${b} PRIVATE pefa_toolutil pefa_static)
endforeach()
add_executable(bench_open ${CMAKE_SOURCE_DIR}/tests/bench_open.c)
target_compile_options(bench_open PRIVATE ${PEFA_WARNINGS})
target_link_libraries(bench_open PRIVATE pefa_static)

set(_sf ${CMAKE_SOURCE_DIR}/data/scifact)
add_custom_target(bench-pefa
  COMMAND $<TARGET_FILE:pefa-build> -q -o ${CMAKE_BINARY_DIR}/bench-scifact.pefa
          --passages ${_sf}/passages.npy --passage-ids ${_sf}/passage_ids.txt
          --queries ${_sf}/train_queries.npy --query-ids ${_sf}/train_query_ids.txt
          --qrels ${_sf}/train_qrels.tsv --threads 2
  COMMAND $<TARGET_FILE:pefa_bench> ${CMAKE_BINARY_DIR}/bench-scifact.pefa ${_sf}/test_queries.npy 50
  DEPENDS pefa_bench pefa-build USES_TERMINAL
  COMMENT "PEFA latency: ERM vs PEFA-XS vs PEFA-XL (SciFact, one thread)")
add_custom_target(bench-y
  COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/fetch_glove.sh ${PEFA_BENCH_DATA}
  COMMAND ${CMAKE_COMMAND} -E env PEFA_BENCH_DATA=${PEFA_BENCH_DATA} ${PEFA_BENCH_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/make_y_pairs.py
  COMMAND $<TARGET_FILE:y_bench> ${PEFA_BENCH_DATA}/y_scifact.tsv 809 5183
  COMMAND $<TARGET_FILE:y_bench> ${PEFA_BENCH_DATA}/y_glove.tsv 10000 331479
  COMMAND $<TARGET_FILE:y_bench> ${PEFA_BENCH_DATA}/y_glove_clicks.tsv 10000 331479
  DEPENDS y_bench USES_TERMINAL
  COMMENT "Y encodings: size and row access")
add_custom_target(bench-open
  COMMAND $<TARGET_FILE:bench_open> ${CMAKE_BINARY_DIR}
  DEPENDS bench_open USES_TERMINAL
  COMMENT "open cost: 4 MB vs 4 GB")

# first_query: open + first answer from a cold page cache (small vs large index)
add_executable(first_query ${CMAKE_CURRENT_SOURCE_DIR}/first_query.c)
target_compile_options(first_query PRIVATE ${PEFA_WARNINGS})
target_include_directories(first_query PRIVATE ${CMAKE_SOURCE_DIR}/libidx ${CMAKE_SOURCE_DIR}/tools)
target_link_libraries(first_query PRIVATE pefa_toolutil pefa_static)

# bench-tune: what pefa-build --tune adds to a 300k + 300k build (issue 8's cost target)
add_custom_target(bench-tune
  COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/tune_cost.sh $<TARGET_FILE_DIR:pefa-build> ${PEFA_BENCH_DATA} 2
  DEPENDS pefa-build USES_TERMINAL
  COMMENT "tuning cost: 300k passages, 300k noisy training queries")

# bench-scaling: the build scaling table of docs/scaling.md (synthetic 100k,
# 300k, 1M x d100 and 100k x d768; then 1M as 2 and 4 shards). About an hour
# on 2 cores; the collections are made once in PEFA_BENCH_DATA (~2 GB).
add_custom_target(bench-scaling
  COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/scaling.sh $<TARGET_FILE_DIR:pefa-build> ${PEFA_BENCH_DATA} 2
  DEPENDS pefa-build pefa-query pefa-shardset USES_TERMINAL
  COMMENT "build scaling table and shard overhead (docs/scaling.md)")

# bench-serve: pefa-serve under load with wrk (bench/serve_bench.py), on a
# 331k-row GloVe index built once into <build>/bench-serve/. bench-serve-quick
# runs 3 s per point (about a minute); bench-serve 60 s per point (~20 min).
if(PEFA_SERVE)
  foreach(v full quick)
    if(v STREQUAL "quick")
      set(_name bench-serve-quick)
      set(_flag --quick)
    else()
      set(_name bench-serve)
      set(_flag "")
    endif()
    add_custom_target(${_name}
      COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/fetch_glove.sh ${PEFA_BENCH_DATA}
      COMMAND ${PEFA_BENCH_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/serve_bench.py --bin ${CMAKE_BINARY_DIR}/tools
              --data ${PEFA_BENCH_DATA} --out ${CMAKE_BINARY_DIR}/bench-serve ${_flag}
      DEPENDS pefa-serve pefa-build pefa-query USES_TERMINAL
      COMMENT "pefa-serve load benchmark (wrk, GloVe-100 331k rows)")
  endforeach()
endif()
