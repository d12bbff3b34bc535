-- event.lua — single-event POST /api/v1/events with a random user, item and
-- event type: {"user_id":"user_K","item_id":"item_J","event_type":"view"}.
local C = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")
setup = C.setup
init = C.init
request = C.event_request
done = C.done
if C.delay_ms > 0 then delay = function() return C.delay_ms end end -- paced (bench/run's mixed_writes)
