/**
 * Signing keys. Invariants: only asymmetric keys of the configured algorithm
 * (EdDSA/Ed25519 or ES256) are ever loaded; the first key signs and every key
 * is published in the JWKS, so a new key can be put in front of the old ones
 * and tokens signed by the old ones keep verifying until they expire; the
 * JWKS holds public parameters only. A key's `kid` is its RFC 7638 thumbprint.
 *
 * Keys come from SIGNING_KEYS (JWK JSON or PKCS#8 PEM), or else from
 * `<dataDir>/signing-keys.json`, created with one new key (mode 0600) on
 * first start.
 */
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import {
  calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, importPKCS8,
  type CryptoKey, type JWK,
} from 'jose'
import { ConfigError, type SigningAlgorithm } from '../config.js'
import { writePrivateFile } from './private-file.js'

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
  readonly publicKey: CryptoKey
  readonly publicJwk: PublicJwk
}

export interface KeySet {
  readonly algorithm: SigningAlgorithm
  /** The key new tokens are signed with. */
  readonly current: SigningKey
  /** Public key by kid, for verification. */
  readonly byKid: ReadonlyMap<string, CryptoKey>
  readonly jwks: { readonly keys: readonly PublicJwk[] }
}

export interface KeySource {
  algorithm: SigningAlgorithm
  /** SIGNING_KEYS, unparsed. */
  signingKeys: string | undefined
  dataDir: string
}

const PRIVATE_PARAMS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'] as const
const KEY_FILE = 'signing-keys.json'

export async function loadKeySet (source: KeySource): Promise<KeySet> {
  const privateJwks = source.signingKeys !== undefined
    ? await parseConfiguredKeys(source.signingKeys, source.algorithm)
    : await loadOrCreateKeyFile(path.join(source.dataDir, KEY_FILE), source.algorithm)
  const keys = await Promise.all(privateJwks.map((jwk) => toSigningKey(jwk, source.algorithm)))
  return buildKeySet(source.algorithm, keys)
}

export function buildKeySet (algorithm: SigningAlgorithm, keys: readonly SigningKey[]): KeySet {
  const [current] = keys
  if (current === undefined) throw new TypeError('a key set needs at least one key')
  return Object.freeze({
    algorithm,
    current,
    byKid: new Map(keys.map((key) => [key.kid, key.publicKey])),
    jwks: Object.freeze({ keys: keys.map((key) => key.publicJwk) }),
  })
}

/** A new private key of `algorithm`, as a JWK. */
export async function generatePrivateJwk (algorithm: SigningAlgorithm): Promise<JWK> {
  const { privateKey } = await generateKeyPair(algorithm, { extractable: true })
  return { ...await exportJWK(privateKey), alg: algorithm }
}

export async function toSigningKey (jwk: JWK, algorithm: SigningAlgorithm): Promise<SigningKey> {
  const publicParams = Object.fromEntries(
    Object.entries(jwk).filter(([name]) => !(PRIVATE_PARAMS as readonly string[]).includes(name)),
  ) as JWK
  const core: JWK = { kty: publicParams.kty, crv: publicParams.crv, x: publicParams.x, y: publicParams.y }
  const kid = await calculateJwkThumbprint(core)
  const publicJwk: PublicJwk = { ...JSON.parse(JSON.stringify(core)), kid, alg: algorithm, use: 'sig' }
  const privateKey = await importJWK({ ...jwk, alg: algorithm }, algorithm) as CryptoKey
  const publicKey = await importJWK(publicJwk, algorithm) as CryptoKey
  return { kid, privateKey, publicKey, publicJwk }
}

function algorithmOf (jwk: JWK): SigningAlgorithm | undefined {
  if (jwk.kty === 'OKP' && jwk.crv === 'Ed25519') return 'EdDSA'
  if (jwk.kty === 'EC' && jwk.crv === 'P-256') return 'ES256'
  return undefined
}

async function parseConfiguredKeys (raw: string, algorithm: SigningAlgorithm): Promise<JWK[]> {
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

/**
 * Reads the generated key file, adding a new key of `algorithm` in front when
 * it has none (first start, or SIGNING_ALG changed). Keys of other algorithms
 * stay in the file but are not loaded.
 */
async function loadOrCreateKeyFile (file: string, algorithm: SigningAlgorithm): Promise<JWK[]> {
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
  const usable = stored.filter((jwk) => algorithmOf(jwk) === algorithm)
  if (usable.length > 0) return usable
  const fresh = await generatePrivateJwk(algorithm)
  await writePrivateFile(file, JSON.stringify({ keys: [fresh, ...stored] }, null, 2) + '\n')
  return [fresh]
}
