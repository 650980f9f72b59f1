-- login: POST /auth/login with a fresh code every time, for 10,000 simulated users in turn.
-- args[1]: a prefix that makes this run's codes unique.
local prefix, n = '', 0

function init (args) prefix = args[1] end

function request ()
  n = n + 1
  return wrk.format('POST', '/auth/login', { ['Content-Type'] = 'application/json' },
    '{"code":"user' .. (n % 10000) .. '.' .. prefix .. '-' .. n .. '"}')
end
