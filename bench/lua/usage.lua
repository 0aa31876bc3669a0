-- POST /api/v1/usage with a batch of N events per request, every event id unique.
-- wrk ... -s bench/lua/usage.lua URL -- API_KEY PROJECT_IDS(comma) BATCH_SIZE RUN_PREFIX
package.path = debug.getinfo(1, "S").source:match("@(.*/)") .. "?.lua;" .. package.path
local summary = require("summary")

local threads_made = 0
function setup(thread)
  threads_made = threads_made + 1
  thread:set("tid", threads_made)
end

local key, projects, batch, prefix, counter, headers
local agents = {"planner", "coder", "reviewer", "tester"}
local models = {{"claude-sonnet-4", "anthropic"}, {"claude-haiku-4", "anthropic"}, {"gpt-4o-mini", "openai"}}

function init(args)
  key = args[1]
  projects = {}
  for p in string.gmatch(args[2], "[^,]+") do projects[#projects + 1] = p end
  batch = tonumber(args[3])
  prefix = args[4] .. "-" .. tostring(tid)
  counter = 0
  headers = {["Authorization"] = "Bearer " .. key, ["Content-Type"] = "application/json"}
end

function request()
  counter = counter + 1
  local ts = os.date("!%Y-%m-%dT%H:%M:%SZ")
  local parts = {}
  for i = 1, batch do
    local n = counter * batch + i
    local project = projects[(n % #projects) + 1]
    local agent = agents[(n % #agents) + 1]
    local id = prefix .. "-" .. counter .. "-" .. i
    if n % 10 < 7 then
      parts[i] = string.format(
        '{"id":"%s","project_id":"%s","kind":"compute","timestamp":"%s","duration_ms":%d,"agent":"%s","run_id":"run-%d"}',
        id, project, ts, 1000 + (n * 7919) % 60000, agent, counter)
    else
      local m = models[(n % #models) + 1]
      parts[i] = string.format(
        '{"id":"%s","project_id":"%s","kind":"tokens","timestamp":"%s","model":"%s","provider":"%s",' ..
        '"input_tokens":%d,"output_tokens":%d,"agent":"%s","run_id":"run-%d"}',
        id, project, ts, m[1], m[2], 100 + (n * 31) % 5000, 10 + (n * 17) % 800, agent, counter)
    end
  end
  return wrk.format("POST", "/api/v1/usage", headers, '{"events":[' .. table.concat(parts, ",") .. ']}')
end

done = summary.done
