-- wrk script for the Task API benchmark (run by `task-bench`, not by hand).
-- Arguments after `--`: mode ids_file token base_us threads
--   mode     get | post | put | mix (70% GET, 20% PUT, 10% POST)
--   ids_file one task id per line (the seeded tasks)
--   token    bearer token for the subject that owns the tasks
--   base_us  wall clock in microseconds when this run started
--   threads  wrk's -t, so that every thread draws timestamps from its own residue class
--
-- PUT timestamps are base_us + counter * threads + thread_index: unique across threads and
-- strictly increasing within a thread. Each thread PUTs only its own share of the ids, walked
-- as a shuffled cycle, so a task never has two PUTs in flight and each PUT is newer than the
-- last write of the task: every PUT must answer 200, anything else counts as an error.

local next_thread_index = 0

function setup(thread)
  thread:set("thread_index", next_thread_index)
  next_thread_index = next_thread_index + 1
end

local mode, token, base_us, thread_count
local ids, own_ids, own_cursor = {}, {}, 0
local counter = 0
local get_headers, body_headers
-- GET requests are formatted once in init(): the load generator shares the machine's cores
-- with the service, so its per-request work is kept to a table lookup.
local get_requests = {}
local cached_second, cached_prefix = -1, ""

local function shuffle(list)
  for i = #list, 2, -1 do
    local j = math.random(i)
    list[i], list[j] = list[j], list[i]
  end
end

function init(args)
  mode, token = args[1], args[3]
  base_us, thread_count = tonumber(args[4]), tonumber(args[5])
  for line in io.lines(args[2]) do
    if #line > 0 then ids[#ids + 1] = line end
  end
  math.randomseed(base_us % 2147483647 + thread_index * 7919)
  for i = thread_index + 1, #ids, thread_count do own_ids[#own_ids + 1] = ids[i] end
  shuffle(own_ids)
  get_headers = { ["Authorization"] = "Bearer " .. token }
  body_headers = { ["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json" }
  for i = 1, #ids do get_requests[i] = wrk.format("GET", "/tasks/" .. ids[i], get_headers) end
end

-- RFC 3339 with microseconds; the date part is formatted once per second.
local function next_timestamp()
  local ts = base_us + counter * thread_count + thread_index
  counter = counter + 1
  local second = math.floor(ts / 1000000)
  if second ~= cached_second then
    cached_second = second
    cached_prefix = os.date("!%Y-%m-%dT%H:%M:%S", second)
  end
  return string.format("%s.%06dZ", cached_prefix, ts - second * 1000000)
end

local function get_request()
  return get_requests[math.random(#ids)]
end

local function post_request()
  local body = string.format(
    '{"title":"bench task %d","content":"created by the benchmark","due_date":"2031-06-15","done":false,"request_timestamp":"%s"}',
    counter, next_timestamp())
  return wrk.format("POST", "/tasks", body_headers, body)
end

local function put_request()
  own_cursor = own_cursor % #own_ids + 1
  local body = string.format('{"title":"renamed %d","done":%s,"request_timestamp":"%s"}',
    counter, (counter % 2 == 0) and "true" or "false", next_timestamp())
  return wrk.format("PUT", "/tasks/" .. own_ids[own_cursor], body_headers, body)
end

function request()
  if mode == "get" then return get_request() end
  if mode == "post" then return post_request() end
  if mode == "put" then return put_request() end
  local draw = math.random(100)
  if draw <= 70 then return get_request() end
  if draw <= 90 then return put_request() end
  return post_request()
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "TASK_BENCH_RESULT requests=%.0f duration_us=%.0f p50_us=%.0f p99_us=%.0f connect=%.0f read=%.0f write=%.0f status=%.0f timeout=%.0f\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect, e.read, e.write, e.status, e.timeout))
end
