/**
 * Online guessing of resource-server client secrets (introspection, the
 * revocation feed). Failed client authentications are counted per client id
 * and IP, and per client id from every IP, in fixed windows, like sign-ins
 * (login-throttle.ts):
 *
 * - past `perClientAndIp` failures, that IP gets 429 for that client id
 *   until its window ends, even with the right secret: otherwise a correct
 *   guess would stand out from the wrong ones;
 * - past `perClient` failures from anywhere (a guess spread over many
 *   addresses), the client id answers 429 to every IP that has not
 *   authenticated as it in the last `KNOWN_ADDRESS_MS`, so an attacker cannot
 *   lock out the resource servers that already use the client;
 * - ids that are no client are counted per IP under one shared key: unknown
 *   and known ids are throttled alike, and made-up ids cannot fill the
 *   counters.
 *
 * A success below the limits clears its IP's count. The secrets themselves
 * must be strong (crypto/secret-strength.ts), so this bounds log noise and
 * load as much as it protects them.
 */
import { DomainError } from '../errors.js'
import type { Counters } from './counters.js'

export interface ClientAuthThrottleSettings {
  readonly perClientAndIp: number
  readonly perClient: number
  /** Seconds. */
  readonly window: number
}

export interface ClientThrottled {
  readonly clientId: string | undefined
  readonly ip: string
  /** Which limit was crossed. */
  readonly limit: 'client_and_ip' | 'client'
}

export interface ClientAuthThrottle {
  /**
   * Counts a failed authentication of `clientId` (undefined: no such client)
   * from `ip`; throws `rate_limited` (with retryAfter) when the caller is now
   * over a limit, to be answered instead of 401.
   */
  failed (clientId: string | undefined, ip: string): Promise<void>
  /**
   * Before a matching secret is accepted: throws `rate_limited` while the
   * caller is over a limit; otherwise records `ip` as one of the client's
   * addresses and clears its count.
   */
  succeeded (clientId: string, ip: string): Promise<void>
}

/** How long an IP that authenticated as a client stays exempt from that client's all-IP limit. */
export const KNOWN_ADDRESS_MS = 7 * 24 * 3600 * 1000
/** How often one instance refreshes the record that an IP authenticated as a client. */
const REMEMBER_EVERY_MS = 3600 * 1000
const UNKNOWN_CLIENT = '?'

export function createClientAuthThrottle (
  counters: Counters,
  settings: ClientAuthThrottleSettings,
  onThrottled: (event: ClientThrottled) => void = () => {},
  now: () => number = Date.now,
): ClientAuthThrottle {
  const windowMs = settings.window * 1000
  const pairKey = (clientId: string | undefined, ip: string) => `client-auth:${clientId ?? UNKNOWN_CLIENT}|${ip}`
  const clientKey = (clientId: string) => `client-auth:${clientId}`
  const knownKey = (clientId: string, ip: string) => `client-auth-known:${clientId}|${ip}`
  const limited = (resetInMs: number) =>
    new DomainError('rate_limited', 'Too many failed client authentications; retry later.', { retryAfter: Math.max(1, Math.ceil(resetInMs / 1000)) })
  // When this instance last recorded each (client, IP) that authenticated: only successes enter, so it stays small.
  const remembered = new Map<string, number>()

  const isKnown = async (clientId: string, ip: string) => (await counters.peek(knownKey(clientId, ip))).count > 0
  const remember = async (clientId: string, ip: string) => {
    const key = knownKey(clientId, ip)
    const last = remembered.get(key)
    if (last !== undefined && now() - last < REMEMBER_EVERY_MS) return
    if (remembered.size >= 10_000) remembered.clear()
    remembered.set(key, now())
    // A new window, so that the record lives KNOWN_ADDRESS_MS from the latest success.
    await counters.reset(key)
    await counters.increment(key, KNOWN_ADDRESS_MS)
  }

  return {
    async failed (clientId, ip) {
      const [pair, client] = await Promise.all([
        counters.increment(pairKey(clientId, ip), windowMs),
        clientId === undefined ? undefined : counters.increment(clientKey(clientId), windowMs),
      ])
      if (pair.count > settings.perClientAndIp) {
        if (pair.count === settings.perClientAndIp + 1) onThrottled({ clientId, ip, limit: 'client_and_ip' })
        throw limited(pair.resetInMs)
      }
      if (clientId !== undefined && client !== undefined && client.count > settings.perClient) {
        if (client.count === settings.perClient + 1) onThrottled({ clientId, ip, limit: 'client' })
        if (!await isKnown(clientId, ip)) throw limited(client.resetInMs)
      }
    },
    async succeeded (clientId, ip) {
      const [pair, client] = await Promise.all([counters.peek(pairKey(clientId, ip)), counters.peek(clientKey(clientId))])
      if (pair.count >= settings.perClientAndIp) throw limited(pair.resetInMs)
      if (client.count >= settings.perClient && !await isKnown(clientId, ip)) throw limited(client.resetInMs)
      await remember(clientId, ip)
      if (pair.count > 0) await counters.reset(pairKey(clientId, ip))
    },
  }
}
