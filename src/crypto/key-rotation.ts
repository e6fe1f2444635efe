/**
 * Signing-key rotation without downtime, for keys kept in the key file
 * (DATA_DIR/signing-keys.json; with SIGNING_KEYS the deployer rotates by
 * editing the variable the same way).
 *
 * `rotateKeyFile` adds a new key that is published at once but signs only
 * from `now + publishDelay` (so resource servers that cache the JWKS have
 * fetched it before any token needs it), and schedules the key it replaces
 * to retire `retireAfter` seconds after that (the longest an access token it
 * signed can live), when it leaves the JWKS and stops verifying. Keys past
 * their retirement are dropped from the file. Running instances re-read the
 * file (`watchKeyFile`), so nothing restarts.
 */
import { stat } from 'node:fs/promises'
import type { JWK } from 'jose'
import type { SigningAlgorithm } from '../config.js'
import {
  generatePrivateJwk, hasAlgorithm, keyFileOf, readKeyFile, toSigningKey, writeKeyFile,
  type KeySchedule, type KeySet,
} from './keys.js'

export interface RotationPlan {
  dataDir: string
  algorithm: SigningAlgorithm
  /** Seconds between publishing the new key and signing with it. */
  publishDelay: number
  /** Seconds the replaced key keeps verifying after the new one starts signing. */
  retireAfter: number
  now?: Date
}

export interface RotationResult {
  added: { kid: string, activatesAt: string }
  retiring: Array<{ kid: string, retiresAt: string }>
  dropped: string[]
}

export async function rotateKeyFile (plan: RotationPlan): Promise<RotationResult> {
  const now = (plan.now ?? new Date()).getTime()
  const file = keyFileOf(plan.dataDir)
  const stored = await readKeyFile(file)
  const expired = (key: KeySchedule) => key.retiresAt !== undefined && Date.parse(key.retiresAt) <= now
  const kept = stored.filter((key) => !(hasAlgorithm(key, plan.algorithm) && expired(key)))
  const dropped = await Promise.all(stored.filter((key) => !kept.includes(key)).map(async (key) => (await toSigningKey(key, plan.algorithm)).kid))

  const activatesAt = now + plan.publishDelay * 1000
  const retiresAt = new Date(activatesAt + plan.retireAfter * 1000).toISOString()
  const retiring: RotationResult['retiring'] = []
  const scheduled: Array<JWK & KeySchedule> = []
  for (const key of kept) {
    if (hasAlgorithm(key, plan.algorithm) && key.retiresAt === undefined) {
      scheduled.push({ ...key, retiresAt })
      retiring.push({ kid: (await toSigningKey(key, plan.algorithm)).kid, retiresAt })
    } else {
      scheduled.push(key)
    }
  }
  const fresh: JWK & KeySchedule = { ...await generatePrivateJwk(plan.algorithm), activatesAt: new Date(activatesAt).toISOString() }
  await writeKeyFile(file, [fresh, ...scheduled])
  return { added: { kid: (await toSigningKey(fresh, plan.algorithm)).kid, activatesAt: fresh.activatesAt! }, retiring, dropped }
}

/**
 * Re-reads the key file every `intervalMs` and swaps its keys into `keys`
 * when it changed. Returns the function that stops watching.
 */
export function watchKeyFile (keys: KeySet, dataDir: string, intervalMs: number, onError: (err: unknown) => void): () => void {
  const file = keyFileOf(dataDir)
  let lastModified = 0
  const check = async () => {
    try {
      const { mtimeMs } = await stat(file)
      if (mtimeMs === lastModified) return
      lastModified = mtimeMs
      const usable = (await readKeyFile(file)).filter((key) => hasAlgorithm(key, keys.algorithm))
      if (usable.length > 0) keys.replace(await Promise.all(usable.map((key) => toSigningKey(key, keys.algorithm))))
    } catch (err) {
      onError(err)
    }
  }
  void check()
  const timer = setInterval(() => { void check() }, intervalMs)
  timer.unref()
  return () => clearInterval(timer)
}
