/**
 * Who an API client is, and the one credential check behind both kinds of
 * client authentication (client-auth.ts for resource servers, admin-auth.ts
 * for the admin API).
 *
 * - The directory: a client is configured (RESOURCE_CLIENTS, ADMIN_CLIENTS;
 *   their secrets hashed once, here) or stored (`vouch clients add`,
 *   domain/api-clients.ts). Stored clients are looked up at most once per
 *   CACHE_MS per id, found or not, so a client added or removed with the CLI
 *   takes effect within that, and made-up ids cost at most one query each
 *   per CACHE_MS (the cache holds at most CACHE_MAX_ENTRIES).
 * - The check: secrets are compared as SHA-256 hashes in constant time,
 *   always the same comparisons whether the id is known or not, and
 *   failures are counted under the id as presented, known or not, per
 *   client id and IP, per IP and per client id
 *   (limits/client-auth-throttle.ts), one budget whichever endpoint is
 *   guessed at: past the limits the answer is 429 rate_limited, whatever
 *   the secret.
 */
import { hashSecret, sameHash } from '../../crypto/secrets.js'
import type { ApiClients, ClientKind } from '../../domain/api-clients.js'
import { DomainError } from '../../errors.js'
import type { Counters } from '../../limits/counters.js'
import { createClientAuthThrottle, type ClientAuthThrottleSettings, type ClientThrottled } from '../../limits/client-auth-throttle.js'

/** How long a stored client's lookup (or its absence) is reused. */
export const CACHE_MS = 5_000
const CACHE_MAX_ENTRIES = 1_000

export interface KnownClient { kind: ClientKind, secretHash: string }

export interface ClientDirectoryOptions {
  resourceClients: ReadonlyMap<string, string>
  adminClients: ReadonlyMap<string, string>
  /** Clients stored in the database; none when absent. */
  stored?: Pick<ApiClients, 'lookup'> | undefined
  now?: () => number
}

export type ClientDirectory = (id: string) => Promise<KnownClient | undefined>

export function createClientDirectory ({ resourceClients, adminClients, stored, now = Date.now }: ClientDirectoryOptions): ClientDirectory {
  const configured = new Map<string, KnownClient>([
    ...[...resourceClients].map(([id, secret]): [string, KnownClient] => [id, { kind: 'resource', secretHash: hashSecret(secret) }]),
    ...[...adminClients].map(([id, secret]): [string, KnownClient] => [id, { kind: 'admin', secretHash: hashSecret(secret) }]),
  ])
  const cache = new Map<string, { client: KnownClient | undefined, until: number }>()
  return async (id) => {
    if (stored === undefined || id === '') return configured.get(id)
    // A configured id is looked up in the store too (the CLI never stores one): the same work, and so the same
    // time, whether an id is configured, stored or no client's, so that timing does not tell which ids exist.
    const cached = cache.get(id)
    if (cached !== undefined && cached.until > now()) return configured.get(id) ?? cached.client
    const client = await stored.lookup(id)
    if (cache.size >= CACHE_MAX_ENTRIES) cache.clear()
    cache.set(id, { client, until: now() + CACHE_MS })
    return configured.get(id) ?? client
  }
}

/**
 * Client credentials as presented: the id, and the secret's readings (one,
 * or two for HTTP Basic, see basicCredentials); none when absent.
 */
export type Credentials = { readonly id: string, readonly secrets: readonly string[] } | undefined

/**
 * The credentials of an HTTP Basic Authorization header. RFC 6749 §2.3.1
 * form-encodes id and secret inside Basic (OAuth libraries and
 * @vouch/verifier do), while `curl -u id:secret` sends them as typed, and a
 * secret from `openssl rand -base64` often holds a `+`, which the two read
 * differently: both readings of the secret are kept, and the id (letters,
 * digits, `.`, `_`, `-`: the same either way) is taken as sent.
 */
export function basicCredentials (header: string | undefined): Credentials {
  const encoded = /^Basic +([A-Za-z0-9+/]+={0,2}) *$/i.exec(header ?? '')?.[1]
  if (encoded === undefined) return undefined
  const decoded = Buffer.from(encoded, 'base64').toString('utf8')
  const colon = decoded.indexOf(':')
  if (colon <= 0) return undefined
  const secret = decoded.slice(colon + 1)
  let formDecoded = secret
  try { formDecoded = decodeURIComponent(secret.replace(/\+/g, ' ')) } catch { /* not form-encoded: as typed only */ }
  return { id: decoded.slice(0, colon), secrets: [secret, formDecoded] }
}

/**
 * The id of the client whose secret was presented, when `accepts` takes it;
 * `invalid_credentials` (with `failure` as its message) otherwise: no
 * credentials, an unknown id, a wrong secret, or a client `accepts` turns
 * down, alike. `rate_limited` past the throttle's limits.
 */
export type ClientCheck = (credentials: Credentials, ip: string, accepts: (client: KnownClient) => boolean, failure: string) => Promise<KnownClient & { id: string }>

export interface ClientCheckOptions {
  directory: ClientDirectory
  /** Where failures are counted (memory, or Redis for several instances). */
  counters: Counters
  limits: ClientAuthThrottleSettings
  onThrottled?: (event: ClientThrottled) => void
}

export function createClientCheck ({ directory, counters, limits, onThrottled }: ClientCheckOptions): ClientCheck {
  const dummy = hashSecret('no such client')
  const throttle = createClientAuthThrottle(counters, limits, onThrottled)
  return async (credentials, ip, accepts, failure) => {
    const { id, secrets } = credentials ?? { id: '', secrets: [''] }
    const found = await directory(id)
    const client = found !== undefined && accepts(found) ? found : undefined
    // The same comparisons, one per reading of the secret, known client or not.
    const expected = client?.secretHash ?? dummy
    const matches = secrets.map((secret) => sameHash(hashSecret(secret), expected)).includes(true) && client !== undefined
    if (!matches) {
      await throttle.failed(id, ip)
      throw new DomainError('invalid_credentials', failure)
    }
    await throttle.succeeded(id, ip)
    return { id, ...client }
  }
}
