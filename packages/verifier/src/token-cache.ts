/**
 * A cache of verified tokens: the claims of a token whose signature and
 * claims have already been checked, so that a token seen again is not
 * checked again (an EdDSA verification costs 50–100 µs; a hit, a Map lookup).
 *
 * Invariants:
 * - Keyed by the exact, whole token string: no hash or prefix that two tokens
 *   could share. A token one character off is another key.
 * - An entry never outlives its `exp`: `get` drops it once `exp <= nowSeconds`
 *   (the caller passes its clock minus any tolerance it applies to `exp`).
 * - Bounded by entries and by bytes (an estimate: the token's UTF-16 size plus
 *   the claims'); the least recently used entries go first. O(1) per call.
 * - It holds only what its caller put there: the caller sets only tokens that
 *   verified, and clears it when what they were verified against changes (a
 *   key set). Revocation is not its business: it is checked on every request.
 *
 * @module
 */

/**
 * How big a {@link VerifiedTokenCache} may grow.
 *
 * @example
 * const options: VerifiedTokenCacheOptions = { maxEntries: 1000, maxBytes: 1024 * 1024 }
 */
export interface VerifiedTokenCacheOptions {
  /** Most tokens kept; default 10,000. 0 keeps nothing. */
  maxEntries?: number
  /** Most bytes kept (token length × 2 plus an estimate of the claims, per entry); default 8 MiB. 0 keeps nothing. */
  maxBytes?: number
}

/**
 * Claims of tokens verified earlier, by token, least recently used first out.
 *
 * @example
 * const cached = cache.get(token, Date.now() / 1000)
 * const claims = cached ?? await verifySignature(token) // then cache.set(token, claims)
 */
export interface VerifiedTokenCache<C extends { exp: number }> {
  /** The claims of a token verified earlier, or undefined when not cached or when exp <= nowSeconds (then it is dropped). */
  get (token: string, nowSeconds: number): C | undefined
  /** Keeps the claims of a token that verified (evicting the least recently used beyond the bounds; an entry larger than `maxBytes` is not kept). */
  set (token: string, claims: C): void
  /** Drops everything (e.g. the key set changed: a key removed must not keep its tokens alive). */
  clear (): void
  /** Entries held. */
  readonly size: number
  /** Estimated bytes held. */
  readonly bytes: number
}

/** Default {@link VerifiedTokenCacheOptions.maxEntries}. */
const MAX_ENTRIES = 10_000
/** Default {@link VerifiedTokenCacheOptions.maxBytes}: 8 MiB. */
const MAX_BYTES = 8 * 1024 * 1024
/** A Map entry, the entry record and the claims object's header, roughly (V8, 64-bit). */
const ENTRY_OVERHEAD = 96
/** A property slot holding a number (a heap number at worst), or a reference. */
const SLOT = 16
/** A string's header. */
const STRING_HEADER = 16

/** The bytes a claims value is taken to hold: its strings as UTF-16, numbers and references as slots, nested values by their JSON. */
function valueBytes (value: unknown): number {
  if (typeof value === 'string') return SLOT + STRING_HEADER + value.length * 2
  if (value === null || typeof value !== 'object') return SLOT
  let json: string | undefined
  try { json = JSON.stringify(value) } catch { json = undefined }
  return SLOT + (json === undefined ? 0 : json.length * 2)
}

function claimsBytes (claims: object): number {
  let bytes = 0
  for (const name of Object.keys(claims)) bytes += valueBytes((claims as Record<string, unknown>)[name])
  return bytes
}

function bound (value: unknown, fallback: number, name: string): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw new TypeError(`"${name}" must be a non-negative integer`)
  return value
}

interface Entry<C> {
  readonly claims: C
  readonly exp: number
  readonly bytes: number
}

/**
 * Checks the options of {@link createVerifiedTokenCache} (a TypeError naming
 * the wrong one, under `prefix`) and fills in the defaults.
 *
 * @example
 * const { maxEntries, maxBytes } = resolveVerifiedTokenCacheOptions({ maxEntries: 100 })
 */
export function resolveVerifiedTokenCacheOptions (options: VerifiedTokenCacheOptions = {}, prefix = ''): Required<VerifiedTokenCacheOptions> {
  if (typeof options !== 'object' || options === null) throw new TypeError(`"${prefix || 'options'}" must be an object`)
  const dot = prefix === '' ? '' : `${prefix}.`
  return Object.freeze({
    maxEntries: bound(options.maxEntries, MAX_ENTRIES, `${dot}maxEntries`),
    maxBytes: bound(options.maxBytes, MAX_BYTES, `${dot}maxBytes`),
  })
}

/**
 * Creates a {@link VerifiedTokenCache}. A wrong option is a TypeError naming it.
 *
 * @example
 * import { createVerifiedTokenCache, type AccessTokenClaims } from '@vouch/verifier/protocol'
 *
 * const verified = createVerifiedTokenCache<AccessTokenClaims>({ maxEntries: 10_000 })
 * let claims = verified.get(token, Date.now() / 1000 - clockToleranceSeconds)
 * if (claims === undefined) {
 *   claims = await checkSignatureAndClaims(token) // throws when it does not verify: nothing is cached
 *   verified.set(token, claims)
 * }
 * if (isRevoked(claims)) throw new Error('revoked') // still on every request
 */
export function createVerifiedTokenCache<C extends { exp: number }> (options?: VerifiedTokenCacheOptions): VerifiedTokenCache<C> {
  const { maxEntries, maxBytes } = resolveVerifiedTokenCacheOptions(options)
  // Insertion order is recency: a hit is moved to the end, eviction takes the first.
  const entries = new Map<string, Entry<C>>()
  let bytes = 0

  const drop = (token: string, entry: Entry<C>) => {
    entries.delete(token)
    bytes -= entry.bytes
  }

  return {
    get (token, nowSeconds) {
      const entry = entries.get(token)
      if (entry === undefined) return undefined
      // exp <= now, written so that a NaN now keeps nothing either.
      if (!(entry.exp > nowSeconds)) {
        drop(token, entry)
        return undefined
      }
      entries.delete(token)
      entries.set(token, entry)
      return entry.claims
    },

    set (token, claims) {
      const previous = entries.get(token)
      if (previous !== undefined) drop(token, previous)
      const exp = claims.exp
      if (typeof exp !== 'number' || Number.isNaN(exp)) return
      const size = ENTRY_OVERHEAD + STRING_HEADER + token.length * 2 + claimsBytes(claims)
      if (size > maxBytes || maxEntries === 0) return
      while (entries.size >= maxEntries || bytes + size > maxBytes) {
        const oldest = entries.keys().next()
        if (oldest.done === true) break
        drop(oldest.value, entries.get(oldest.value)!)
      }
      entries.set(token, { claims, exp, bytes: size })
      bytes += size
    },

    clear () {
      entries.clear()
      bytes = 0
    },

    get size () { return entries.size },

    get bytes () { return bytes },
  }
}
