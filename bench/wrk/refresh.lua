-- refresh: chains of rotations. Every request presents the token the last rotation of its session
-- returned: the tokens wait in a queue, each answer's new token joins its end.
-- args[1]: a file with one refresh token per line; rewritten when the run ends with the newest tokens,
-- so the next run goes on from there. Needs more sessions than connections.
queue, head, tail, file = {}, 1, 0, nil
local threads = {}

function setup (thread) table.insert(threads, thread) end

function init (args)
  file = args[1]
  for token in io.lines(file) do tail = tail + 1; queue[tail] = token end
end

function request ()
  local token = queue[head]
  queue[head] = nil
  head = head + 1
  return wrk.format('POST', '/auth/refresh', { ['Content-Type'] = 'application/json' }, '{"refreshToken":"' .. token .. '"}')
end

function response (status, headers, body)
  if status == 200 then
    tail = tail + 1
    queue[tail] = string.match(body, '"refreshToken":"([^"]+)"')
  end
end

-- Called by report.lua's done(), in wrk's main state: write back what each thread has left.
function after_run ()
  for _, thread in ipairs(threads) do
    local q, h, t = thread:get('queue'), thread:get('head'), thread:get('tail')
    local out = io.open(thread:get('file'), 'w')
    for k = h, t do out:write(q[k], '\n') end
    out:close()
  end
end
