-- common.lua — shared helpers for the recd wrk scripts (loaded with dofile by
-- recs.lua, event.lua, batch.lua, mixed.lua and items.lua; not a wrk script itself).
--
-- Parameters come from the environment (bench/run sets them) or from wrk's
-- script arguments after `--`:  wrk ... -s recs.lua URL -- USERS ITEMS
--   BENCH_USERS   users are user_1 .. user_USERS          (default 20000)
--   BENCH_ITEMS   items are item_1 .. item_ITEMS          (default 5000)
--   BENCH_N       list length asked for (?n=)             (default 10)
--   BENCH_BATCH   events per POST in batch.lua            (default 1000)
--   BENCH_WRITE_SHARE  share of POSTs in mixed.lua        (default 0.10)
--   BENCH_SEED    base of the per-thread random seeds     (default 42)
--   BENCH_DELAY_MS  pause before each request, per connection (default 0: none)
-- done() prints one machine-readable line, `BENCHJSON {...}`, that bench/run
-- collects: requests, duration, bytes, socket and HTTP (status >= 400) errors
-- and latency percentiles in microseconds.
local C = {}

local function envnum(name, default)
  local v = tonumber(os.getenv(name) or "")
  if v == nil then return default end
  return v
end

C.users = envnum("BENCH_USERS", 20000)
C.items = envnum("BENCH_ITEMS", 5000)
C.n = envnum("BENCH_N", 10)
C.batch = envnum("BENCH_BATCH", 1000)
C.write_share = envnum("BENCH_WRITE_SHARE", 0.10)
C.seed = envnum("BENCH_SEED", 42)
C.delay_ms = envnum("BENCH_DELAY_MS", 0)

-- event types with the generator's rough funnel shape (must be types the API knows)
C.types = {}
local mix = { {"view", 70}, {"click", 15}, {"add_to_cart", 8}, {"like", 4}, {"purchase", 3} }
for _, t in ipairs(mix) do
  for _ = 1, t[2] do C.types[#C.types + 1] = t[1] end
end

C.json_headers = { ["Content-Type"] = "application/json" }

-- wrk calls setup(thread) once per thread in the main Lua state: number them so
-- each thread seeds its generator differently but reproducibly.
local counter = 0
function C.setup(thread)
  counter = counter + 1
  thread:set("thread_id", counter)
end

-- wrk calls init(args) in each thread's Lua state.
function C.init(args)
  if args and args[1] and tonumber(args[1]) then C.users = tonumber(args[1]) end
  if args and args[2] and tonumber(args[2]) then C.items = tonumber(args[2]) end
  math.randomseed(C.seed * 1000 + (thread_id or 0))
end

function C.user()
  return "user_" .. math.random(1, C.users)
end

function C.item()
  return "item_" .. math.random(1, C.items)
end

function C.event_json()
  return '{"user_id":"' .. C.user() .. '","item_id":"' .. C.item() ..
         '","event_type":"' .. C.types[math.random(1, #C.types)] .. '"}'
end

function C.recs_request()
  return wrk.format("GET", "/api/v1/recommendations/" .. C.user() .. "?n=" .. C.n)
end

function C.event_request()
  return wrk.format("POST", "/api/v1/events", C.json_headers, C.event_json())
end

function C.batch_request()
  local parts = {}
  for i = 1, C.batch do parts[i] = C.event_json() end
  return wrk.format("POST", "/api/v1/events", C.json_headers,
                    '{"events":[' .. table.concat(parts, ",") .. ']}')
end

function C.done(summary, latency, requests)
  local e = summary.errors
  local p = function(q) return latency:percentile(q) end
  io.write(string.format(
    'BENCHJSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"mean":%.1f,"stdev":%.1f,"max":%d,"p50":%d,"p75":%d,"p90":%d,"p99":%d,"p999":%d},' ..
    '"batch":%d,"write_share":%.4f}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency.stdev, latency.max,
    p(50), p(75), p(90), p(99), p(99.9), C.batch, C.write_share))
end

return C
