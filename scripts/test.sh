#!/usr/bin/env bash
# test.sh - README command two (and .ci/run): installs what is missing, then
# builds with warnings as errors and runs every test, twice: a normal build
# and an ASan+UBSan build; the threaded tests also run under TSan.
# Long benchmarks and fuzzing have their own targets (see README).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/deps.sh test
jobs=$(nproc)
run_tier() { # name, ctest label regex or "", cmake args...
  local name=$1 labels=$2; shift 2
  echo "== tier: $name"
  cmake -S . -B "build-test-$name" -DPEFA_WERROR=ON -DPEFA_BUILD_BENCH=OFF "$@" >/dev/null
  cmake --build "build-test-$name" -j"$jobs" >"build-test-$name.log" 2>&1 || { cat "build-test-$name.log"; return 1; }
  (cd "build-test-$name" && ctest --output-on-failure -j"$jobs" ${labels:+-L "$labels"})
}
run_tier release "" -DCMAKE_BUILD_TYPE=RelWithDebInfo
run_tier asan "" -DCMAKE_BUILD_TYPE=Debug -DPEFA_SANITIZE=ON
TSAN_OPTIONS="halt_on_error=1" run_tier tsan threads -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPEFA_TSAN=ON
# README command one, as a user runs it (its figures are those README quotes)
echo "== README command one: scripts/demo.sh"
scripts/demo.sh > build-test-demo.log 2>&1 || { cat build-test-demo.log; echo "scripts/demo.sh failed"; exit 1; }
grep -q "PEFA tuned, no flags" build-test-demo.log || { cat build-test-demo.log; echo "scripts/demo.sh printed no figures"; exit 1; }
grep -A6 "^== 300 test queries" build-test-demo.log | tail -n +2 | while IFS= read -r line; do
  [ -z "$line" ] || grep -Fxq -- "$line" README.md || { echo "README does not show the demo's line: $line"; exit 1; }
done
echo "scripts/demo.sh: OK, its figures are README's"
