-- wrk's request generator for scripts/bench-limit.sh and scripts/bench-peer.sh: one
-- POST with a small JSON body per request, the URL's path and the -H headers.
--   wrk ... -s scripts/bench-post.lua URL -- NAME TYPE [backoff]
-- A manual-run URL (ending in /run) gets {"params": ...}; any other a CloudEvent of
-- type TYPE with an id of its own (NAME, the thread and a random number make it
-- unique per load). With "backoff", a thread answered 429 or 503 waits 20 ms before
-- its next request instead of retrying at once. Prints "SUMMARY REQUESTS MICROSECONDS
-- ERRORS" at the end (errors: non-2xx/3xx answers and socket errors).
local counter = 0
local threads = 0
local backoff = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
function init(args)
  math.randomseed(os.time() + (tid or 0))
  prefix = string.format("%s-%d-%d", args[1] or "r", tid or 0, math.random(1, 1e9))
  kind = args[2] or "bench.post"
  runs = wrk.path:find("/run$") ~= nil
  backs_off = args[3] == "backoff"
end
request = function()
  counter = counter + 1
  local body
  if runs then
    body = string.format('{"params":{"n":%d}}', counter)
  else
    body = string.format(
      '{"specversion":"1.0","id":"%s-%d","source":"/bench","type":"%s","data":{"n":%d}}',
      prefix, counter, kind, counter)
  end
  return wrk.format("POST", nil, nil, body)
end
function response(status, headers, body)
  if backs_off and (status == 429 or status == 503) then backoff = 20 end
end
function delay()
  local d = backoff
  backoff = 0
  return d
end
function done(summary, latency, requests)
  io.write(string.format("SUMMARY %d %d %d\n", summary.requests, summary.duration,
    summary.errors.status + summary.errors.connect + summary.errors.read
    + summary.errors.write + summary.errors.timeout))
end
