-- Appended to every scenario script by bench/loadgen.ts: one JSON line on stdout when the run ends
-- (latency in µs; `status` counts answers of 400 and above, wrk's "non-2xx").
function done (summary, latency, requests)
  local e = summary.errors
  io.write(string.format('\n{"requests":%d,"durationUs":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"p50":%d,"p99":%d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
  if after_run then after_run() end
end
