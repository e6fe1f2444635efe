/**
 * Who an API client is: the one lookup behind both kinds of client
 * authentication (client-auth.ts for resource servers, admin-auth.ts for the
 * admin API). A client is configured (RESOURCE_CLIENTS, ADMIN_CLIENTS; their
 * secrets hashed once, here) or stored (`vouch clients add`,
 * domain/api-clients.ts). Stored clients are looked up at most once per
 * CACHE_MS per id, found or not, so a client added or removed with the CLI
 * takes effect within that, and made-up ids cost at most one query each per
 * CACHE_MS (the cache holds at most CACHE_MAX_ENTRIES).
 */
import { hashSecret } from '../../crypto/secrets.js'
import type { ApiClients, ClientKind } from '../../domain/api-clients.js'

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
    const fromConfig = configured.get(id)
    if (fromConfig !== undefined || stored === undefined || id === '') return fromConfig
    const cached = cache.get(id)
    if (cached !== undefined && cached.until > now()) return cached.client
    const client = await stored.lookup(id)
    if (cache.size >= CACHE_MAX_ENTRIES) cache.clear()
    cache.set(id, { client, until: now() + CACHE_MS })
    return client
  }
}
