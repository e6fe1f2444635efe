/**
 * Signing keys kept with the deployment's data (table `signing_keys`), so
 * that every instance sharing DATABASE_URL and VOUCH_MASTER_KEY signs and
 * verifies with the same keys and nothing else has to be distributed. (With
 * SIGNING_KEYS the deployer manages keys; this store is not used.)
 *
 * Invariants:
 * - A row's public JWK is in clear; its private JWK is sealed under the
 *   master secret (crypto/sealing.ts). A row that does not open under this
 *   process's master secret stops the start with a ConfigError naming
 *   VOUCH_MASTER_KEY; it never leads to a new key.
 * - `generation` numbers an algorithm's keys (unique per algorithm) and
 *   orders them, newest first; the newest key whose activation has come
 *   signs (crypto/keys.ts, buildKeySet). Creating the first key, importing
 *   the legacy key file and every rotation insert the next generation, so of
 *   several instances doing it at once exactly one succeeds and the others
 *   read its result.
 * - A rotation publishes the new key at once but signs with it only after
 *   `publishDelay` (resource servers that cache the JWKS fetch it first),
 *   and retires the keys it replaces `retireAfter` seconds after that (the
 *   longest an access token they signed can live). Retired rows are deleted
 *   by the next rotation.
 * - Rows change only by rotation; instances hear of one through the
 *   invalidation bus ("keys"), re-read every `keyReloadInterval` as the
 *   safety net, and re-read at once (at most once a second) when a token
 *   names a kid they do not know.
 */
import { readFile, rm } from 'node:fs/promises'
import { setTimeout as sleep } from 'node:timers/promises'
import path from 'node:path'
import type { JWK } from 'jose'
import { ConfigError, type Config, type SigningAlgorithm } from '../config.js'
import type { Db } from '../db/client.js'
import { isUniqueViolation } from '../db/errors.js'
import {
  buildKeySet, generatePrivateJwk, hasAlgorithm, keyFileOf, loadConfiguredKeySet, readKeyFile, toSigningKey,
  type KeySchedule, type KeySet, type SigningKey,
} from '../crypto/keys.js'
import { loadSealer, WrongMasterKey, type Sealer } from '../crypto/sealing.js'
import { randomSecret } from '../crypto/secrets.js'
import type { InvalidationBus } from './session-cache.js'

export interface SigningKeySettings {
  algorithm: SigningAlgorithm
  /** Seconds between publishing a rotated-in key and signing with it. */
  publishDelay: number
  /** Seconds a replaced key keeps verifying after its successor starts signing. */
  retireAfter: number
  /** Seconds between automatic rotations; 0 = never automatic. */
  rotationInterval: number
  /** Where the legacy key files are (imported once, then removed). */
  dataDir: string
}

/** A stored key's public identity and schedule: what `vouch keys list` shows. */
export interface StoredKey {
  kid: string
  algorithm: string
  generation: number
  createdAt: Date
  activatesAt: Date
  retiresAt: Date | null
}

export interface RotationResult {
  added: { kid: string, generation: number, activatesAt: string }
  retiring: Array<{ kid: string, retiresAt: string }>
  dropped: string[]
}

export interface SigningKeyStore {
  /**
   * The algorithm's keys, newest generation first, opened with the master
   * secret. On an empty table it first imports the legacy key file
   * (DATA_DIR/signing-keys.json) or creates a key. `notes` says what it did.
   */
  load (): Promise<{ keys: SigningKey[], notes: string[] }>
  /**
   * Adds the next generation when the newest is older than the rotation
   * interval, or always with `force`. Undefined when none was due, or when
   * another instance rotated first (its key is then in the table).
   */
  rotate (options?: { force?: boolean }): Promise<RotationResult | undefined>
  /** The named secret, created (from `initial`) on first use; the first creator wins. */
  secret (name: string, initial: () => Promise<{ value: string, from?: string }>): Promise<{ value: string, notes: string[] }>
}

/** Every stored key's public identity and schedule, by algorithm then newest first; no sealed value is read, so no master key is needed. */
export function listStoredKeys (db: Db): Promise<StoredKey[]> {
  return db.signingKey.findMany({
    orderBy: [{ algorithm: 'asc' }, { generation: 'desc' }],
    select: { kid: true, algorithm: true, generation: true, createdAt: true, activatesAt: true, retiresAt: true },
  })
}

const sealName = (kid: string) => `signing-key:${kid}`
const secretName = (name: string) => `secret:${name}`
const iso = (ms: number) => new Date(ms).toISOString()

export function createSigningKeyStore (db: Db, sealer: Sealer, settings: SigningKeySettings, now: () => number = Date.now): SigningKeyStore {
  const { algorithm } = settings
  const opened = new Map<string, SigningKey>()

  const wrongMasterKey = (what: string): ConfigError => new ConfigError('VOUCH_MASTER_KEY',
    `the ${what} in the database do not open with the master key this process has (from ${sealer.source}): ` +
    'they were sealed under another one (or altered); start every instance with the VOUCH_MASTER_KEY ' +
    "the deployment's keys were created under")

  const rows = () => db.signingKey.findMany({ where: { algorithm }, orderBy: { generation: 'desc' } })
  type Row = Awaited<ReturnType<typeof rows>>[number]

  const open = async (row: Row): Promise<SigningKey> => {
    let jwk: JWK
    try {
      jwk = JSON.parse(sealer.open(row.sealedPrivateJwk, sealName(row.kid))) as JWK
    } catch (err) {
      if (err instanceof WrongMasterKey) throw wrongMasterKey('signing keys')
      throw err
    }
    const schedule: KeySchedule = { activatesAt: row.activatesAt.toISOString(), ...(row.retiresAt && { retiresAt: row.retiresAt.toISOString() }) }
    return toSigningKey({ ...jwk, ...schedule }, algorithm)
  }

  /** Rows are immutable but for retiresAt: an opened key is reused until that changes. */
  const openCached = async (row: Row): Promise<SigningKey> => {
    const known = opened.get(row.kid)
    if (known !== undefined && known.retiresAt === row.retiresAt?.getTime()) return known
    const key = await open(row)
    opened.set(row.kid, key)
    return key
  }

  const rowOf = async (jwk: JWK & KeySchedule, generation: number, activatesAt: number) => {
    const { activatesAt: _a, retiresAt, ...privateJwk } = jwk
    const key = await toSigningKey(privateJwk, algorithm)
    return {
      kid: key.kid,
      algorithm,
      generation,
      publicJwk: JSON.stringify(key.publicJwk),
      sealedPrivateJwk: sealer.seal(JSON.stringify({ ...privateJwk, alg: algorithm }), sealName(key.kid)),
      createdAt: new Date(now()),
      activatesAt: new Date(activatesAt),
      retiresAt: retiresAt === undefined ? null : new Date(retiresAt),
    }
  }

  /** Inserts `data` as the table's first keys; false when another process did first. */
  const insertFirst = async (data: Array<Awaited<ReturnType<typeof rowOf>>>): Promise<boolean> => {
    try {
      await db.$transaction(data.map((row) => db.signingKey.create({ data: row })))
      return true
    } catch (err) {
      if (isUniqueViolation(err)) return false
      throw err
    }
  }

  /** First start: the legacy key file's keys (its order kept: the first active one signs), or a new key. */
  const initialize = async (): Promise<string[]> => {
    const file = keyFileOf(settings.dataDir)
    const legacy = (await readKeyFile(file)).filter((jwk) => hasAlgorithm(jwk, algorithm))
    const at = now()
    if (legacy.length > 0) {
      const data = await Promise.all(legacy.map((jwk, index) =>
        rowOf(jwk, legacy.length - index, jwk.activatesAt === undefined ? at : Date.parse(jwk.activatesAt))))
      if (!await insertFirst(data)) return []
      await rm(file, { force: true })
      return [`imported ${data.length} signing key(s) from ${file} into the database, sealed under the master key; the file was removed`]
    }
    return await insertFirst([await rowOf(await generatePrivateJwk(algorithm), 1, at)]) ? ['created the first signing key'] : []
  }

  return {
    async load () {
      let stored = await rows()
      let notes: string[] = []
      if (stored.length === 0) {
        notes = await initialize()
        stored = await rows()
      }
      const keys = await Promise.all(stored.map(openCached))
      for (const kid of opened.keys()) if (!stored.some((row) => row.kid === kid)) opened.delete(kid)
      return { keys, notes }
    },

    async rotate ({ force = false } = {}) {
      let stored = await rows()
      if (stored.length === 0) {
        // No key yet: the first one (created or imported) is this rotation.
        await initialize()
        stored = await rows()
        const first = stored[0]
        return first && { added: { kid: first.kid, generation: first.generation, activatesAt: first.activatesAt.toISOString() }, retiring: [], dropped: [] }
      }
      const [newest] = stored as [Row, ...Row[]]
      const at = now()
      if (!force && (settings.rotationInterval === 0 || newest.createdAt.getTime() + settings.rotationInterval * 1000 > at)) return undefined
      // Never seal a key under a master secret the table's keys do not open with.
      await open(newest)
      const activatesAt = at + settings.publishDelay * 1000
      const retiresAt = new Date(activatesAt + settings.retireAfter * 1000)
      const row = await rowOf(await generatePrivateJwk(algorithm), newest.generation + 1, activatesAt)
      const retiring = stored.filter((key) => key.retiresAt === null)
      const dropped = stored.filter((key) => key.retiresAt !== null && key.retiresAt.getTime() <= at)
      try {
        await db.$transaction([
          db.signingKey.create({ data: row }),
          db.signingKey.updateMany({ where: { kid: { in: retiring.map((key) => key.kid) }, retiresAt: null }, data: { retiresAt } }),
          db.signingKey.deleteMany({ where: { kid: { in: dropped.map((key) => key.kid) } } }),
        ])
      } catch (err) {
        // Another instance took this generation: its rotation is the one.
        if (isUniqueViolation(err)) return undefined
        throw err
      }
      return {
        added: { kid: row.kid, generation: row.generation, activatesAt: iso(activatesAt) },
        retiring: retiring.map((key) => ({ kid: key.kid, retiresAt: retiresAt.toISOString() })),
        dropped: dropped.map((key) => key.kid),
      }
    },

    async secret (name, initial) {
      const read = async (): Promise<string | undefined> => {
        const row = await db.sealedSecret.findUnique({ where: { name } })
        if (row === null) return undefined
        try {
          return sealer.open(row.sealed, secretName(name))
        } catch (err) {
          if (err instanceof WrongMasterKey) throw wrongMasterKey(`secret "${name}"`)
          throw err
        }
      }
      const existing = await read()
      if (existing !== undefined) return { value: existing, notes: [] }
      const { value, from } = await initial()
      try {
        await db.sealedSecret.create({ data: { name, sealed: sealer.seal(value, secretName(name)), createdAt: new Date(now()) } })
      } catch (err) {
        if (!isUniqueViolation(err)) throw err
        return { value: (await read())!, notes: [] }
      }
      if (from === undefined) return { value, notes: [] }
      await rm(from, { force: true })
      return { value, notes: [`imported ${from} into the database, sealed under the master key; the file was removed`] }
    },
  }
}

/** The refresh-token derivation secret: REFRESH_TOKEN_SECRET, else stored (imported once from the legacy DATA_DIR file). */
async function loadRefreshKey (configured: string | undefined, store: SigningKeyStore | undefined, dataDir: string): Promise<{ key: Uint8Array, notes: string[] }> {
  if (configured !== undefined || store === undefined) return { key: Buffer.from(configured ?? '', 'base64url'), notes: [] }
  const legacy = path.join(dataDir, 'refresh-token-secret')
  const { value, notes } = await store.secret('refresh-token-secret', async () => {
    try {
      return { value: (await readFile(legacy, 'utf8')).trim(), from: legacy }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new ConfigError('DATA_DIR', `cannot read ${legacy}: ${(err as Error).message}`)
      return { value: randomSecret() }
    }
  })
  return { key: Buffer.from(value, 'base64url'), notes }
}

export interface KeyUpkeep {
  /** Re-reads the table now (shared by concurrent callers). */
  reload (): Promise<void>
  stop (): void
}

/**
 * Keeps `keys` equal to the table: rotates when due (one instance wins),
 * tells the other instances over the bus, re-reads on their "keys" message
 * and every `intervalMs`, and lets a token with an unknown kid trigger a
 * re-read at most once a second.
 */
export function keepKeysCurrent (keys: KeySet, store: SigningKeyStore, { bus, intervalMs, onError, onRotated }: {
  bus: InvalidationBus
  intervalMs: number
  onError: (err: unknown) => void
  onRotated: (result: RotationResult) => void
}): KeyUpkeep {
  let running: Promise<void> | undefined
  let lastReload = 0
  const reload = (): Promise<void> => {
    running ??= (async () => {
      try {
        lastReload = Date.now()
        keys.replace((await store.load()).keys)
      } catch (err) {
        onError(err)
      } finally {
        running = undefined
      }
    })()
    return running
  }
  const tick = async () => {
    try {
      const rotated = await store.rotate()
      if (rotated !== undefined) {
        onRotated(rotated)
        bus.publish({ kind: 'keys', id: rotated.added.kid })
      }
    } catch (err) {
      onError(err)
    }
    await reload()
  }
  bus.subscribe((event) => { if (event.kind === 'keys') void reload() })
  // A re-read that starts after the token arrived, at most one a second: a
  // request within a second of the last re-read waits for the next one rather
  // than being refused (that re-read may have just missed a rotation).
  let unknownKid: Promise<void> | undefined
  keys.onUnknownKid(() => {
    unknownKid ??= (async () => {
      const wait = lastReload + 1000 - Date.now()
      if (wait > 0) await sleep(wait)
      await running
      await reload()
    })().finally(() => { unknownKid = undefined })
    return unknownKid
  })
  const timer = setInterval(() => { void tick() }, intervalMs)
  timer.unref()
  void tick()
  return { reload, stop: () => clearInterval(timer) }
}

export interface KeyMaterial {
  keys: KeySet
  refreshKey: Uint8Array
  /** The stored keys' store; undefined with SIGNING_KEYS (keys the deployer manages). */
  store: SigningKeyStore | undefined
  /** What was created or imported, for the log. */
  notes: string[]
}

type KeyConfig = Pick<Config, 'dataDir' | 'tokens'>

/** The store of `config`'s keys: the master secret, the algorithm, the rotation schedule. */
export async function openSigningKeyStore (config: KeyConfig, db: Db): Promise<SigningKeyStore> {
  const { tokens } = config
  return createSigningKeyStore(db, await loadSealer(tokens.masterKey, config.dataDir), {
    algorithm: tokens.algorithm,
    publishDelay: tokens.keyPublishDelay,
    retireAfter: tokens.accessTokenTtl + tokens.clockSkew,
    rotationInterval: tokens.keyRotationInterval,
    dataDir: config.dataDir,
  })
}

/**
 * The signing keys and the refresh-derivation secret a process works with:
 * SIGNING_KEYS / REFRESH_TOKEN_SECRET when configured, else the stored ones
 * (created, or imported from DATA_DIR's files of earlier versions, on first start).
 */
export async function openKeyMaterial (config: KeyConfig, db: Db): Promise<KeyMaterial> {
  const { tokens } = config
  const needsStore = tokens.signingKeys === undefined || tokens.refreshTokenSecret === undefined
  const store = needsStore ? await openSigningKeyStore(config, db) : undefined
  const notes: string[] = []
  let keys: KeySet
  if (tokens.signingKeys !== undefined) {
    keys = await loadConfiguredKeySet(tokens.signingKeys, tokens.algorithm)
  } else {
    const loaded = await store!.load()
    keys = buildKeySet(tokens.algorithm, loaded.keys)
    notes.push(...loaded.notes)
  }
  const refresh = await loadRefreshKey(tokens.refreshTokenSecret, store, config.dataDir)
  notes.push(...refresh.notes)
  return { keys, refreshKey: refresh.key, store: tokens.signingKeys === undefined ? store : undefined, notes }
}
