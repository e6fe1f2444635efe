/**
 * vouch's signing keys for the verifier: its JWKS (jose's remote key set:
 * cached, refetched when an unknown `kid` appears, so key rotation needs no
 * restart), from the first of its URLs that answers.
 *
 * Invariant: only a key set that was actually obtained judges a token. A
 * `kid` missing from a fetched set is the token's fault (jose's
 * JWKSNoMatchingKey, which the verifier reports as `invalid_token`). Failing
 * to obtain the set (network error, timeout, a non-200 answer, a malformed
 * set) says nothing about the token: it surfaces as `KeysUnavailable`, an
 * availability failure, never a verdict.
 *
 * Invariant: whoever keeps verdicts reached with these keys (the verifier's
 * verified-token cache) hears of every change. Each key set jose applies is
 * compared with the last one applied (from any URL); when they differ (a key
 * removed, added or changed) `onChange` is called, before the call that
 * brought the new set returns or throws.
 */
import { createRemoteJWKSet, customFetch, errors, jwksCache, type ExportedJWKSCache, type FetchImplementation, type JSONWebKeySet, type JWTVerifyGetKey } from 'jose'
import type { Clock } from './options.js'

/** Thrown by the key getter when no URL gave a usable key set. */
export class KeysUnavailable extends Error {
  override name = 'KeysUnavailable'
}

/** After a failed fetch a URL is not asked again for this long, so a busy resource server does not hammer a vouch that is down. */
const RETRY_AFTER_FAILURE_MS = 1000

export interface Keys {
  /** For jwtVerify. */
  getKey: JWTVerifyGetKey
  /** Fetches the key set in the background (failures are only remembered), so the first token need not wait for it. */
  warm (): void
  /**
   * False once the key set last used is older than jose's cache age (10
   * minutes): the next `getKey` refetches it. A verdict kept from earlier
   * keys should not be trusted until then (a removed key is noticed no later
   * than without a cache).
   */
  readonly fresh: boolean
}

/** The keys of a set, each written with its members sorted, in sorted order: equal for equal sets whatever the order. */
function fingerprint (jwks: JSONWebKeySet): string {
  return jwks.keys
    .map((key) => JSON.stringify(Object.keys(key).sort().map((name) => [name, (key as Record<string, unknown>)[name]])))
    .sort()
    .join('\n')
}

export function createKeys ({ urls, cooldownMs, clock, onChange = () => {} }: { urls: string[], cooldownMs: number, clock: Clock, onChange?: () => void }): Keys {
  // jose writes each key set it applies (after checking it) into its set's cache object.
  const caches = urls.map((): Partial<ExportedJWKSCache> => ({}))
  const seen: Array<JSONWebKeySet | undefined> = urls.map(() => undefined)
  let current: string | undefined
  /** Notes a key set newly applied by the set at `index`, and reports a change. */
  const noticeChanges = (index: number) => {
    const jwks = caches[index]!.jwks
    if (jwks === undefined || jwks === seen[index]) return
    seen[index] = jwks
    const next = fingerprint(jwks)
    if (current !== undefined && next !== current) onChange()
    current = next
  }

  const sets = urls.map((url, index) => {
    let failedUntil = 0
    const fetchOrRefuse: FetchImplementation = async (href, init) => {
      if (clock.now() < failedUntil) throw new Error(`the JWKS at ${href} failed less than ${RETRY_AFTER_FAILURE_MS} ms ago`)
      try {
        const res = await fetch(href, init)
        if (res.status !== 200) failedUntil = clock.now() + RETRY_AFTER_FAILURE_MS
        return res
      } catch (err) {
        failedUntil = clock.now() + RETRY_AFTER_FAILURE_MS
        throw err
      }
    }
    return createRemoteJWKSet(new URL(url), { cooldownDuration: cooldownMs, [customFetch]: fetchOrRefuse, [jwksCache]: caches[index] as ExportedJWKSCache })
  })
  // The set that last answered is asked first.
  let preferred = 0

  return {
    async getKey (header, token) {
      const failures: unknown[] = []
      for (let i = 0; i < sets.length; i++) {
        const index = (preferred + i) % sets.length
        try {
          const key = await sets[index]!(header, token)
          preferred = index
          return key
        } catch (err) {
          // A fetched set that has no (or no single) key for this kid: the token's fault.
          if (err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JWKSMultipleMatchingKeys) throw err
          failures.push(err)
        } finally {
          noticeChanges(index)
        }
      }
      throw new KeysUnavailable(`vouch's signing keys could not be fetched from ${urls.join(', ')}`, {
        cause: failures.length === 1 ? failures[0] : new AggregateError(failures),
      })
    },
    warm () {
      sets[0]!.reload().then(() => { noticeChanges(0) }, () => {})
    },
    get fresh () {
      return sets[preferred]!.fresh
    },
  }
}
