-- wrk script: each thread posts its own slice of the pre-signed events, each event once.
-- Environment: BODIES (file from make_bodies.py), WEBHOOK_PATH, DELAY_MS (pause between a
-- connection's requests; 0 for as fast as possible).
local threads = {}
local counter = 0

function setup(thread)
  thread:set("id", counter)
  table.insert(threads, thread)
  counter = counter + 1
end

function init(args)
  requests_made = 0
  events = {}
  local index = 0
  for line in io.lines(os.getenv("BODIES")) do
    if index % tonumber(os.getenv("THREADS")) == id then
      local space = line:find(" ")
      table.insert(events, { line:sub(1, space - 1), line:sub(space + 1) })
    end
    index = index + 1
  end
  position = 0
  path = os.getenv("WEBHOOK_PATH") or "/webhooks/certn"
  delay_ms = tonumber(os.getenv("DELAY_MS") or "0")
end

function request()
  position = position + 1
  if position > #events then
    position = 1  -- wrapped: these come back as duplicates, which the report counts apart
  end
  local event = events[position]
  return wrk.format("POST", path, {
    ["Content-Type"] = "application/json",
    ["X-Signature"] = event[1],
  }, event[2])
end

function delay()
  return delay_ms
end
