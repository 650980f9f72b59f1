-- login: POST /auth/login with a fresh code every time (bench/scenarios.ts builds the same codes).
-- args[1]: a prefix that makes this run's codes unique. args[2]: how many users take turns, named
-- args[3] .. (n % args[2]); 0: every login a user of its own, new to the gateway.
local run, users, prefix, n = '', 0, '', 0

function init (args) run, users, prefix = args[1], tonumber(args[2]), args[3] end

function request ()
  n = n + 1
  local user = users == 0 and ('new' .. run .. '-' .. n) or (prefix .. (n % users))
  return wrk.format('POST', '/auth/login', { ['Content-Type'] = 'application/json' },
    '{"code":"' .. user .. '.' .. run .. '-' .. n .. '"}')
end
