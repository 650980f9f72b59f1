// The store's scripts as one library of Redis Functions (lib/store/redis-functions.ts), loaded into a
// real redis-server.
import { execFileSync } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { test } from 'tap'
import { FUNCTION_NAMES, LIBRARY, LIBRARY_NAME, READ_ONLY } from '../../../lib/store/redis-functions.js'
import { SCRIPTS, type ScriptName } from '../../../lib/store/redis-scripts.js'
import { sendCommandOf } from '../../../lib/store/redis-client.js'
import { scriptRunner } from '../../../lib/store/redis-script-runner.js'
import { hasScriptsLibrary, redisClient, startRedis } from '../../helper.js'
import { until } from '../../redis-deployments.js'

test('the library loads, with a function of this version for every script', async (t) => {
  const redis = await startRedis(t, { own: true })
  const admin = redisClient(t, redis.url)
  t.equal(await admin.call('FUNCTION', 'LOAD', LIBRARY), LIBRARY_NAME)
  const [library] = await admin.call('FUNCTION', 'LIST', 'LIBRARYNAME', LIBRARY_NAME) as unknown[][]
  const functions = (library?.[5] as unknown[][]).map((f) => ({ name: String(f[1]), flags: f[5] as string[] }))
  t.same(functions.map((f) => f.name).sort(), Object.values(FUNCTION_NAMES).sort())
  t.same(Object.keys(FUNCTION_NAMES).sort(), Object.keys(SCRIPTS).sort())
  for (const f of functions) {
    const name = f.name.replace(/_[0-9a-f]{12}$/, '') as ScriptName
    t.same(f.flags, READ_ONLY.has(name) ? ['no-writes'] : [], `${name}: its flags`)
  }
})

test('the library\'s name follows its Lua: gateways of two versions each call their own', async (t) => {
  t.match(LIBRARY_NAME, /^wxauth_[0-9a-f]{12}$/)
  for (const name of Object.values(FUNCTION_NAMES)) t.ok(name.endsWith(LIBRARY_NAME.slice('wxauth'.length)), name)
  t.ok(LIBRARY.startsWith(`#!lua name=${LIBRARY_NAME}\n`))
})

test('a function that writes nothing runs while Redis is out of memory; one that writes is refused before it runs', async (t) => {
  const redis = await startRedis(t, { own: true })
  const admin = redisClient(t, redis.url)
  await admin.call('FUNCTION', 'LOAD', LIBRARY)
  const [index, versions, counter] = [`${redis.prefix}{k}i`, `${redis.prefix}{k}v`, `${redis.prefix}{k}c`]
  t.equal(await admin.call('FCALL', FUNCTION_NAMES.wxauthKeep, '3', index, versions, counter, 'tag', '0', '0'), 1)
  await admin.config('SET', 'maxmemory', '1')
  t.teardown(async () => { await admin.config('SET', 'maxmemory', '0') })
  t.same(await admin.call('FCALL', FUNCTION_NAMES.wxauthKeptDue, '2', index, versions, '10'), ['tag', '1'], 'the sweep reads its index')
  await t.rejects(admin.call('FCALL', FUNCTION_NAMES.wxauthKeep, '3', index, versions, counter, 'other', '0', '0'), /^OOM/)
  await admin.config('SET', 'maxmemory', '0')
  t.equal(await admin.call('ZSCORE', index, 'other'), null, 'nothing of the refused call was written')
})

test('the script of docs/operations.md deletes every version\'s library and nothing else, and a gateway loads its own again', async (t) => {
  const redis = await startRedis(t, { own: true })
  const admin = redisClient(t, redis.url)
  await admin.call('FUNCTION', 'LOAD', LIBRARY)
  await admin.call('FUNCTION', 'LOAD', LIBRARY.replaceAll(LIBRARY_NAME.slice('wxauth'.length), '_0123456789ab'))
  await admin.call('FUNCTION', 'LOAD', "#!lua name=hosts\nredis.register_function('hostsOwn', function () return 1 end)")
  const docs = await readFile(new URL('../../../docs/operations.md', import.meta.url), 'utf8')
  const script = /```sh\n([^`]*FUNCTION DELETE[^`]*)```/.exec(docs)?.[1]
  t.ok(script, 'the script is in docs/operations.md')
  execFileSync('bash', ['-c', script ?? 'false'], { env: { ...process.env, R: `redis-cli -u ${redis.url}` } })
  const libraries = (await admin.call('FUNCTION', 'LIST') as unknown[][]).map((library) => String(library[1]))
  t.same(libraries, ['hosts'], 'a host\'s own library stays')
  const send = sendCommandOf(redisClient(t, redis.url))
  t.same(await scriptRunner(send, { load: send })('wxauthHit', [`${redis.prefix}c`], 1000), [1, 1000], 'a call after it is answered')
  await until(async () => await hasScriptsLibrary(admin), 'the library, loaded again', 5000, 20)
})
