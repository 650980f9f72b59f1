// Runs the WeChat simulator on its own: `npm run simulator`. Environment: PORT, HOST, and either
// WECHAT_APPID and WECHAT_SECRET (one mini program) or WECHAT_APPS, a JSON array of
// {"appid", "secret"} (several mini programs; it wins over the other two); WECHAT_OA_APPID and
// WECHAT_OA_SECRET, the official account of H5 login (DEV_OA_APPID and its secret by default).
import { DEV_APPID, DEV_OA_APPID, DEV_OA_SECRET, startSimulator, type SimulatorApp } from './index.js'

function fail (message: string): never {
  process.stderr.write(`${message}\n`)
  process.exit(1)
}

function appsFromEnv (text: string | undefined): SimulatorApp[] | undefined {
  if (text === undefined || text === '') return undefined
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    value = null
  }
  const isApp = (a: unknown): boolean =>
    typeof a === 'object' && a !== null && typeof (a as SimulatorApp).appid === 'string' && typeof (a as SimulatorApp).secret === 'string'
  if (!Array.isArray(value) || !value.every(isApp)) fail('WECHAT_APPS must be a JSON array of {"appid": "...", "secret": "..."}')
  return (value as SimulatorApp[]).map(({ appid, secret }) => ({ appid, secret }))
}

const sim = await startSimulator({
  appid: process.env.WECHAT_APPID ?? DEV_APPID,
  secret: process.env.WECHAT_SECRET ?? 'simulator-secret-0000',
  apps: appsFromEnv(process.env.WECHAT_APPS),
  officialAccounts: [{ appid: process.env.WECHAT_OA_APPID ?? DEV_OA_APPID, secret: process.env.WECHAT_OA_SECRET ?? DEV_OA_SECRET }],
  host: process.env.HOST ?? '127.0.0.1',
  port: Number(process.env.PORT ?? 3100)
}).catch((err: Error) => fail(`WeChat simulator: ${err.message}`))
process.stdout.write(`WeChat simulator listening on ${sim.url} (appid ${sim.apps.map((a) => a.appid).join(', ')}; official account ${sim.officialAccount.appid})\n`)
const stop = (): void => { sim.close().then(() => process.exit(0), () => process.exit(1)) }
process.once('SIGINT', stop)
process.once('SIGTERM', stop)
