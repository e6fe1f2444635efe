/**
 * The domain services on the CLI's database, so that a command changes an
 * account or a client through the same code (and leaves the same security
 * events) as the HTTP flows, never by writing rows of its own.
 *
 * The CLI issues no token, so its domain signs with a key made for this
 * process and forgotten with it: a command never needs (or creates) the
 * server's key material. It sends no mail.
 */
import { randomBytes } from 'node:crypto'
import { buildKeySet, generatePrivateJwk, toSigningKey } from '../crypto/keys.js'
import { createDomain, type Domain } from '../domain/index.js'
import { localBus, type InvalidationBus } from '../domain/session-cache.js'
import type { Announcer } from './announce.js'
import type { CliContext } from './context.js'

/** The domain; the users it changes are announced on `bus` (an Announcer, for commands that end tokens). */
export async function domainOf (context: CliContext, bus: InvalidationBus = localBus()): Promise<Domain> {
  const config = context.config()
  const { algorithm } = config.tokens
  const keys = buildKeySet(algorithm, [await toSigningKey(await generatePrivateJwk(algorithm), algorithm)])
  return createDomain({
    config, db: context.db(), keys, refreshKey: randomBytes(32), bus,
    notifier: { sendResetLink: async () => { throw new Error('the CLI sends no mail') } },
  })
}

/**
 * Sends what the command announced and says for the output how running
 * servers were told: 'redis' or 'postgres', or 'none' when nothing was sent
 * (no bus, as on SQLite, or nothing changed): they then find out by
 * themselves (README, "Command line").
 */
export async function announce (announcer: Announcer): Promise<'redis' | 'postgres' | 'none'> {
  const sent = await announcer.flush()
  return sent > 0 && (announcer.kind === 'redis' || announcer.kind === 'postgres') ? announcer.kind : 'none'
}
