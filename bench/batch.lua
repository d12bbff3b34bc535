-- batch.lua — POST /api/v1/events with {"events":[...]} of BENCH_BATCH (default
-- 1,000) random events per request. Every 200 answer means BENCH_BATCH durable events.
local C = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")
setup = C.setup
init = C.init
request = C.batch_request
done = C.done
