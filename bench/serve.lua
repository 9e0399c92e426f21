-- serve.lua - wrk script for bench-serve (bench/serve_bench.py): POSTs the
-- bodies of $BENCH_BODIES (one JSON body a line) to /search in turn; after
-- each answer a connection waits a random time, exponential with mean
-- $BENCH_DELAY_MS (0: back to back), so that many connections together send
-- at a steady rate instead of in bursts; prints one "BENCH {...}" JSON line
-- with the counts and latency percentiles.
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
    -- wrk takes whole milliseconds
    return math.floor(-delay_ms * math.log(1 - math.random()) + 0.5)
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
