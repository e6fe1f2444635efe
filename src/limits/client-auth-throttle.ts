/**
 * Online guessing of API client secrets (introspection, the revocation feed,
 * the admin API): failed client authentications are counted in fixed
 * windows, like sign-ins (login-throttle.ts), under the client id as
 * presented, whether or not a client has it. The throttle is never told
 * which ids exist, so its answers cannot tell them apart: in any sequence of
 * requests, from one address or many, a made-up id and a real id with a
 * wrong secret get the same 401s, 429s and Retry-After.
 *
 * - Per id and address: past `perClientAndIp` failures, that address gets
 *   429 for that id until its window ends, even with the right secret
 *   (otherwise a right guess would stand out from the wrong ones).
 * - Per address, over all ids: past `perIp` failures, that address gets 429
 *   for every id, even with a right secret (past the total, a right secret
 *   answered would let the guessing go on). Spraying made-up ids is cut off
 *   there, and so is what it stores: an address writes at most 2 · perIp + 1
 *   counters a window, bursts included, each key of bounded size whatever
 *   the id (`idInKey`); a refused attempt stores nothing new, in memory
 *   (counters.ts: bounded by bytes) or in Redis (keys expire with their
 *   window).
 * - Per id from all addresses: past `perClient` failures (a guess spread
 *   over many addresses), the id answers 429 to every address that no
 *   client has authenticated from in the last `KNOWN_ADDRESS_MS`, so that an
 *   attacker cannot lock out the resource servers already in use. Addresses
 *   in use are outside this limit both ways: never refused by it, their
 *   failures (a server with a stale secret) not counted in it.
 *
 * Why an address in use is one that any client authenticated from, not the
 * id's own: "this id was used from here" exists only for real ids, so a
 * locked id answering 401 where a made-up one answers 429 would tell whoever
 * shares the address (a NAT, a host) that the id exists. Known to any client,
 * an address is spared for every id alike; and an attacker's own addresses,
 * holding no secret, are never in use. One that holds a client's secret puts
 * its address in use, and gains only that address's own limits: at most
 * `perClientAndIp` guesses per id and `perIp` in all, a window. What the
 * limit per id still shows is that others failed on the same id (its count
 * can run ahead of one's own failures), for made-up ids and real ones alike.
 * The work done is the same for every id: which counters are read and
 * written depends on the id as sent, the address and the counts, never on
 * whether a client has the id.
 *
 * A success below the limits clears its address's count for that id, not the
 * address's total (one known secret buys no endless spraying). The secrets
 * must be strong (crypto/secret-strength.ts), so this bounds log noise and
 * load as much as it protects them.
 */
import { createHash } from 'node:crypto'
import { DomainError } from '../errors.js'
import type { Counters } from './counters.js'

export interface ClientAuthThrottleSettings {
  readonly perClientAndIp: number
  readonly perClient: number
  /** Failures from one address over all ids; `PER_IP_FACTOR` × `perClientAndIp` when absent. */
  readonly perIp?: number
  /** Seconds. */
  readonly window: number
}

export interface ClientThrottled {
  /** As presented, when it could be a client's ([\w.-]{1,128}), or '#' and its SHA-256 (base64url): it may be no client's. */
  readonly clientId: string
  readonly ip: string
  /** Which limit was reached (further attempts under it are refused until its window ends). */
  readonly limit: 'client_and_ip' | 'ip' | 'client'
}

export interface ClientAuthThrottle {
  /**
   * Counts a failed authentication as `clientId` from `ip`. `clientId` is the
   * id as presented ('' for none), a client's or not: the throttle must not
   * know which. Throws `rate_limited` (with retryAfter) when the caller is
   * over a limit, to be answered instead of 401.
   */
  failed (clientId: string, ip: string): Promise<void>
  /**
   * Before a matching secret is accepted: throws `rate_limited` while the
   * caller is over a limit; otherwise records `ip` as an address in use and
   * clears its count for the client.
   */
  succeeded (clientId: string, ip: string): Promise<void>
}

/** How long an address that some client authenticated from stays outside the limits per id from all addresses. */
export const KNOWN_ADDRESS_MS = 7 * 24 * 3600 * 1000
/** The failures per address over all ids, as a multiple of those per id and address, unless set. */
export const PER_IP_FACTOR = 10
/** How often one instance refreshes the record that an address is in use. */
const REMEMBER_EVERY_MS = 3600 * 1000

/**
 * Ids that go into keys as they are: every client id can (config.ts and
 * domain/api-clients.ts allow [\w.-]{1,128}), so Redis keys stay readable.
 * Any other is digested: a key of bounded size, and no '|' to make an id's
 * count pass for another id's count at some address.
 */
const PLAIN_ID = /^[\w.-]{1,128}$/
const idInKey = (id: string) => PLAIN_ID.test(id) ? id : `#${createHash('sha256').update(id).digest('base64url')}`

interface Count { count: number, resetInMs: number }
const NONE: Count = { count: 0, resetInMs: 0 }

export function createClientAuthThrottle (
  counters: Counters,
  settings: ClientAuthThrottleSettings,
  onThrottled: (event: ClientThrottled) => void = () => {},
  now: () => number = Date.now,
): ClientAuthThrottle {
  const windowMs = settings.window * 1000
  const perIp = settings.perIp ?? PER_IP_FACTOR * settings.perClientAndIp
  const keysOf = (clientId: string, ip: string) => {
    const id = idInKey(clientId)
    return { pair: `client-auth:${id}|${ip}`, client: `client-auth:${id}`, address: `client-auth-ip:${ip}` }
  }
  const knownKey = (ip: string) => `client-auth-known:${ip}`
  const limited = (resetInMs: number) =>
    new DomainError('rate_limited', 'Too many failed client authentications; retry later.', { retryAfter: Math.max(1, Math.ceil(resetInMs / 1000)) })
  // When this instance last recorded each address in use: only successes enter, so it stays small.
  const remembered = new Map<string, number>()

  /** The counts that refuse the attempt they were read before: every limit it has reached (the latest window end is the wait). */
  const refuse = (pair: Count, address: Count, client: Count, known: boolean) => {
    const reached = [
      ...pair.count >= settings.perClientAndIp ? [pair] : [],
      ...address.count >= perIp ? [address] : [],
      ...!known && client.count >= settings.perClient ? [client] : [],
    ]
    if (reached.length > 0) throw limited(Math.max(...reached.map(({ resetInMs }) => resetInMs)))
  }
  /** The counts before this attempt, their windows, and whether the address is in use: one round trip. */
  const read = async (clientId: string, ip: string) => {
    const keys = keysOf(clientId, ip)
    const [pair, address, client, known] = await Promise.all([
      counters.peek(keys.pair), counters.peek(keys.address), counters.peek(keys.client), counters.peek(knownKey(ip)),
    ])
    return { keys, pair, address, client, known: known.count > 0 }
  }
  const remember = async (ip: string) => {
    const last = remembered.get(ip)
    if (last !== undefined && now() - last < REMEMBER_EVERY_MS) return
    if (remembered.size >= 10_000) remembered.clear()
    remembered.set(ip, now())
    // A new window, so that the record lives KNOWN_ADDRESS_MS from the latest success.
    await counters.reset(knownKey(ip))
    await counters.increment(knownKey(ip), KNOWN_ADDRESS_MS)
  }

  return {
    async failed (clientId, ip) {
      const { keys, pair, address, client, known } = await read(clientId, ip)
      // Refused before anything is counted: nothing new is stored past a limit.
      refuse(pair, address, client, known)
      const tell = (limit: ClientThrottled['limit']) => onThrottled({ clientId: idInKey(clientId), ip, limit })
      // The address's count first, alone: of concurrent failures that all read it below the total, only those it
      // admits store counts per id, so that a burst of made-up ids cannot store more than the total allows.
      const addressNow = await counters.increment(keys.address, windowMs)
      if (addressNow.count === perIp) tell('ip')
      if (addressNow.count > perIp) throw limited(addressNow.resetInMs)
      const [pairNow, clientNow] = await Promise.all([
        counters.increment(keys.pair, windowMs),
        known ? NONE : counters.increment(keys.client, windowMs),
      ])
      if (pairNow.count === settings.perClientAndIp) tell('client_and_ip')
      if (clientNow.count === settings.perClient) tell('client')
      // Likewise, concurrent failures past the other limits are refused.
      const before = ({ count, resetInMs }: Count) => ({ count: count - 1, resetInMs })
      refuse(before(pairNow), NONE, before(clientNow), known)
    },
    async succeeded (clientId, ip) {
      const { keys, pair, address, client, known } = await read(clientId, ip)
      refuse(pair, address, client, known)
      await remember(ip)
      if (pair.count > 0) await counters.reset(keys.pair)
    },
  }
}
