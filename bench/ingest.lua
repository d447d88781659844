-- wrk script for bench/ingest: a fresh, valid beacon per request, and a count of the answers.
--
-- wrk -s bench/ingest.lua URL -- TAG EVENTS SITE_KEY ORIGIN [PAUSE_MS]
--   TAG       short run tag, part of every id, so a warm-up and the timed run never collide
--   EVENTS    events per beacon (1 or more)
--   SITE_KEY  key printed by `smsretarget site add`
--   ORIGIN    one of the site's origins, sent as the Origin header
--   PAUSE_MS  after each answer a connection waits 0 to 2 x PAUSE_MS (uniformly, so that the
--             connections do not fire in step) before it sends again; default 0: as fast as the
--             server answers. wrk's latency does not include the pause.
--
-- Event ids are TAG + thread number + per-thread counter + index in the batch, so every event
-- is new and the collector stores every one (it drops an id it already has). `done` prints one
-- line "BENCH_JSON {...}" that bench/ingest parses.

local threads = {}

function setup(thread)
  thread:set("thread_no", #threads + 1)
  table.insert(threads, thread)
end

-- Per-thread state (each wrk thread runs its own Lua state); `done` reads the two globals.
local tag, events, key = "w", 1, ""
local counter = 0
statuses = {}
dropped = 0

local UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
  .. "Chrome/126.0.0.0 Safari/537.36"
local URL = "https://shop.example.com/products/42"

function init(args)
  tag = args[1] or "w"
  events = tonumber(args[2] or "1")
  key = args[3] or ""
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "text/plain;charset=UTF-8"
  wrk.headers["User-Agent"] = UA -- wrk sends no User-Agent: the collector would drop a bot
  wrk.headers["Origin"] = args[4] or ""
  local pause = tonumber(args[5] or "0")
  if pause > 0 then
    math.randomseed(thread_no)
    delay = function()
      return math.random(0, 2 * pause)
    end
  end
end

-- The first event is a page view; the rest of a batch alternates a form start and a custom
-- event with a property, as a page that is being used sends them.
local function event(id, index, now)
  if index == 0 then
    return '{"i":"' .. id .. '","n":"page_view","t":' .. now .. ',"u":"' .. URL
      .. '","ti":"Blue mug - Shop"}'
  elseif index % 2 == 1 then
    return '{"i":"' .. id .. '","n":"form_start","t":' .. now .. ',"u":"' .. URL
      .. '","p":{"f":"signup"}}'
  end
  return '{"i":"' .. id .. '","n":"scroll","t":' .. now .. ',"u":"' .. URL
    .. '","p":{"depth":' .. (index * 10) .. '}}'
end

function request()
  counter = counter + 1
  local now = string.format("%.0f", os.time() * 1000)
  local base = string.format("%s%02d%09d", tag, thread_no, counter)
  local parts = {}
  for index = 0, events - 1 do
    parts[#parts + 1] = event(string.format("%s%02d", base, index), index, now)
  end
  local visitor = string.format("%sv%02d%06d", tag, thread_no, counter % 5000)
  local body = '{"v":1,"k":"' .. key .. '","vid":"' .. visitor .. '","sid":"' .. visitor
    .. 's","e":[' .. table.concat(parts, ",") .. "]}"
  return wrk.format(nil, nil, nil, body)
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if headers["x-smsr-dropped"] or headers["X-SMSR-Dropped"] then
    dropped = dropped + 1
  end
end

function done(summary, latency, requests)
  local total = {}
  local total_dropped = 0
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("statuses")) do
      total[status] = (total[status] or 0) + n
    end
    total_dropped = total_dropped + thread:get("dropped")
  end
  local codes = {}
  for status, n in pairs(total) do
    codes[#codes + 1] = string.format('"%d":%d', status, n)
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"duration_us":%d,"requests":%d,"statuses":{%s},"dropped":%d,'
      .. '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,'
      .. '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}}\n',
    summary.duration, summary.requests, table.concat(codes, ","), total_dropped,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.status, e.timeout
  ))
end
