/**
 * API clients kept in the database (table `api_clients`), added with
 * `vouch clients add`: admin clients (the admin API) and resource servers
 * (introspection, the revocation feed), beside those configured in
 * ADMIN_CLIENTS and RESOURCE_CLIENTS. vouch generates each secret (256
 * random bits, shown once) and stores only its SHA-256: a secret that
 * random needs no slow hash, and a leaked table holds nothing to sign in
 * with. An id is one kind of client, never both, and never an id the
 * environment already uses (checked when adding).
 */
import { DomainError } from '../errors.js'
import { hashSecret, randomSecret } from '../crypto/secrets.js'
import type { Db } from '../db/client.js'
import { isUniqueViolation } from '../db/errors.js'
import type { Clock } from './clock.js'

export type ClientKind = 'admin' | 'resource'

export interface StoredClient {
  id: string
  kind: ClientKind
  createdAt: Date
}

export interface ApiClients {
  /** Adds a client with a new secret, returned this once. `validation_failed` for a taken or malformed id. */
  add (id: string, kind: ClientKind): Promise<StoredClient & { secret: string }>
  list (): Promise<StoredClient[]>
  /** True if the client existed. */
  remove (id: string): Promise<boolean>
  /** The kind and secret hash of a stored client, for authentication. */
  lookup (id: string): Promise<{ kind: ClientKind, secretHash: string } | undefined>
}

/** The ids RESOURCE_CLIENTS and ADMIN_CLIENTS accept (config.ts); stored ones follow the same rule. */
export const CLIENT_ID = /^[\w.-]{1,128}$/

export function createApiClients ({ db, clock, reserved = () => false }: {
  db: Db
  clock: Clock
  /** Ids configured in the environment, which a stored client may not take. */
  reserved?: (id: string) => boolean
}): ApiClients {
  return {
    async add (id, kind) {
      if (!CLIENT_ID.test(id)) throw new DomainError('validation_failed', 'A client id is 1 to 128 letters, digits, "_", "." or "-".')
      if (reserved(id)) throw new DomainError('validation_failed', `Client "${id}" is configured in the environment.`)
      const secret = randomSecret()
      try {
        const row = await db.apiClient.create({
          data: { id, kind, secretHash: hashSecret(secret), createdAt: clock.now() },
          select: { id: true, kind: true, createdAt: true },
        })
        return { ...row, kind, secret }
      } catch (err) {
        if (isUniqueViolation(err)) throw new DomainError('validation_failed', `Client "${id}" already exists.`)
        throw err
      }
    },

    async list () {
      const rows = await db.apiClient.findMany({ orderBy: { id: 'asc' }, select: { id: true, kind: true, createdAt: true } })
      return rows.map((row) => ({ ...row, kind: row.kind as ClientKind }))
    },

    async remove (id) {
      return (await db.apiClient.deleteMany({ where: { id } })).count > 0
    },

    async lookup (id) {
      if (!CLIENT_ID.test(id)) return undefined
      const row = await db.apiClient.findUnique({ where: { id }, select: { kind: true, secretHash: true } })
      return row === null ? undefined : { kind: row.kind as ClientKind, secretHash: row.secretHash }
    },
  }
}
