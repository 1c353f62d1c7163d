-- wrk script: POST one JSON body and report the run as one machine-readable
-- line, parsed by bench/wrk.py.
--
-- Arguments after "--": the body's path; then the msgid written in that body
-- and a tag unique to this wrk run, so every request carries a fresh msgid
-- (<tag>-<thread>-<n>): a retry-safe dataset (idempotency) would otherwise
-- answer all but the first from its store; then any "Name: value" headers.

local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("thread_number", threads)
end

function init(args)
  local f = assert(io.open(args[1], "rb"))
  local body = f:read("*a")
  f:close()
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  for i = 4, #args do
    local name, value = args[i]:match("^([^:]+):%s*(.*)$")
    if name then wrk.headers[name] = value end
  end
  local mark, tag = args[2], args[3]
  local first, last = body:find(mark or "", 1, true)
  if not mark or mark == "" or not first then
    wrk.body = body
    return
  end
  local prefix, suffix = body:sub(1, first - 1), body:sub(last + 1)
  local stem = string.format("%s-%d-", tag, thread_number or 1)
  local sent = 0
  request = function()
    sent = sent + 1
    return wrk.format(nil, nil, nil, prefix .. stem .. sent .. suffix)
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH-RESULT {"requests":%.0f,"duration_us":%.0f,"bytes":%.0f,' ..
    '"p50_us":%.0f,"p90_us":%.0f,"p99_us":%.0f,"max_us":%.0f,' ..
    '"connect_errors":%.0f,"read_errors":%.0f,"write_errors":%.0f,"timeouts":%.0f,"non2xx":%.0f}\n',
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.timeout, e.status))
end
