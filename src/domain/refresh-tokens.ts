/**
 * The refresh token's format and the arithmetic of its rotation, kept apart
 * from the database so that each rule can be read (and tested) on its own.
 *
 * A refresh token is `<sessionId>.<generation>.<chain><tag>`:
 *
 * - `generation` counts the rotations of the session (0 when it starts; a
 *   refresh or a re-key adds one). The session row keeps the current one.
 * - `chain` (43 characters, 256 bits) is the secret: random when the session
 *   starts or is re-keyed, then HMAC(refreshKey, sessionId.parentChain) at each
 *   rotation. Deterministic, so concurrent refreshes of one token all get the
 *   same child (no second chain), yet unpredictable without the key.
 * - `tag` (22 characters, 128 bits) is HMAC(refreshKey, sessionId, version,
 *   generation): it proves that vouch issued a token of that generation for
 *   that session under that tokenVersion. A token whose tag is right but whose
 *   generation is behind the session's is therefore a superseded token of this
 *   session, however many rotations ago, with no row stored per token; a token
 *   from before a re-key (another version) is merely invalid.
 *
 * Only the SHA-256 of everything after the session id is stored. Tokens of the
 * first release (`<sessionId>.<secret>`, no generation) still refresh: they
 * rotate into the current format.
 */
import { createHmac } from 'node:crypto'
import { deriveSecret, hashSecret, isUuid, randomSecret, sameHash, SECRET_LENGTH } from '../crypto/secrets.js'

/** base64url length of the 16-byte generation tag. */
const TAG_LENGTH = 22
const BODY = new RegExp(`^[A-Za-z0-9_-]{${SECRET_LENGTH + TAG_LENGTH}}$`)
const LEGACY_SECRET = new RegExp(`^[A-Za-z0-9_-]{${SECRET_LENGTH}}$`)
const GENERATION = /^(0|[1-9][0-9]{0,9})$/
const MAX_GENERATION = 2 ** 31 - 1

export interface PresentedRefreshToken {
  readonly sessionId: string
  /** Undefined for a first-release token, which carries none. */
  readonly generation: number | undefined
  readonly chain: string
  readonly tag: string | undefined
  /** What the session row stores for this token. */
  readonly hash: string
}

/** The parts of a refresh token, or undefined for anything not shaped like one. */
export function parseRefreshToken (token: string): PresentedRefreshToken | undefined {
  const parts = token.split('.')
  const sessionId = parts[0] ?? ''
  if (!isUuid(sessionId)) return undefined
  const stored = token.slice(sessionId.length + 1)
  if (parts.length === 2 && LEGACY_SECRET.test(parts[1]!)) {
    return { sessionId, generation: undefined, chain: parts[1]!, tag: undefined, hash: hashSecret(stored) }
  }
  if (parts.length !== 3 || !GENERATION.test(parts[1]!) || !BODY.test(parts[2]!)) return undefined
  const generation = Number(parts[1])
  if (generation > MAX_GENERATION) return undefined
  const body = parts[2]!
  return { sessionId, generation, chain: body.slice(0, SECRET_LENGTH), tag: body.slice(SECRET_LENGTH), hash: hashSecret(stored) }
}

/** Where a session's refresh chain stands: what the row holds. */
export interface RefreshState {
  readonly id: string
  readonly tokenVersion: number
  readonly refreshGeneration: number
  readonly refreshTokenHash: string
  readonly previousRefreshTokenHash: string | null
}

/** A token to hand out, and the hash to store for it. */
export interface IssuedRefreshToken {
  readonly token: string
  readonly hash: string
}

export function createRefreshTokens (refreshKey: Uint8Array) {
  const tagOf = (sessionId: string, version: number, generation: number): string =>
    createHmac('sha256', refreshKey).update(`generation:${sessionId}.${version}.${generation}`).digest('base64url').slice(0, TAG_LENGTH)

  const issue = (sessionId: string, version: number, generation: number, chain: string): IssuedRefreshToken => {
    const stored = `${generation}.${chain}${tagOf(sessionId, version, generation)}`
    return { token: `${sessionId}.${stored}`, hash: hashSecret(stored) }
  }

  const isPrevious = (session: RefreshState, presented: PresentedRefreshToken): boolean =>
    session.previousRefreshTokenHash !== null && sameHash(presented.hash, session.previousRefreshTokenHash)

  return {
    /** The first token of a session, or of a session re-keyed at `generation`. */
    fresh: (sessionId: string, version: number, generation: number): IssuedRefreshToken =>
      issue(sessionId, version, generation, randomSecret()),

    /** The token that rotating `presented` produces: the same for every caller that presents it. */
    child: (session: Pick<RefreshState, 'id' | 'tokenVersion' | 'refreshGeneration'>, presented: PresentedRefreshToken, generation: number): IssuedRefreshToken =>
      issue(session.id, session.tokenVersion, generation, deriveSecret(refreshKey, session.id, presented.chain)),

    isCurrent: (session: RefreshState, presented: PresentedRefreshToken): boolean =>
      sameHash(presented.hash, session.refreshTokenHash),

    /** The token the last rotation replaced. */
    isPrevious,

    /**
     * Was this once the session's valid token under its current version, since
     * superseded? True for the previous token, and for any earlier generation
     * whose tag vouch computed (nobody else can).
     */
    isSuperseded (session: RefreshState, presented: PresentedRefreshToken): boolean {
      if (isPrevious(session, presented)) return true
      const { generation, tag } = presented
      return generation !== undefined && tag !== undefined && generation < session.refreshGeneration &&
        sameHash(tag, tagOf(session.id, session.tokenVersion, generation))
    },
  }
}
