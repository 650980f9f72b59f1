// POST /wxa/getwxacodeunlimit?access_token  {"scene", "page"?, "check_path"?, "env_version"?, "width"?}
// As WeChat: success is the image's bytes (image/png), failure JSON with an errcode. A scene longer
// than 32 characters or with a character outside WeChat's set -> 40169; a page with a leading '/' or
// a query, or one under `missing/` (a page not in the released version) with check_path -> 41030;
// env_version other than release, trial, develop -> 40097; width outside 280-1280 -> 40097; a body
// that is not a JSON object -> 47001. The PNG is 1x1, with the scene and page in a tEXt chunk so
// tests can read what WeChat was asked for.
import { crc32, deflateSync } from 'node:zlib'
import { fail, type Answer } from './server.js'

/** WeChat's rule for a scene: at most 32 visible characters of this set. */
export const SCENE = /^[0-9A-Za-z!#$&'()*+,/:;=?@\-._~]{1,32}$/

function chunk (type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8)
  head.writeUInt32BE(data.length, 0)
  head.write(type, 4, 'ascii')
  const crc = Buffer.alloc(4)
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0)
  return Buffer.concat([head, data, crc])
}

/** A valid 1x1 grey PNG carrying `text` (key NUL value pairs) in tEXt chunks. */
export function tinyPng (text: Record<string, string>): Buffer {
  const ihdr = Buffer.from([0, 0, 0, 1, 0, 0, 0, 1, 8, 0, 0, 0, 0])
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    ...Object.entries(text).map(([k, v]) => chunk('tEXt', Buffer.from(`${k}\u0000${v}`, 'latin1'))),
    chunk('IDAT', deflateSync(Buffer.from([0, 0x80]))),
    chunk('IEND', Buffer.alloc(0))
  ])
}

export function wxacode (appid: string, body: Buffer): Answer {
  let req: Record<string, unknown> | undefined
  try {
    const value: unknown = JSON.parse(body.toString('utf8'))
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) req = value as Record<string, unknown>
  } catch {}
  if (req === undefined) return fail(47001, 'data format error', { appid })
  const scene = typeof req.scene === 'string' ? req.scene : ''
  const page = typeof req.page === 'string' ? req.page : ''
  const more = { appid, code: scene }
  if (!SCENE.test(scene)) return fail(40169, 'invalid length for scene, or the data is not json string', more)
  if (page.startsWith('/') || page.includes('?') || (page.startsWith('missing/') && req.check_path !== false)) return fail(41030, 'invalid page', more)
  if (req.env_version !== undefined && !['release', 'trial', 'develop'].includes(String(req.env_version))) return fail(40097, 'invalid args', more)
  const width = req.width ?? 430
  if (typeof width !== 'number' || width < 280 || width > 1280) return fail(40097, 'invalid args', more)
  return { errcode: 0, ...more, body: tinyPng({ scene, page }), contentType: 'image/png' }
}
