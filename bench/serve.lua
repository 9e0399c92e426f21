-- serve.lua - wrk script for bench-serve (bench/serve_bench.py): POSTs the
-- bodies of $BENCH_BODIES (one JSON body a line) to /search in turn, waits
-- $BENCH_DELAY_MS after each answer on a connection (0: back to back), and
-- prints one "BENCH {...}" JSON line with the counts and latency percentiles.
local reqs = {}
local i = 0
local delay_ms = tonumber(os.getenv("BENCH_DELAY_MS") or "0")
local non200 = 0

function init(args)
  local headers = {["Content-Type"] = "application/json"}
  for line in io.lines(os.getenv("BENCH_BODIES")) do
    reqs[#reqs + 1] = wrk.format("POST", "/search", headers, line)
  end
  i = math.random(#reqs)
end

function request()
  i = i % #reqs + 1
  return reqs[i]
end

if delay_ms > 0 then
  function delay()
    return delay_ms
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
