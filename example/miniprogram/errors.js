// What the pages tell the user for the codes that reach them: the client has already done what a
// code calls for (refresh, log in again, step up, wait, retry), so these are the ones left.
export function explain (err) {
  switch (err.code) {
    case 'CLIENT_NETWORK': return 'No network: try again.'
    case 'CLIENT_LOGIN_LIMIT': return `Could not log in; try again in ${err.retryAfter} s.`
    case 'CLIENT_LOGGED_OUT': return 'You have logged out.'
    case 'AUTH_ACCOUNT_BANNED': return err.until ? `This account is banned until ${err.until}.` : 'This account is banned.'
    case 'WX_USER_BLOCKED': return 'WeChat blocked this login.'
    case 'RATE_LIMITED':
    case 'WX_RATE_LIMITED': return `Too many tries; wait ${err.retryAfter || 60} s.`
    case 'WX_PHONE_CODE_INVALID': return 'Tap the phone button again.'
    case 'AUTH_STEP_UP_MISMATCH': return 'Another WeChat account is logged in on this phone.'
    default: return `Something went wrong (${err.code || err.message}).`
  }
}
