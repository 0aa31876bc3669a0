-- GET one path with the account key.
-- wrk ... -s bench/lua/get.lua URL -- API_KEY PATH
package.path = debug.getinfo(1, "S").source:match("@(.*/)") .. "?.lua;" .. package.path
local summary = require("summary")

local req

function init(args)
  req = wrk.format("GET", args[2], {["Authorization"] = "Bearer " .. args[1]})
end

function request()
  return req
end

done = summary.done
