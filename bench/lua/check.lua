-- POST /api/v1/check, alternating compute and tokens questions.
-- wrk ... -s bench/lua/check.lua URL -- API_KEY
package.path = debug.getinfo(1, "S").source:match("@(.*/)") .. "?.lua;" .. package.path
local summary = require("summary")

local headers, n
local bodies = {
  '{"kind":"compute","duration_ms":60000}',
  '{"kind":"tokens","model":"claude-sonnet-4","input_tokens":2000,"output_tokens":500}',
}

function init(args)
  headers = {["Authorization"] = "Bearer " .. args[1], ["Content-Type"] = "application/json"}
  n = 0
end

function request()
  n = n + 1
  return wrk.format("POST", "/api/v1/check", headers, bodies[(n % 2) + 1])
end

done = summary.done
