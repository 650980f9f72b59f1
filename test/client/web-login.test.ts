// The client's web-login helpers against a real gateway: the mini program scans and confirms a web QR
// login (the web page then collects its session), or cancels it; a ticket for a web view.
import { test } from 'tap'
import { createWechatAuthClient, type WechatAuthError } from '../../client/index.js'
import { gateway, standIn } from './stand-in.js'

test('qr.scan / confirm: the web page that asked gets a session of the confirming user; cancel refuses it', async (t) => {
  const { baseUrl } = await gateway(t)
  const post = async (path: string, body?: unknown) => await fetch(`${baseUrl}/auth${path}`, {
    method: 'POST',
    headers: body === undefined ? { 'user-agent': 'Mozilla/5.0 (Macintosh) Chrome/120' } : { 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) })
  })
  const mp = standIn('quinn')
  const client = createWechatAuthClient({ platform: mp.wx, baseUrl })
  const web = await (await post('/qr')).json() as { id: string, secret: string }
  const scan = await client.qr.scan(web.id)
  t.match(scan, { state: 'scanned' }, 'scanned, with what is asking')
  t.match(JSON.stringify(scan), /Chrome\/120/, 'the web client\'s user agent, for the confirmation screen')
  t.match(await client.qr.confirm(web.id), { state: 'confirmed' })
  const collected = await post(`/qr/${web.id}/token`, { secret: web.secret })
  t.equal(collected.status, 200)
  const pair = await collected.json() as { openid: string }
  t.equal(pair.openid, client.session()?.openid, 'the web session is the confirming user\'s')

  const other = await (await post('/qr')).json() as { id: string, secret: string }
  await client.qr.scan(other.id)
  t.match(await client.qr.cancel(other.id), { state: 'cancelled' })
  const refused = await post(`/qr/${other.id}/token`, { secret: other.secret })
  t.equal(refused.status, 409)
  const unknown = await client.qr.scan('A'.repeat(22)).catch((e: WechatAuthError) => e)
  t.match(unknown, { code: 'AUTH_QR_NOT_FOUND', statusCode: 404 })
  t.equal(mp.calls['POST /auth/login'], 1, 'one login for all of it')
})

test('ticket(): a one-time ticket another device exchanges once for its own session', async (t) => {
  const { baseUrl } = await gateway(t)
  const mp = standIn('tess')
  const client = createWechatAuthClient({ platform: mp.wx, baseUrl })
  const { ticket, deviceType } = await client.ticket()
  t.equal(deviceType, 'web')
  const exchange = async () => await fetch(`${baseUrl}/auth/tickets/exchange`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ticket }) })
  t.equal((await exchange()).status, 200)
  const again = await exchange()
  t.equal(again.status, 401)
  t.equal((await again.json() as { code: string }).code, 'AUTH_TICKET_INVALID', 'once only')
})
