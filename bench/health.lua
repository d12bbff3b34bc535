-- health.lua — GET /api/v1/health: next to nginx's static file, the HTTP layer's
-- ceiling (a request that does almost nothing in recd); see bench/run's "http" test.
local C = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")
setup = C.setup
init = C.init
request = function() return wrk.format("GET", "/api/v1/health") end
done = C.done
