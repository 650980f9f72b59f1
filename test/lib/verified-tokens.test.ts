// The memory of verified access tokens (lib/verified-tokens.ts): found by a token's last characters,
// always compared whole; the Authorization header a token came in is answered without the pattern.
import { test } from 'tap'
import { AuthTokenInvalidError } from '../../lib/errors.js'
import { verifiedTokens } from '../../lib/verified-tokens.js'

const TOKEN = `eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1MSJ9.${'s'.repeat(31)}0123456789ab`
const FORGED = `eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZG1pbiJ9.${'s'.repeat(31)}0123456789ab`

/** A memory whose verifier accepts `good` tokens (claims: their index) and counts its calls. */
function setup (good: string[], size = 10) {
  let clock = 1_000_000
  const verified: string[] = []
  const memory = verifiedTokens({
    size,
    now: () => clock,
    verifyNew: (token) => {
      verified.push(token)
      const i = good.indexOf(token)
      if (i < 0) throw new AuthTokenInvalidError()
      return Object.freeze({ n: i, exp: clock / 1000 + 60 })
    },
    derive: (claims) => ({ of: claims.n })
  })
  return { memory, verified, advance: (ms: number) => { clock += ms } }
}

test('a token is verified once; its header again, or the token in another header, answers from memory', async (t) => {
  const { memory, verified } = setup([TOKEN])
  const first = memory.bearer(`Bearer ${TOKEN}`)
  t.match(first, { claims: { n: 0 }, derived: { of: 0 } })
  t.equal(memory.bearer(`Bearer ${TOKEN}`), first, 'the same header')
  t.equal(memory.bearer(`bearer   ${TOKEN} `), first, 'another header of the same token')
  t.equal(memory.bearer(`Bearer ${TOKEN}`), first, 'the first header again')
  t.match(memory.verify(TOKEN), { n: 0 }, 'the token alone')
  t.not(memory.verify(TOKEN), first.claims, 'a copy')
  t.same(verified, [TOKEN], 'verified once in all')
  t.equal(memory.size, 1)
})

test('a token that ends like a remembered one is verified itself, never answered with the other\'s claims', async (t) => {
  const { memory, verified } = setup([TOKEN])
  memory.bearer(`Bearer ${TOKEN}`)
  t.throws(() => memory.bearer(`Bearer ${FORGED}`), { code: 'AUTH_TOKEN_INVALID' }, 'the same signature on other claims')
  t.throws(() => memory.verify(FORGED), { code: 'AUTH_TOKEN_INVALID' })
  t.throws(() => memory.bearer(`Basic ${TOKEN}`), { code: 'AUTH_TOKEN_INVALID' }, 'another scheme, though it ends with the token')
  t.throws(() => memory.bearer(`Bearer x${TOKEN}`), { code: 'AUTH_TOKEN_INVALID' }, 'a longer token with the same end')
  t.same(verified, [TOKEN, FORGED, FORGED, `x${TOKEN}`])
  t.match(memory.bearer(`Bearer ${TOKEN}`), { claims: { n: 0 } }, 'the genuine one is still remembered')
})

test('a remembered token expires on time, by its header too, and is forgotten', async (t) => {
  const { memory, advance } = setup([TOKEN])
  memory.bearer(`Bearer ${TOKEN}`)
  advance(59_999)
  t.ok(memory.bearer(`Bearer ${TOKEN}`))
  advance(1)
  t.throws(() => memory.bearer(`Bearer ${TOKEN}`), { code: 'AUTH_TOKEN_EXPIRED' })
  t.equal(memory.size, 0, 'forgotten')
})

test('the memory is bounded, oldest first, and keeps no failure', async (t) => {
  const tokens = ['a', 'b', 'c'].map((x) => `h.p.${x.repeat(20)}`)
  const { memory, verified } = setup(tokens, 2)
  for (const token of tokens) memory.bearer(`Bearer ${token}`)
  t.equal(memory.size, 2)
  memory.bearer(`Bearer ${tokens[0] as string}`)
  t.equal(verified.length, 4, 'the oldest went first, and is verified again')
  t.throws(() => memory.bearer('Bearer h.p.zzzzzzzzzzzzzzzzzzzz'), { code: 'AUTH_TOKEN_INVALID' })
  t.equal(memory.size, 2, 'a failure is not kept')
})
