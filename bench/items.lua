-- items.lua — POST /api/v1/items with {"items":[...]}: the first BENCH_BATCH
-- (default 1,000) lines of a catalog file in recd import's JSONL format,
-- BENCH_ITEMS_FILE (default bench/out/full/gen/items.jsonl, from bench/run --full),
-- the same body every time (upserts). Every 200 answer means BENCH_BATCH items.
--   wrk -t2 -c4 -d8s --latency -s bench/items.lua http://127.0.0.1:8080
local C = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")
local path = os.getenv("BENCH_ITEMS_FILE") or "bench/out/full/gen/items.jsonl"
local f = assert(io.open(path, "rb"), "items.lua: cannot read " .. path)
local lines = {}
for line in f:lines() do
  if #lines >= C.batch then break end
  if line:match("%S") then lines[#lines + 1] = line end
end
f:close()
local body = '{"items":[' .. table.concat(lines, ",") .. ']}'
setup = C.setup
init = C.init
request = function()
  return wrk.format("POST", "/api/v1/items", {["Content-Type"] = "application/json"}, body)
end
done = C.done
