/**
 * `vouch keys list` and `vouch keys rotate`: the signing keys, from
 * SIGNING_KEYS or the database (src/domain/signing-keys.ts). `rotate` adds a
 * key now, whatever the automatic schedule says, and tells running
 * instances over the invalidation bus (they also re-read the table every
 * KEY_RELOAD_INTERVAL).
 *
 * Invariant: the list shows a key's public identity and schedule only —
 * kid (its RFC 7638 thumbprint), algorithm, instants and status — never a
 * private parameter, and listing needs no master key. Listing never writes:
 * with no stored key, it lists nothing (the server creates one on first
 * start, `rotate` creates one too).
 */
import type { Command } from 'commander'
import { parseConfiguredKeys, toSigningKey } from '../crypto/keys.js'
import { listStoredKeys, openSigningKeyStore } from '../domain/signing-keys.js'
import { createAnnouncer } from './announce.js'
import type { CliContext } from './context.js'
import { CliError, EXIT, print, type OutputOptions } from './output.js'

/**
 * `signing`: new tokens are signed with it; `pending`: published, signs from
 * activatesAt; `verifying`: published, verifies tokens it signed, no longer
 * signs; `retired`: past retiresAt, neither published nor accepted (deleted
 * by the next rotation).
 */
export type KeyStatus = 'signing' | 'pending' | 'verifying' | 'retired'

export interface KeyListing {
  kid: string
  algorithm: string
  activatesAt: string | null
  retiresAt: string | null
  status: KeyStatus
}

/** A key's public identity and schedule, in epoch ms. */
interface Scheduled { kid: string, algorithm: string, activatesAt?: number | undefined, retiresAt?: number | undefined }

/** The keys (of one algorithm) in the order they are tried, each with its status at `now` (the rule of buildKeySet in crypto/keys.ts). */
export function listKeys (keys: readonly Scheduled[], now: number): KeyListing[] {
  const live = keys.filter((key) => key.retiresAt === undefined || key.retiresAt > now)
  const signing = live.find((key) => key.activatesAt === undefined || key.activatesAt <= now) ?? live[0]
  return keys.map((key) => ({
    kid: key.kid,
    algorithm: key.algorithm,
    activatesAt: key.activatesAt === undefined ? null : new Date(key.activatesAt).toISOString(),
    retiresAt: key.retiresAt === undefined ? null : new Date(key.retiresAt).toISOString(),
    status: !live.includes(key) ? 'retired' : key === signing ? 'signing' : key.activatesAt !== undefined && key.activatesAt > now ? 'pending' : 'verifying',
  }))
}

async function keysOf (context: CliContext): Promise<{ source: string, keys: KeyListing[] }> {
  const { tokens } = context.config()
  const now = Date.now()
  if (tokens.signingKeys !== undefined) {
    const keys = await Promise.all((await parseConfiguredKeys(tokens.signingKeys, tokens.algorithm)).map((jwk) => toSigningKey(jwk, tokens.algorithm)))
    return { source: 'SIGNING_KEYS', keys: listKeys(keys.map((key) => ({ ...key, algorithm: tokens.algorithm })), now) }
  }
  const stored = await listStoredKeys(context.db())
  const algorithms = [...new Set(stored.map((row) => row.algorithm))]
  return {
    source: 'database',
    keys: algorithms.flatMap((algorithm) => listKeys(stored.filter((row) => row.algorithm === algorithm).map((row) => ({
      kid: row.kid, algorithm, activatesAt: row.activatesAt.getTime(), retiresAt: row.retiresAt?.getTime(),
    })), now)),
  }
}

const table = (keys: readonly KeyListing[]): string => keys.length === 0
  ? 'no signing keys yet (the server creates one on first start; `vouch keys rotate` adds one)'
  : keys.map((key) => [key.kid, key.algorithm, key.status, `activates ${key.activatesAt ?? '-'}`, `retires ${key.retiresAt ?? '-'}`].join('  ')).join('\n')

export function registerKeys (program: Command, context: CliContext): void {
  const keys = program.command('keys').description('list and rotate the signing keys')

  keys.command('list')
    .description('list the signing keys (kid, algorithm, activatesAt, retiresAt, status); never private material')
    .option('--json', 'print the list as JSON')
    .action(async (options: OutputOptions) => {
      const listing = await keysOf(context)
      print(options, listing, () => table(listing.keys))
    })

  keys.command('rotate')
    .description('add a signing key now: published at once, signing after KEY_PUBLISH_DELAY; ' +
      'the keys it replaces retire once every token they signed has expired')
    .option('--json', 'print what changed as JSON')
    .action(async (options: OutputOptions) => {
      const config = context.config()
      if (config.tokens.signingKeys !== undefined) {
        throw new CliError('signing_keys_configured', 'SIGNING_KEYS is set; rotate by putting a new key first in it ' +
          '(with "activatesAt"), not with this command', EXIT.usage)
      }
      const store = await openSigningKeyStore(config, context.db())
      // With no key yet this creates (or imports) the first; a rotation racing an instance's automatic one is retried once.
      const result = await store.rotate({ force: true }) ?? await store.rotate({ force: true })
      if (result === undefined) throw new CliError('rotation_conflict', 'other instances kept rotating at the same moment; try again', EXIT.failure)
      const announcer = createAnnouncer(config)
      announcer.publish({ kind: 'keys', id: result.added.kid })
      await announcer.flush().catch(() => 0)
      print(options, result, () => [
        `added ${result.added.kid} (generation ${result.added.generation}), signing from ${result.added.activatesAt}`,
        ...result.retiring.map((key) => `retiring ${key.kid} at ${key.retiresAt}`),
        ...result.dropped.map((kid) => `dropped ${kid} (retired)`),
      ].join('\n'))
    })
}
