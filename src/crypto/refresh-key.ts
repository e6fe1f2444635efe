/**
 * The server-side key that refresh-token rotation derives each new token
 * from (see domain/sessions.ts). From REFRESH_TOKEN_SECRET, or else
 * `<dataDir>/refresh-token-secret`, created (mode 0600) on first start.
 * Instances that share a database must share this key.
 */
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { ConfigError } from '../config.js'
import { writePrivateFile } from './private-file.js'
import { randomSecret } from './secrets.js'

const SECRET_FILE = 'refresh-token-secret'

export async function loadRefreshKey (configured: string | undefined, dataDir: string): Promise<Uint8Array> {
  if (configured !== undefined) return Buffer.from(configured, 'base64url')
  const file = path.join(dataDir, SECRET_FILE)
  try {
    return Buffer.from((await readFile(file, 'utf8')).trim(), 'base64url')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new ConfigError('DATA_DIR', `cannot read ${file}: ${(err as Error).message}`)
    }
  }
  const secret = randomSecret()
  await writePrivateFile(file, secret + '\n')
  return Buffer.from(secret, 'base64url')
}
