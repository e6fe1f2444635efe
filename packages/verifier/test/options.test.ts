/**
 * A caller's mistake is a TypeError naming the option, thrown by
 * createVerifier before anything starts (no request, no timer).
 */
import t from 'tap'
import { createVerifier, type VerifierOptions } from '../src/index.js'

const valid: VerifierOptions = {
  vouchUrl: 'http://127.0.0.1:1', issuer: 'https://auth.example.test', audience: 'vouch', clientId: 'orders', clientSecret: 'secret',
}

const mistakes: Array<[string, Partial<Record<keyof VerifierOptions, unknown>>]> = [
  ['vouchUrl', { vouchUrl: undefined }],
  ['vouchUrl', { vouchUrl: 'auth.example.test' }],
  ['vouchUrl', { vouchUrl: [] }],
  ['vouchUrl', { vouchUrl: ['http://a.test', 42] }],
  ['vouchUrl', { vouchUrl: 'ftp://auth.example.test' }],
  ['issuer', { issuer: undefined }],
  ['issuer', { issuer: '' }],
  ['audience', { audience: 7 }],
  ['clientId', { clientId: undefined }],
  ['clientSecret', { clientSecret: '' }],
  ['algorithms', { algorithms: ['HS256'] }],
  ['algorithms', { algorithms: ['none'] }],
  ['algorithms', { algorithms: [] }],
  ['algorithms', { algorithms: 'EdDSA' }],
  ['clockTolerance', { clockTolerance: -1 }],
  ['clockTolerance', { clockTolerance: '5' }],
  ['maxFeedSilenceMs', { maxFeedSilenceMs: Number.NaN }],
  ['maxDisconnectedMs', { maxDisconnectedMs: -500 }],
  ['jwksCooldownMs', { jwksCooldownMs: Infinity }],
  ['fallback', { fallback: 'open' }],
  ['jwksUrl', { jwksUrl: 'not a url' }],
  ['feedUrl', { feedUrl: [] }],
  ['introspectionUrl', { introspectionUrl: ['http://ok.test', ''] }],
  ['clock', { clock: () => 0 }],
  ['clock', { clock: { now: 5 } }],
  ['tokenCache', { tokenCache: true }],
  ['tokenCache.maxEntries', { tokenCache: { maxEntries: -1 } }],
  ['tokenCache.maxBytes', { tokenCache: { maxBytes: Number.NaN } }],
]

t.test('each wrong option is a TypeError that names it', async (t) => {
  for (const [name, change] of mistakes) {
    t.throws(() => createVerifier({ ...valid, ...change } as VerifierOptions), { name: 'TypeError', message: `"${name}"` }, `${name}: ${JSON.stringify(change)}`)
  }
  t.throws(() => createVerifier(undefined as unknown as VerifierOptions), TypeError, 'no options at all')
})

t.test('valid options create a verifier (several URLs, one algorithm, an injected clock)', async (t) => {
  const verifier = createVerifier({ ...valid, vouchUrl: ['http://127.0.0.1:1/', 'http://127.0.0.1:2'], algorithms: ['ES256'], clock: { now: () => 0 } })
  t.equal(verifier.feedLive, false, 'not live before the feed delivered its state')
  await verifier.close()
})
