/**
 * Where a bearer-mode client keeps its tokens between page loads (or process
 * restarts): small adapters behind one interface, sync or async, so that an
 * app can bring its own (IndexedDB, a native keychain, an encrypted file).
 *
 * What a storage holds is a secret: the refresh token. Memory (the default)
 * keeps it out of every persistent store; localStorage keeps it across
 * reloads but within reach of any script on the origin. Cookie mode, where
 * the refresh token never reaches script at all, uses no storage.
 *
 * A stored value that cannot be read back (corrupt JSON, another app's data
 * under the key, an old format) reads as "no tokens", never as an error.
 *
 * @module
 */

/**
 * What a storage keeps.
 *
 * @example
 * const tokens: StoredTokens = {
 *   accessToken: 'eyJ…', expiresAt: Date.now() + 900_000,
 *   refreshToken: '6f1c….12.Zm9v…', refreshExpiresAt: Date.now() + 14 * 86_400_000,
 *   sessionId: '6f1c1c8e-…',
 * }
 */
export interface StoredTokens {
  accessToken: string
  /** Access-token expiry, ms since the epoch (this device's clock). */
  expiresAt: number
  /** When the pair was asked for, ms since the epoch (this device's clock). */
  issuedAt?: number
  /** Absent in cookie mode (the cookie holds it). */
  refreshToken?: string
  /** Refresh-token expiry, ms since the epoch (this device's clock). */
  refreshExpiresAt: number
  sessionId: string
  /**
   * The cross-tab generation these tokens belong to (see refresh.ts);
   * internal, no secret in it.
   */
  gen?: string
}

/**
 * A token storage. Each method may return a value or a promise of one.
 *
 * @example
 * // A custom adapter over an async key-value store.
 * const storage: TokenStorage = {
 *   get: async () => JSON.parse((await kv.get('vouch')) ?? 'null'),
 *   set: async (tokens) => { await kv.put('vouch', JSON.stringify(tokens)) },
 *   clear: async () => { await kv.delete('vouch') },
 * }
 */
export interface TokenStorage {
  get (): StoredTokens | null | Promise<StoredTokens | null>
  set (tokens: StoredTokens): void | Promise<void>
  clear (): void | Promise<void>
}

/**
 * The part of the Web Storage API (`localStorage`, `sessionStorage`) the
 * adapters use.
 *
 * @example
 * const map = new Map<string, string>()
 * const area: WebStorageLike = {
 *   getItem: (key) => map.get(key) ?? null,
 *   setItem: (key, value) => { map.set(key, value) },
 *   removeItem: (key) => { map.delete(key) },
 * }
 */
export interface WebStorageLike {
  getItem (key: string): string | null
  setItem (key: string, value: string): void
  removeItem (key: string): void
}

/**
 * The default key of the Web Storage adapters.
 *
 * @example
 * localStorage.removeItem(DEFAULT_STORAGE_KEY) // forget the tokens of a client created with localStorageAdapter()
 */
export const DEFAULT_STORAGE_KEY = 'vouch:tokens'

const isNumber = (value: unknown): value is number => typeof value === 'number' && Number.isFinite(value)
const isText = (value: unknown): value is string => typeof value === 'string' && value !== ''

/**
 * `value` if it has the shape of StoredTokens, else null.
 *
 * @example
 * const tokens = parseStoredTokens(JSON.parse(raw))
 */
export function parseStoredTokens (value: unknown): StoredTokens | null {
  if (typeof value !== 'object' || value === null) return null
  const v = value as Record<string, unknown>
  if (!isText(v.accessToken) || !isNumber(v.expiresAt) || !isNumber(v.refreshExpiresAt) || !isText(v.sessionId)) return null
  if (v.refreshToken !== undefined && !isText(v.refreshToken)) return null
  if (v.gen !== undefined && typeof v.gen !== 'string') return null
  if (v.issuedAt !== undefined && !isNumber(v.issuedAt)) return null
  return {
    accessToken: v.accessToken, expiresAt: v.expiresAt, refreshExpiresAt: v.refreshExpiresAt, sessionId: v.sessionId,
    ...(v.issuedAt !== undefined && { issuedAt: v.issuedAt as number }),
    ...(v.refreshToken !== undefined && { refreshToken: v.refreshToken }),
    ...(v.gen !== undefined && { gen: v.gen as string }),
  }
}

/**
 * Keeps the tokens in this object only: gone when the page (or process)
 * goes. The default.
 *
 * @example
 * const vouch = createVouchClient({ baseUrl: 'https://auth.example.com', storage: memoryStorage() })
 */
export function memoryStorage (): TokenStorage {
  let held: StoredTokens | null = null
  return {
    get: () => held === null ? null : { ...held },
    set: (tokens) => { held = { ...tokens } },
    clear: () => { held = null },
  }
}

/**
 * An adapter over a Web Storage area, found when used (not when created), so
 * that it can be created where the area does not exist yet. Writes that the
 * area refuses (quota, Safari's private mode) throw: the caller decides.
 *
 * @example
 * const storage = webStorageAdapter(() => window.localStorage, 'my-app:vouch')
 */
export function webStorageAdapter (area: () => WebStorageLike, key: string = DEFAULT_STORAGE_KEY): TokenStorage {
  return {
    get () {
      const raw = area().getItem(key)
      if (raw === null) return null
      try {
        return parseStoredTokens(JSON.parse(raw))
      } catch {
        return null
      }
    },
    set (tokens) {
      area().setItem(key, JSON.stringify(tokens))
    },
    clear () {
      area().removeItem(key)
    },
  }
}

function globalArea (name: 'localStorage' | 'sessionStorage'): () => WebStorageLike {
  return () => {
    const area = (globalThis as Record<string, unknown>)[name] as WebStorageLike | undefined
    if (area === undefined || area === null) throw new TypeError(`${name} is not available in this environment`)
    return area
  }
}

/**
 * Keeps the tokens in `localStorage` under `key`: they survive reloads and
 * are shared by the origin's tabs. Any script running on the origin can
 * read them; prefer cookie mode for a first-party web app.
 *
 * @example
 * const vouch = createVouchClient({ baseUrl: 'https://auth.example.com', storage: localStorageAdapter() })
 */
export function localStorageAdapter (key: string = DEFAULT_STORAGE_KEY): TokenStorage {
  return webStorageAdapter(globalArea('localStorage'), key)
}

/**
 * Keeps the tokens in `sessionStorage` under `key`: they survive reloads of
 * this tab and end with it.
 *
 * @example
 * const vouch = createVouchClient({ baseUrl: 'https://auth.example.com', storage: sessionStorageAdapter('checkout:vouch') })
 */
export function sessionStorageAdapter (key: string = DEFAULT_STORAGE_KEY): TokenStorage {
  return webStorageAdapter(globalArea('sessionStorage'), key)
}
