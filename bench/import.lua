-- wrk script: POSTs distinct signed badges (one compact JWS per line of
-- $JWS_FILE) to /api/v1/badges with $TOKEN; each wrk thread takes every
-- n-th line. Counts 201s apart from everything else.
local threads = {}
local counter = 0

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  local n = tonumber(os.getenv("WRK_THREADS") or "2")
  lines = {}
  local i = 0
  for line in io.lines(os.getenv("JWS_FILE")) do
    if i % n == id then table.insert(lines, line) end
    i = i + 1
  end
  next_line = 1
  created = 0
  other = 0
  headers = {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. os.getenv("TOKEN")}
end

function request()
  local jws = lines[next_line]
  if jws == nil then
    -- Out of badges: ask for something cheap rather than a duplicate.
    return wrk.format("GET", "/healthz")
  end
  next_line = next_line + 1
  return wrk.format("POST", "/api/v1/badges", headers, '{"jws":"' .. jws .. '"}')
end

function response(status, headers, body)
  if status == 201 then created = created + 1 else other = other + 1 end
end

function done(summary, latency, requests)
  local c, o = 0, 0
  for _, t in ipairs(threads) do
    c = c + t:get("created")
    o = o + t:get("other")
  end
  io.write(string.format("created %d other %d\n", c, o))
end
