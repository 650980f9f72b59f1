// Runs the WeChat simulator on its own: `npm run simulator` (PORT, HOST, WECHAT_APPID, WECHAT_SECRET).
import { DEV_APPID, startSimulator } from './index.js'

const sim = await startSimulator({
  appid: process.env.WECHAT_APPID ?? DEV_APPID,
  secret: process.env.WECHAT_SECRET ?? 'simulator-secret-0000',
  host: process.env.HOST ?? '127.0.0.1',
  port: Number(process.env.PORT ?? 3100)
})
process.stdout.write(`WeChat simulator listening on ${sim.url} (appid ${sim.appid})\n`)
const stop = (): void => { sim.close().then(() => process.exit(0), () => process.exit(1)) }
process.once('SIGINT', stop)
process.once('SIGTERM', stop)
