-- wrk script for bench/portal.py: many debtors, each with its own portal session.
--
--   wrk -t 2 -c 50 -d 60s -s bench/portal_load.lua http://127.0.0.1:8642 -- \
--       DEBTORS_FILE THREADS HOME_PATH INVOICES_PATH THINK_MS
--
-- DEBTORS_FILE has one line per debtor: its address, a tab, and the Cookie header of its
-- session (each logged in through its own portal link). The address goes out as
-- X-Forwarded-For, as a load balancer in front of gunicorn would send it (gunicorn runs
-- with TRUSTED_PROXY_COUNT=1), so per-client rate limits see 50 debtors, not one wrk.
-- Thread n of THREADS takes the debtors n, n + THREADS, ... and its requests go round
-- them in turn, each debtor asking for the portal home then the invoice list; about
-- THINK_MS (0: none) is waited before each request, a person reading the page. Anything but a 200 is an error (a 302 back to the login page, a 429 from
-- the rate limit, a 500), counted apart from wrk's socket errors. done() prints one line,
-- "PORTAL_LOAD {json}", that bench/portal.py reads.

local threads = {}
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

function init(args)
  local file = assert(io.open(args[1], "r"))
  local count = tonumber(args[2])
  home, invoices = args[3], args[4]
  think = tonumber(args[5] or "0")
  cookies = {}
  local n = 0
  for line in file:lines() do
    if line ~= "" then
      if n % count == id then
        local address, cookie = line:match("^([^\t]+)\t(.*)$")
        table.insert(cookies, { address, cookie })
      end
      n = n + 1
    end
  end
  file:close()
  assert(#cookies > 0, "no debtor for thread " .. id)
  math.randomseed(os.time() + id)
  turn = 0
  bad = 0
  statuses = ""
end

function request()
  turn = turn + 1
  local debtor = cookies[math.floor(turn / 2) % #cookies + 1]
  local path = (turn % 2 == 1) and home or invoices
  return wrk.format("GET", path, { ["Cookie"] = debtor[2], ["X-Forwarded-For"] = debtor[1] })
end

-- Each wait drawn between half and one and a half THINK_MS: with one fixed pause, the 50
-- connections would fire in step, 50 requests in the same millisecond every second.
function delay()
  if think <= 0 then
    return 0
  end
  return math.random(math.floor(think / 2), math.floor(think * 3 / 2))
end

function response(status, headers, body)
  if status ~= 200 then
    bad = bad + 1
    if #statuses < 200 then
      statuses = statuses .. status .. " "
    end
  end
end

function done(summary, latency, requests)
  local not_ok, seen = 0, ""
  for _, thread in ipairs(threads) do
    not_ok = not_ok + thread:get("bad")
    seen = seen .. thread:get("statuses")
  end
  local e = summary.errors
  io.write(string.format(
    'PORTAL_LOAD {"requests": %d, "seconds": %.3f, "not_200": %d, "statuses": "%s", '
      .. '"connect": %d, "read": %d, "write": %d, "timeout": %d, '
      .. '"p50_ms": %.2f, "p95_ms": %.2f, "p99_ms": %.2f, "max_ms": %.2f}\n',
    summary.requests, summary.duration / 1e6, not_ok, seen,
    e.connect, e.read, e.write, e.timeout,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000
  ))
end
