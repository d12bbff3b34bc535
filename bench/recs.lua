-- recs.lua — GET /api/v1/recommendations/user_K?n=10 for a random K in 1..BENCH_USERS
-- (see common.lua for the parameters). Used against recd and, unchanged, against
-- the nginx baseline (which answers every path with a static body of the same size).
local C = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")
setup = C.setup
init = C.init
request = C.recs_request
done = C.done
