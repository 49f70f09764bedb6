-- One wrk script for every scenario. Environment:
--   BENCH_METHOD, BENCH_PATH       the request
--   BENCH_TOKEN or BENCH_TOKENS    one token, or a file of tokens used in turn
--   BENCH_LOGIN=1                  send the demo user/password/orgId headers instead
--   BENCH_EXPECT                   "valid": body must be the exact valid answer;
--                                  "ok": body must start with {"code":"0"
--   BENCH_DELAY_MS                 pause before each request on a connection (rate limit)
local method = os.getenv("BENCH_METHOD") or "GET"
local path = os.getenv("BENCH_PATH") or "/ac/openapi/v2/tokens/state"
local expect = os.getenv("BENCH_EXPECT") or "valid"
local delay_ms = tonumber(os.getenv("BENCH_DELAY_MS") or "0")
local login = os.getenv("BENCH_LOGIN") == "1"
local VALID = '{"code":"0","msg":"success","data":"token is valid"}'

local tokens = {}
local file = os.getenv("BENCH_TOKENS")
if file then
  for line in io.lines(file) do tokens[#tokens + 1] = line end
else
  tokens[1] = os.getenv("BENCH_TOKEN") or ""
end
local i = 0
bad = 0

local threads = {}
function setup(thread) table.insert(threads, thread) end

-- Every request is built once, at the first: building one per request costs the load
-- generator more with many distinct tokens than with one (measured against the bare
-- handler: 0.76 x the one-token rate), which would be counted against the server.
-- (Not at load time: wrk sets the Host header later.)
local requests = nil

local function build()
  requests = {}
  if login then
    requests[1] = wrk.format(method, path, {
      user = "demo",
      password = "demo-password",
      orgId = "6048ce7ba15c2af2e8cec12991ec13cf",
    })
  else
    for n, token in ipairs(tokens) do
      requests[n] = wrk.format(method, path, { token = token })
    end
  end
end

function request()
  if requests == nil then build() end
  i = i % #requests + 1
  return requests[i]
end

if delay_ms > 0 then
  function delay() return delay_ms end
end

function response(status, headers, body)
  local good
  if expect == "valid" then
    good = status == 200 and body == VALID
  else
    good = status == 200 and string.sub(body, 1, 12) == '{"code":"0",'
  end
  if not good then bad = bad + 1 end
end

function done(summary, latency, requests)
  local total_bad = 0
  for _, t in ipairs(threads) do total_bad = total_bad + t:get("bad") end
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests":%d,"duration_us":%d,"bad":%d,"errors":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, total_bad,
    e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean))
end
