-- Shared by every wrk script: print one machine-readable line with the figures the bench needs.
-- (wrk's own --latency output has no p95.)
local M = {}

function M.done(summary, latency, requests)
  local e = summary.errors
  local errors = e.connect + e.read + e.write + e.status + e.timeout
  io.write(string.format(
    'JSON {"requests": %d, "duration_us": %d, "errors": %d, "status_errors": %d, ' ..
    '"p50": %d, "p95": %d, "p99": %d, "max": %d}\n',
    summary.requests, summary.duration, errors, e.status,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max))
end

return M
