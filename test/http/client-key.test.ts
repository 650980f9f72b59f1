// A client's rate-limit key (http/client-key.ts): the address as @fastify/rate-limit normalizes it,
// the same whether it was remembered or not, for every address however many came before.
import { normalizeIP } from '@fastify/rate-limit'
import { test } from 'tap'
import { ADDRESS_CHARS, ADDRESSES_REMEMBERED, addressesRemembered, clientKey } from '../../http/client-key.js'

const ADDRESSES = ['10.0.0.7', '::ffff:10.0.0.7', '2001:DB8:AB:CD::1', '2001:db8:ab:cd:ffff::2', '::1', '', 'FE80::1']

test('the key is normalizeIP\'s, asked once or again', async (t) => {
  for (const address of ADDRESSES) {
    t.equal(clientKey(address), normalizeIP(address), address)
    t.equal(clientKey(address), normalizeIP(address), `${address}, remembered`)
  }
  t.equal(clientKey('::ffff:10.0.0.7'), '10.0.0.7', 'an IPv4-mapped address counts as its IPv4 one')
  t.equal(clientKey('2001:DB8:AB:CD::1'), clientKey('2001:db8:ab:cd:ffff::2'), 'one /56 shares a key')
})

test('a request whose connection was reset (no address) gets a key', async (t) => {
  t.equal(clientKey(undefined), '')
})

test('what no address can be (a client-chosen header behind too many trusted hops) is keyed, never remembered', async (t) => {
  const before = addressesRemembered()
  t.ok(before < ADDRESSES_REMEMBERED, 'the memory is not full: an address added would show')
  const long = `${'x'.repeat(8000)},203.0.113.9`
  t.equal(clientKey(long), normalizeIP(long))
  t.equal(clientKey('a'.repeat(ADDRESS_CHARS + 1)), 'a'.repeat(ADDRESS_CHARS + 1))
  t.equal(addressesRemembered(), before, 'nothing added')
  t.equal(clientKey('A'.repeat(ADDRESS_CHARS)), 'a'.repeat(ADDRESS_CHARS), 'an address-sized one is remembered, keyed as normalizeIP keys it')
  t.equal(addressesRemembered(), before + 1)
})

test('past the addresses it remembers, every address still gets its own key, and no more are kept', async (t) => {
  const many = ADDRESSES_REMEMBERED + 50
  const nth = (i: number): string => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`
  for (let i = 0; i < many; i++) clientKey(nth(i))
  t.equal(addressesRemembered(), ADDRESSES_REMEMBERED)
  for (const i of [0, 1, many - 1]) t.equal(clientKey(nth(i)), nth(i), nth(i))
  for (const address of ADDRESSES) t.equal(clientKey(address), normalizeIP(address), address)
  t.ok(addressesRemembered() <= ADDRESSES_REMEMBERED)
})
