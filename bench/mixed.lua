-- mixed.lua — 90% GET recommendations, 10% single-event POSTs (BENCH_WRITE_SHARE),
-- users and items random as in recs.lua and event.lua.
local C = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")
setup = C.setup
init = C.init
request = function()
  if math.random() < C.write_share then return C.event_request() end
  return C.recs_request()
end
done = C.done
