/**
 * Signing keys. Invariants: only asymmetric keys of the configured algorithm
 * (EdDSA/Ed25519 or ES256) are ever loaded; the first key signs and every key
 * is published in the JWKS, so a new key can be put in front of the old ones
 * and tokens signed by the old ones keep verifying until they expire; the
 * JWKS holds public parameters only. A key's `kid` is its RFC 7638 thumbprint.
 *
 * Keys come from SIGNING_KEYS (JWK JSON or PKCS#8 PEM), or else from the
 * database (domain/signing-keys.ts), which imports the key file earlier
 * versions kept in `<dataDir>/signing-keys.json` once.
 */
import { KeyObject } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import {
  calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, importPKCS8,
  type CryptoKey, type JWK,
} from 'jose'
import { ConfigError, type SigningAlgorithm } from '../config.js'

export interface PublicJwk {
  kty: string
  crv: string
  x: string
  y?: string
  kid: string
  alg: SigningAlgorithm
  use: 'sig'
}

export interface SigningKey {
  readonly kid: string
  readonly privateKey: CryptoKey
  /** The same private key as a node:crypto KeyObject, made once: access tokens are signed with it synchronously, off the thread pool. */
  readonly privateKeyObject: KeyObject
  readonly publicKey: CryptoKey
  readonly publicJwk: PublicJwk
  /** Epoch ms from which it signs (published before that); undefined = at once. */
  readonly activatesAt?: number | undefined
  /** Epoch ms from which it is neither published nor accepted; undefined = never. */
  readonly retiresAt?: number | undefined
}

/**
 * The keys in force. `current`, `byKid` and `jwks` are read at the moment of
 * use: a key published ahead of its activation starts signing on time, and a
 * retired key stops verifying on time, without a restart.
 */
export interface KeySet {
  readonly algorithm: SigningAlgorithm
  /** The key new tokens are signed with: the first active one. */
  readonly current: SigningKey
  /** Public key by kid, for verification: every key not retired. */
  readonly byKid: ReadonlyMap<string, CryptoKey>
  readonly jwks: { readonly keys: readonly PublicJwk[] }
  /** Swaps in a new list of keys (the stored keys, re-read). */
  replace (keys: readonly SigningKey[]): void
  /** Sets what a token naming an unknown kid may trigger before it is refused: a re-read of the stored keys. */
  onUnknownKid (handler: () => Promise<void>): void
  /** Runs that handler (nothing for keys that cannot change, such as SIGNING_KEYS). */
  unknownKid (): Promise<void>
}

const PRIVATE_PARAMS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'] as const
const KEY_FILE = 'signing-keys.json'

/** The key set of SIGNING_KEYS. */
export async function loadConfiguredKeySet (signingKeys: string, algorithm: SigningAlgorithm): Promise<KeySet> {
  const privateJwks = await parseConfiguredKeys(signingKeys, algorithm)
  return buildKeySet(algorithm, await Promise.all(privateJwks.map((jwk) => toSigningKey(jwk, algorithm))))
}

export function buildKeySet (algorithm: SigningAlgorithm, keys: readonly SigningKey[], now: () => number = Date.now): KeySet {
  interface Snapshot { current: SigningKey, byKid: Map<string, CryptoKey>, jwks: { keys: PublicJwk[] }, validUntil: number }
  let all = keys
  let snapshot: Snapshot | undefined
  let unknownKid = async () => {}

  const take = (): Snapshot => {
    const at = now()
    if (snapshot !== undefined && at < snapshot.validUntil) return snapshot
    const live = all.filter((key) => key.retiresAt === undefined || key.retiresAt > at)
    const current = live.find((key) => key.activatesAt === undefined || key.activatesAt <= at) ?? live[0]
    if (current === undefined) throw new Error('every signing key has retired: rotate keys (vouch keys rotate)')
    // The snapshot holds until the next activation or retirement.
    const changes = all.flatMap((key) => [key.activatesAt, key.retiresAt]).filter((t): t is number => t !== undefined && t > at)
    snapshot = {
      current,
      byKid: new Map(live.map((key) => [key.kid, key.publicKey])),
      jwks: { keys: live.map((key) => key.publicJwk) },
      validUntil: Math.min(Infinity, ...changes),
    }
    return snapshot
  }

  const set: KeySet = {
    algorithm,
    get current () { return take().current },
    get byKid () { return take().byKid },
    get jwks () { return take().jwks },
    replace (next) {
      if (next.length === 0) throw new TypeError('a key set needs at least one key')
      all = next
      snapshot = undefined
    },
    onUnknownKid (handler) { unknownKid = handler },
    unknownKid: () => unknownKid(),
  }
  set.replace(keys)
  take()
  return set
}

/** A new private key of `algorithm`, as a JWK. */
export async function generatePrivateJwk (algorithm: SigningAlgorithm): Promise<JWK> {
  const { privateKey } = await generateKeyPair(algorithm, { extractable: true })
  return { ...await exportJWK(privateKey), alg: algorithm }
}

/** Key-file members that schedule a key: ISO 8601 instants. */
export interface KeySchedule {
  activatesAt?: string
  retiresAt?: string
}

const instant = (value: unknown): number | undefined => {
  if (value === undefined) return undefined
  const ms = typeof value === 'string' ? Date.parse(value) : NaN
  if (Number.isNaN(ms)) throw new ConfigError('SIGNING_KEYS', `"${String(value)}" is not an ISO 8601 instant`)
  return ms
}

export async function toSigningKey (jwk: JWK & KeySchedule, algorithm: SigningAlgorithm): Promise<SigningKey> {
  const publicParams = Object.fromEntries(
    Object.entries(jwk).filter(([name]) => !(PRIVATE_PARAMS as readonly string[]).includes(name)),
  ) as JWK
  const core: JWK = { kty: publicParams.kty, crv: publicParams.crv, x: publicParams.x, y: publicParams.y }
  const kid = await calculateJwkThumbprint(core)
  const publicJwk: PublicJwk = { ...JSON.parse(JSON.stringify(core)), kid, alg: algorithm, use: 'sig' }
  const { activatesAt, retiresAt, ...keyOnly } = jwk
  const privateKey = await importJWK({ ...keyOnly, alg: algorithm }, algorithm) as CryptoKey
  const publicKey = await importJWK(publicJwk, algorithm) as CryptoKey
  return {
    kid, privateKey, privateKeyObject: KeyObject.from(privateKey), publicKey, publicJwk,
    activatesAt: instant(activatesAt), retiresAt: instant(retiresAt),
  }
}

function algorithmOf (jwk: JWK): SigningAlgorithm | undefined {
  if (jwk.kty === 'OKP' && jwk.crv === 'Ed25519') return 'EdDSA'
  if (jwk.kty === 'EC' && jwk.crv === 'P-256') return 'ES256'
  return undefined
}

export async function parseConfiguredKeys (raw: string, algorithm: SigningAlgorithm): Promise<JWK[]> {
  const fail = (problem: string): never => { throw new ConfigError('SIGNING_KEYS', problem) }
  let jwks: JWK[]
  if (raw.startsWith('-----BEGIN')) {
    const pems = raw.match(/-----BEGIN PRIVATE KEY-----[\s\S]+?-----END PRIVATE KEY-----/g) ?? []
    if (pems.length === 0) fail('expected PKCS#8 "BEGIN PRIVATE KEY" blocks')
    jwks = await Promise.all(pems.map(async (pem) => {
      try {
        return await exportJWK(await importPKCS8(pem, algorithm, { extractable: true }))
      } catch {
        return fail(`a PEM key is not a valid ${algorithm} private key`)
      }
    }))
  } else {
    let parsed: unknown
    try {
      parsed = JSON.parse(raw)
    } catch {
      return fail('expected a private JWK, a JSON array of them, a {"keys": [...]} set, or PKCS#8 PEM')
    }
    const list = Array.isArray(parsed) ? parsed : isObject(parsed) && 'keys' in parsed ? parsed.keys : [parsed]
    if (!Array.isArray(list)) return fail('"keys" must be an array of private JWKs')
    jwks = list as JWK[]
  }
  if (jwks.length === 0) fail('no key found')
  for (const jwk of jwks) {
    if (!isObject(jwk) || typeof jwk.d !== 'string') fail('every key must be a private key (a JWK with "d")')
    if (algorithmOf(jwk) !== algorithm) fail(`every key must be of the SIGNING_ALG algorithm, ${algorithm}`)
  }
  return jwks
}

function isObject (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** The keys in a key file of an earlier version (all algorithms), or [] when there is none. */
export async function readKeyFile (file: string): Promise<Array<JWK & KeySchedule>> {
  let stored: JWK[] = []
  let text: string | undefined
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new ConfigError('DATA_DIR', `cannot read ${file}: ${(err as Error).message}`)
    }
  }
  if (text !== undefined) {
    let parsed: unknown
    try {
      parsed = JSON.parse(text)
    } catch {
      throw new ConfigError('DATA_DIR', `${file} is not valid JSON`)
    }
    if (!isObject(parsed) || !Array.isArray(parsed.keys) || !parsed.keys.every((jwk) => isObject(jwk) && typeof jwk.d === 'string')) {
      throw new ConfigError('DATA_DIR', `${file} is not a {"keys": [private JWKs]} key set`)
    }
    stored = parsed.keys as JWK[]
  }
  return stored
}

export function keyFileOf (dataDir: string): string {
  return path.join(dataDir, KEY_FILE)
}

export function hasAlgorithm (jwk: JWK, algorithm: SigningAlgorithm): boolean {
  return algorithmOf(jwk) === algorithm
}
