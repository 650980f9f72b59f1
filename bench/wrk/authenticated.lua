-- authenticated: GET /auth/me with the access tokens of the prepared sessions, in turn.
-- args[1]: a file with one access token per line. Requests are built once, at start.
local requests, n, i = {}, 0, 0

function init (args)
  for token in io.lines(args[1]) do
    n = n + 1
    requests[n] = wrk.format('GET', '/auth/me', { Authorization = 'Bearer ' .. token })
  end
end

function request ()
  i = i % n + 1
  return requests[i]
end
