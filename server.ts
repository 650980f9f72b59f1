// The standalone gateway: reads the environment, builds Fastify, listens, and closes gracefully.
import closeWithGrace from 'close-with-grace'
import Fastify from 'fastify'
import wechatAuth from './app.js'
import { loadConfig } from './lib/config.js'
import { notFoundHandler } from './http/error-handler.js'
import { serverOptions } from './http/server-options.js'

let config
try {
  config = loadConfig(process.env)
} catch (err) {
  process.stderr.write(`fastify-wechat-auth: ${(err as Error).message}\n`)
  process.exit(1)
}

const server = Fastify(serverOptions(config))
server.setNotFoundHandler(notFoundHandler)
closeWithGrace({ delay: 10_000, logger: server.log }, async ({ err }) => {
  if (err !== undefined) server.log.error({ err }, 'closing after an error')
  await server.close()
})

try {
  await server.register(wechatAuth, { config, env: false })
  await server.listen({ port: config.PORT, host: config.HOST })
} catch (err) {
  server.log.fatal({ err }, 'the gateway cannot start')
  await server.close().catch(() => {})
  process.exit(1)
}
