/**
 * `vouch keys list` and `vouch keys rotate`: the signing keys, from
 * SIGNING_KEYS or the key file DATA_DIR/signing-keys.json (rotation:
 * src/crypto/key-rotation.ts; running instances re-read the file within 30 s).
 *
 * Invariant: the list shows a key's public identity and schedule only —
 * kid (its RFC 7638 thumbprint), algorithm, instants and status — never a
 * private parameter. Listing never writes: with no key file, it lists
 * nothing (the server creates one on first start, `rotate` creates one too).
 */
import type { Command } from 'commander'
import type { Config } from '../config.js'
import { rotateKeyFile } from '../crypto/key-rotation.js'
import { hasAlgorithm, keyFileOf, parseConfiguredKeys, readKeyFile, toSigningKey, type SigningKey } from '../crypto/keys.js'
import { CliError, EXIT, print, type OutputOptions } from './output.js'

/**
 * `signing`: new tokens are signed with it; `pending`: published, signs from
 * activatesAt; `verifying`: published, verifies tokens it signed, no longer
 * signs; `retired`: past retiresAt, neither published nor accepted (dropped
 * from the key file by the next rotation).
 */
export type KeyStatus = 'signing' | 'pending' | 'verifying' | 'retired'

export interface KeyListing {
  kid: string
  algorithm: string
  activatesAt: string | null
  retiresAt: string | null
  status: KeyStatus
}

/** The keys in the order they are tried, each with its status at `now` (the rule of buildKeySet in crypto/keys.ts). */
export function listKeys (keys: readonly SigningKey[], algorithm: string, now: number): KeyListing[] {
  const live = keys.filter((key) => key.retiresAt === undefined || key.retiresAt > now)
  const signing = live.find((key) => key.activatesAt === undefined || key.activatesAt <= now) ?? live[0]
  return keys.map((key) => ({
    kid: key.kid,
    algorithm,
    activatesAt: key.activatesAt === undefined ? null : new Date(key.activatesAt).toISOString(),
    retiresAt: key.retiresAt === undefined ? null : new Date(key.retiresAt).toISOString(),
    status: !live.includes(key) ? 'retired' : key === signing ? 'signing' : key.activatesAt !== undefined && key.activatesAt > now ? 'pending' : 'verifying',
  }))
}

async function configuredKeys (config: Config): Promise<SigningKey[]> {
  const { algorithm, signingKeys } = config.tokens
  const jwks = signingKeys !== undefined
    ? await parseConfiguredKeys(signingKeys, algorithm)
    : (await readKeyFile(keyFileOf(config.dataDir))).filter((jwk) => hasAlgorithm(jwk, algorithm))
  return Promise.all(jwks.map((jwk) => toSigningKey(jwk, algorithm)))
}

const table = (keys: readonly KeyListing[]): string => keys.length === 0
  ? 'no signing keys yet (the server creates one on first start; `vouch keys rotate` adds one)'
  : keys.map((key) => [key.kid, key.algorithm, key.status, `activates ${key.activatesAt ?? '-'}`, `retires ${key.retiresAt ?? '-'}`].join('  ')).join('\n')

export function registerKeys (program: Command, config: () => Config): void {
  const keys = program.command('keys').description('list and rotate the signing keys')

  keys.command('list')
    .description('list the signing keys (kid, algorithm, activatesAt, retiresAt, status); never private material')
    .option('--json', 'print the list as JSON')
    .action(async (options: OutputOptions) => {
      const current = config()
      const listing = listKeys(await configuredKeys(current), current.tokens.algorithm, Date.now())
      print(options, { source: current.tokens.signingKeys !== undefined ? 'SIGNING_KEYS' : keyFileOf(current.dataDir), keys: listing }, () => table(listing))
    })

  keys.command('rotate')
    .description('add a signing key to the key file: published now, signing after KEY_PUBLISH_DELAY; ' +
      'the key it replaces retires once every token it signed has expired')
    .option('--json', 'print what changed as JSON')
    .action(async (options: OutputOptions) => {
      const current = config()
      if (current.tokens.signingKeys !== undefined) {
        throw new CliError('signing_keys_configured', 'SIGNING_KEYS is set; rotate by putting a new key first in it ' +
          '(with "activatesAt"), not with this command', EXIT.usage)
      }
      const result = await rotateKeyFile({
        dataDir: current.dataDir,
        algorithm: current.tokens.algorithm,
        publishDelay: current.tokens.keyPublishDelay,
        retireAfter: current.tokens.accessTokenTtl + current.tokens.clockSkew,
      })
      print(options, result, () => [
        `added ${result.added.kid}, signing from ${result.added.activatesAt}`,
        ...result.retiring.map((key) => `retiring ${key.kid} at ${key.retiresAt}`),
        ...result.dropped.map((kid) => `dropped ${kid} (retired)`),
      ].join('\n'))
    })
}
