// The demo page of the web QR login (routes/demo.ts serves it in development with the built-in WeChat
// simulator): one HTML document with an inline style and script, no framework, nothing loaded from
// elsewhere. The left half is the web page (it makes a QR login, shows the code, follows the event
// stream, collects with its secret and shows GET /me); the right half plays the mini program over
// the gateway's public API (a simulator login code, then scan and confirm or cancel).
// A TypeScript string so it ships in dist without a copy step; hashed for the Content-Security-Policy.
import { createHash } from 'node:crypto'

const STYLE = `
body { font: 15px/1.4 system-ui, sans-serif; margin: 0 auto; max-width: 60rem; padding: 1rem; color: #222 }
main { display: flex; flex-wrap: wrap; gap: 1rem }
section { flex: 1 1 24rem; border: 1px solid #ccc; border-radius: 8px; padding: 0 1rem 1rem }
#code { display: block; width: 12rem; height: 12rem; image-rendering: pixelated; border: 1px solid #ddd; background: #f4f4f4 }
#states li[data-state=confirmed] { color: #080 }
#states li[data-state=cancelled], #states li[data-state=expired], #error { color: #b00 }
pre { background: #f4f4f4; padding: .5rem; overflow-x: auto }
dt { font-weight: 600 }
button { margin: .25rem .25rem .25rem 0 }
.note { color: #666; font-size: 13px }
`

// The QR secret and the tokens live in this script's variables only: never in the document, the
// URL, storage or the console. Text from the gateway goes in with textContent, never as markup.
const SCRIPT = `
'use strict'
const prefix = document.body.dataset.prefix
const $ = (id) => document.getElementById(id)
const FINAL = ['confirmed', 'cancelled', 'expired']
let qr = null // the current web QR login: { id, secret, expiresAt }
let events = null
let ticker = null
let current = '' // its last state from the event stream
let waiters = [] // called at the next state
let mpToken = null // the simulated mini program's access token, once it scanned the current code
let busy = false

async function call (method, path, body, token) {
  const headers = {}
  if (body !== undefined) headers['content-type'] = 'application/json'
  if (token !== undefined) headers.authorization = 'Bearer ' + token
  const res = await fetch(prefix + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) })
  const data = await res.json().catch(() => null)
  if (!res.ok) throw new Error(data !== null && data.code !== undefined ? data.code + ': ' + data.message : 'HTTP ' + res.status)
  return data
}

function fail (err) { $('error').textContent = err.message }

function buttons () {
  const open = qr !== null && !busy && !FINAL.includes(current)
  $('play').disabled = $('scan').disabled = !(open && mpToken === null)
  $('confirm').disabled = $('cancel').disabled = !(open && mpToken !== null)
}

function record (state) {
  current = state
  const item = document.createElement('li')
  item.dataset.state = state
  item.textContent = state + ' (' + new Date().toLocaleTimeString() + ')'
  $('states').append(item)
  $('state').textContent = state
  for (const check of waiters.splice(0)) check()
  buttons()
}

function follow (id) {
  const source = new EventSource(prefix + '/qr/' + id + '/events')
  events = source
  let unavailable = false // the gateway said it cannot read the login: shown until a state comes again
  source.addEventListener('unavailable', (event) => {
    if (qr === null || qr.id !== id) return
    unavailable = true
    fail(new Error(JSON.parse(event.data).code + ': the gateway cannot read this login for now; waiting'))
  })
  source.addEventListener('state', (event) => {
    const { state } = JSON.parse(event.data)
    if (qr === null || qr.id !== id) return
    if (unavailable) $('error').textContent = ''
    unavailable = false
    if (state === current) return
    record(state)
    if (!FINAL.includes(state)) return
    source.close()
    clearInterval(ticker)
    $('expiry').hidden = true
    if (state === 'confirmed') collect(id).catch(fail)
  })
  // A dropped stream reconnects by itself; one that cannot (the login is forgotten) is closed.
  source.onerror = () => { if (source.readyState === EventSource.CLOSED) fail(new Error('the event stream closed')) }
}

async function start () {
  if (events !== null) events.close()
  clearInterval(ticker)
  qr = null
  mpToken = null
  current = ''
  $('states').replaceChildren()
  $('state').textContent = $('qr-id').textContent = $('expires').textContent = ''
  $('asking').hidden = $('web-result').hidden = true
  $('expiry').hidden = false
  $('code').removeAttribute('src')
  const made = await call('POST', '/qr')
  qr = { id: made.id, secret: made.secret, expiresAt: Date.now() + made.expiresIn * 1000 }
  $('qr-id').textContent = made.id
  $('code').src = prefix + '/qr/' + made.id + '/image'
  follow(made.id)
  const tick = () => { $('expires').textContent = String(Math.max(0, Math.round((qr.expiresAt - Date.now()) / 1000))) }
  tick()
  ticker = setInterval(tick, 1000)
}

async function collect (id) {
  const pair = await call('POST', '/qr/' + id + '/token', { secret: qr.secret, deviceName: 'demo page' })
  qr.secret = null // spent
  $('me').textContent = JSON.stringify(await call('GET', '/me', undefined, pair.accessToken), null, 2)
  $('web-result').hidden = false
}

function randomHex () {
  return Array.from(crypto.getRandomValues(new Uint8Array(8)), (b) => b.toString(16).padStart(2, '0')).join('')
}

// The mini program: a fresh simulator code logs the user in, then it scans and shows what is asking.
async function scan () {
  const id = qr.id
  const user = $('user').value.trim() || 'demo-user'
  const session = await call('POST', '/login', { code: user + '.' + randomHex() })
  const scanned = await call('POST', '/qr/' + id + '/scan', undefined, session.accessToken)
  $('asking-ip').textContent = scanned.client.ip
  $('asking-ua').textContent = scanned.client.userAgent
  $('asking-time').textContent = new Date(scanned.client.createdAt).toLocaleString()
  $('asking').hidden = false
  mpToken = session.accessToken
}

const step = (name) => call('POST', '/qr/' + qr.id + '/' + name, undefined, mpToken)

// Before confirming, the web page shows the scan (with Redis its stream looks every 500 ms), as it
// would while a real user reads the confirmation screen: at most 3 s.
const seenScan = () => new Promise((resolve) => {
  const check = () => { if (current === 'scanned' || FINAL.includes(current)) resolve(); else waiters.push(check) }
  check()
  setTimeout(resolve, 3000)
})

function action (fn) {
  return () => {
    busy = true
    buttons()
    $('error').textContent = ''
    fn().catch(fail).finally(() => { busy = false; buttons() })
  }
}

$('restart').onclick = action(start)
$('scan').onclick = action(scan)
$('play').onclick = action(async () => { await scan(); await seenScan(); await step('confirm') })
$('confirm').onclick = action(() => step('confirm'))
$('cancel').onclick = action(() => step('cancel'))
$('code').onerror = () => { if ($('code').hasAttribute('src')) fail(new Error('the code image did not load')) }
action(start)()
`

const BODY = `
<h1>Web QR login: demo</h1>
<p class="note">Development only: served because the gateway runs its built-in WeChat simulator, where a
login code <code>&lt;user&gt;.&lt;anything&gt;</code> logs in as <code>&lt;user&gt;</code>.</p>
<main>
<section>
<h2>Web page</h2>
<img id="code" alt="the mini-program code">
<p class="note">The simulator's code is a plain square; WeChat's is the mini-program code for this scene.</p>
<p>Scene (QR login id): <code id="qr-id"></code><span id="expiry">; expires in <span id="expires"></span> s</span>.
State: <strong id="state"></strong></p>
<ol id="states" aria-label="states from the event stream"></ol>
<button id="restart">New code</button>
<div id="web-result" hidden>
<h3>Logged in</h3>
<p>A <code>web</code> session of the user who confirmed. <code>GET /me</code> answers:</p>
<pre id="me"></pre>
</div>
</section>
<section>
<h2>Mini program (simulated)</h2>
<p><label>User <input id="user" value="demo-user" size="12"></label></p>
<button id="play">Scan and confirm</button>
<button id="scan">Scan</button>
<button id="confirm">Confirm</button>
<button id="cancel">Cancel</button>
<div id="asking" hidden>
<h3>Log in on this web client?</h3>
<dl><dt>IP</dt><dd id="asking-ip"></dd><dt>User agent</dt><dd id="asking-ua"></dd><dt>Code made at</dt><dd id="asking-time"></dd></dl>
</div>
</section>
</main>
<p id="error" role="alert"></p>
`

const sha256 = (text: string): string => `'sha256-${createHash('sha256').update(text).digest('base64')}'`

/** Only what the page uses: its own inline style and script, images and requests to this origin. */
export const DEMO_CSP = [
  "default-src 'none'",
  `script-src ${sha256(SCRIPT)}`,
  `style-src ${sha256(STYLE)}`,
  // data: for the empty icon, which spares a request for /favicon.ico.
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'"
].join('; ')

const attribute = (value: string): string => value.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;')

/** The page for the gateway's routes under `prefix` (AUTH_PREFIX). */
export function demoPage (prefix: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<link rel="icon" href="data:,">
<title>fastify-wechat-auth: web QR login demo</title>
<style>${STYLE}</style>
</head>
<body data-prefix="${attribute(prefix)}">${BODY}<script>${SCRIPT}</script>
</body>
</html>
`
}
