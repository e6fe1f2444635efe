/**
 * Key material at rest. Everything secret that vouch stores in the database
 * (the private signing keys, the refresh-token derivation secret) is sealed
 * under one master secret, VOUCH_MASTER_KEY; for the embedded default it is
 * generated into `DATA_DIR/master-key` on first start, so `npm start` needs
 * no configuration.
 *
 * Invariants:
 * - Sealing is AES-256-GCM under a key derived from the master secret with
 *   HKDF-SHA256, a fresh 96-bit nonce per value, and the value's name (a
 *   kid, a secret's name) as additional data: a sealed value cannot be read
 *   without the master secret, altered unnoticed, or moved to another row.
 * - Opening with another master secret fails loudly (`WrongMasterKey`),
 *   never yields garbage, and never leads to new key material: the caller
 *   refuses to start and names VOUCH_MASTER_KEY.
 * - The generated master-key file is created atomically: of two processes
 *   starting at once on an empty DATA_DIR, both end with the first one's.
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto'
import { link, readFile, unlink } from 'node:fs/promises'
import path from 'node:path'
import { ConfigError } from '../config.js'
import { writePrivateFile } from './private-file.js'
import { randomSecret } from './secrets.js'

const MASTER_KEY_FILE = 'master-key'
const FORMAT = 'v1'
const NONCE_BYTES = 12

export class WrongMasterKey extends Error {
  override name = 'WrongMasterKey'
  constructor (readonly source: string) {
    super(`the stored key material was sealed under another master key than ${source}`)
  }
}

export interface Sealer {
  /** Where the master secret came from: "VOUCH_MASTER_KEY" or the generated file's path. */
  readonly source: string
  seal (plaintext: string, name: string): string
  /** Throws WrongMasterKey when `sealed` was not sealed under this master secret with this name. */
  open (sealed: string, name: string): string
}

export function createSealer (masterKey: Uint8Array, source: string): Sealer {
  const key = Buffer.from(hkdfSync('sha256', masterKey, Buffer.alloc(0), 'vouch key material at rest v1', 32))
  return {
    source,
    seal (plaintext, name) {
      const nonce = randomBytes(NONCE_BYTES)
      const cipher = createCipheriv('aes-256-gcm', key, nonce).setAAD(Buffer.from(name))
      const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()])
      return [FORMAT, nonce, body, cipher.getAuthTag()].map((part) => typeof part === 'string' ? part : part.toString('base64url')).join('.')
    },
    open (sealed, name) {
      const [format, nonce, body, tag] = sealed.split('.')
      if (format !== FORMAT || nonce === undefined || body === undefined || tag === undefined) throw new WrongMasterKey(source)
      try {
        const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(nonce, 'base64url')).setAAD(Buffer.from(name))
        decipher.setAuthTag(Buffer.from(tag, 'base64url'))
        return Buffer.concat([decipher.update(Buffer.from(body, 'base64url')), decipher.final()]).toString('utf8')
      } catch {
        throw new WrongMasterKey(source)
      }
    },
  }
}

/** The master secret: VOUCH_MASTER_KEY, or else `<dataDir>/master-key`, created on first start. */
export async function loadSealer (configured: string | undefined, dataDir: string): Promise<Sealer> {
  if (configured !== undefined) return createSealer(Buffer.from(configured, 'base64url'), 'VOUCH_MASTER_KEY')
  const file = path.join(dataDir, MASTER_KEY_FILE)
  return createSealer(Buffer.from(await readOrCreate(file), 'base64url'), file)
}

/**
 * The file's secret, creating it when absent: written to a private temporary
 * file, then hard-linked into place, which fails when another process linked
 * first; either way every process reads the one that won.
 */
async function readOrCreate (file: string): Promise<string> {
  const existing = await readSecretFile(file)
  if (existing !== undefined) return existing
  const candidate = `${file}.${process.pid}.new`
  await writePrivateFile(candidate, randomSecret() + '\n')
  try {
    await link(candidate, file)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new ConfigError('DATA_DIR', `cannot create ${file}: ${(err as Error).message}`)
  } finally {
    await unlink(candidate).catch(() => {})
  }
  const created = await readSecretFile(file)
  if (created === undefined) throw new ConfigError('DATA_DIR', `${file} vanished while it was created`)
  return created
}

async function readSecretFile (file: string): Promise<string | undefined> {
  try {
    const text = (await readFile(file, 'utf8')).trim()
    if (!/^[A-Za-z0-9_-]{43,}$/.test(text)) throw new ConfigError('DATA_DIR', `${file} is not a base64url master key`)
    return text
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    if (err instanceof ConfigError) throw err
    throw new ConfigError('DATA_DIR', `cannot read ${file}: ${(err as Error).message}`)
  }
}
