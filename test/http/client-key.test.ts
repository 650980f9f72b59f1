// A client's rate-limit key (http/client-key.ts): the address as @fastify/rate-limit normalizes it,
// the same whether it was remembered or not, for every address however many came before.
import { normalizeIP } from '@fastify/rate-limit'
import { test } from 'tap'
import { ADDRESSES_REMEMBERED, clientKey } from '../../http/client-key.js'

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

test('past the addresses it remembers, every address still gets its own key', async (t) => {
  const many = ADDRESSES_REMEMBERED + 50
  for (let i = 0; i < many; i++) clientKey(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`)
  for (const i of [0, 1, many - 1]) {
    const address = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`
    t.equal(clientKey(address), address, address)
  }
  for (const address of ADDRESSES) t.equal(clientKey(address), normalizeIP(address), address)
})
