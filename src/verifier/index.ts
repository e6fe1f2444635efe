/**
 * vouch/verifier: checks vouch access tokens inside a resource server, with
 * no call to vouch per request, and keeps vouch's promise that a bumped
 * version or a revoked session kills a token at once. Depends on jose only.
 *
 * - Signature, `alg`, `typ: at+jwt`, `iss`, `aud`, `exp`/`nbf` (with skew)
 *   against vouch's published JWKS (jose's remote key set: cached, refetched
 *   when an unknown `kid` appears, so key rotation needs no restart).
 * - Revocation: the verifier follows vouch's revocation feed (server-sent
 *   events at /auth/revocations, client credentials) and keeps, for the
 *   longest an access token lives, each user's lowest valid version and the
 *   revoked session ids. Reconnects resume from a cursor, missing nothing.
 * - Fail closed: once the feed has been silent for longer than
 *   `maxFeedSilenceMs`, `verify` refuses every token
 *   (`revocation_feed_unavailable`), or asks vouch's introspection endpoint
 *   when `fallback: 'introspect'`, until the feed is back.
 *
 * @example
 * const verifier = createVerifier({ vouchUrl: 'https://auth.example.com', issuer: 'https://auth.example.com',
 *   audience: 'vouch', clientId: 'orders', clientSecret: process.env.VOUCH_CLIENT_SECRET })
 * const claims = await verifier.verify(token) // throws VerifierError
 */
import { createRemoteJWKSet, errors, jwtVerify } from 'jose'

export interface VerifierOptions {
  /** vouch's base URL; the JWKS, feed and introspection URLs default from it. */
  vouchUrl: string
  issuer: string
  audience: string
  clientId: string
  clientSecret: string
  /** Default ['EdDSA', 'ES256']. Never HMAC, never none. */
  algorithms?: string[]
  /** Seconds of clock skew tolerated; default 5. */
  clockTolerance?: number
  /** Milliseconds of feed silence (no event, no heartbeat) after which verification fails closed; default 15000. */
  maxFeedSilenceMs?: number
  /** What to do without a live feed; default 'fail-closed'. */
  fallback?: 'fail-closed' | 'introspect'
  /** Least milliseconds between two JWKS fetches triggered by an unknown kid; default 5000. */
  jwksCooldownMs?: number
  jwksUrl?: string
  feedUrl?: string
  introspectionUrl?: string
}

export interface VerifiedToken {
  sub: string
  sid: string
  ver: number
  jti: string
  iat: number
  exp: number
}

export type VerifierErrorCode = 'invalid_token' | 'token_expired' | 'token_revoked' | 'revocation_feed_unavailable'

export class VerifierError extends Error {
  override name = 'VerifierError'
  constructor (readonly code: VerifierErrorCode, message: string) {
    super(message)
  }
}

export interface Verifier {
  verify (token: string): Promise<VerifiedToken>
  /** Resolves once the feed has delivered its first state (or rejects after `timeoutMs`). */
  ready (timeoutMs?: number): Promise<void>
  /** True while the feed is live (heard from within the silence bound). */
  readonly feedLive: boolean
  close (): Promise<void>
}

interface Batch { users: Array<{ id: string, minVersion: number }>, sessions: string[], cursor: number }

export function createVerifier (options: VerifierOptions): Verifier {
  const base = options.vouchUrl.replace(/\/+$/, '')
  const jwks = createRemoteJWKSet(new URL(options.jwksUrl ?? `${base}/.well-known/jwks.json`), { cooldownDuration: options.jwksCooldownMs ?? 5000 })
  const feedUrl = options.feedUrl ?? `${base}/auth/revocations`
  const introspectionUrl = options.introspectionUrl ?? `${base}/auth/introspect`
  const silenceMs = options.maxFeedSilenceMs ?? 15_000
  const basic = `Basic ${Buffer.from(`${encodeURIComponent(options.clientId)}:${encodeURIComponent(options.clientSecret)}`).toString('base64')}`

  // Revocation state, each entry kept for the longest a token lives.
  const minVersions = new Map<string, { version: number, until: number }>()
  const revokedSessions = new Map<string, number>()
  let maxTokenAgeMs = 15 * 60_000
  let cursor = 0
  let lastHeard = 0
  let synced = false
  let closed = false
  let abort: AbortController | undefined
  const readyWaiters: Array<() => void> = []

  const apply = (batch: Batch) => {
    const until = Date.now() + maxTokenAgeMs
    for (const { id, minVersion } of batch.users) {
      const known = minVersions.get(id)
      if (known === undefined || minVersion >= known.version) minVersions.set(id, { version: minVersion, until })
    }
    for (const id of batch.sessions) revokedSessions.set(id, until)
    cursor = Math.max(cursor, batch.cursor)
  }

  const prune = () => {
    const now = Date.now()
    for (const [id, entry] of minVersions) if (entry.until <= now) minVersions.delete(id)
    for (const [id, until] of revokedSessions) if (until <= now) revokedSessions.delete(id)
  }

  const feedLive = () => synced && Date.now() - lastHeard <= silenceMs

  /** One connection: reads events until the stream ends or goes silent. */
  const follow = async () => {
    abort = new AbortController()
    const watchdog = setInterval(() => { if (Date.now() - lastHeard > silenceMs) abort?.abort() }, Math.min(1000, silenceMs / 2))
    watchdog.unref()
    try {
      const res = await fetch(`${feedUrl}?since=${cursor}`, {
        headers: { authorization: basic, accept: 'text/event-stream' },
        signal: abort.signal,
      })
      if (!res.ok || res.body === null) throw new Error(`revocation feed answered ${res.status}`)
      const decoder = new TextDecoder()
      let buffer = ''
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true })
        let end: number
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end)
          buffer = buffer.slice(end + 2)
          const event = /^event: (.+)$/m.exec(block)?.[1]
          const data = /^data: (.+)$/m.exec(block)?.[1]
          if (event === 'ready' && data) {
            // `ready` carries the backlog since our cursor: only once it is applied is the state current.
            const ready = JSON.parse(data) as Batch & { maxTokenAge: number }
            maxTokenAgeMs = ready.maxTokenAge * 1000
            apply(ready)
            synced = true
            for (const resolve of readyWaiters.splice(0)) resolve()
          } else if (event === 'revocations' && data) {
            apply(JSON.parse(data) as Batch)
          }
          // Only a complete event or heartbeat counts as hearing from the feed.
          if (synced) lastHeard = Date.now()
        }
        prune()
      }
    } finally {
      clearInterval(watchdog)
    }
  }

  const run = async () => {
    let attempt = 0
    while (!closed) {
      try {
        await follow()
        attempt = 0
      } catch {
        attempt += 1
      }
      if (!closed) await new Promise((resolve) => setTimeout(resolve, Math.min(200 * 2 ** attempt, 5000)).unref())
    }
  }
  void run()

  const introspect = async (token: string): Promise<void> => {
    let active = false
    try {
      const res = await fetch(introspectionUrl, {
        method: 'POST',
        headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ token }).toString(),
      })
      if (!res.ok) throw new Error(`introspection answered ${res.status}`)
      active = ((await res.json()) as { active?: unknown }).active === true
    } catch {
      throw new VerifierError('revocation_feed_unavailable', 'revocation state unavailable and introspection failed')
    }
    if (!active) throw new VerifierError('token_revoked', 'the token is not active')
  }

  return {
    async verify (token) {
      let payload
      try {
        ({ payload } = await jwtVerify(token, jwks, {
          algorithms: options.algorithms ?? ['EdDSA', 'ES256'],
          typ: 'at+jwt',
          issuer: options.issuer,
          audience: options.audience,
          clockTolerance: options.clockTolerance ?? 5,
          requiredClaims: ['sub', 'sid', 'ver', 'jti', 'iat', 'exp'],
        }))
      } catch (err) {
        if (err instanceof errors.JWTExpired) throw new VerifierError('token_expired', 'the token has expired')
        throw new VerifierError('invalid_token', 'the token is invalid')
      }
      const { sub, sid, ver, jti, iat, exp } = payload as Record<string, unknown>
      if (typeof sub !== 'string' || typeof sid !== 'string' || typeof jti !== 'string' ||
          typeof ver !== 'number' || !Number.isSafeInteger(ver) || ver < 0 || typeof iat !== 'number' || typeof exp !== 'number') {
        throw new VerifierError('invalid_token', 'the token is invalid')
      }
      if (!feedLive()) {
        if (options.fallback === 'introspect') await introspect(token)
        else throw new VerifierError('revocation_feed_unavailable', 'the revocation feed is unavailable')
      } else {
        const min = minVersions.get(sub)
        if ((min !== undefined && ver < min.version) || revokedSessions.has(sid)) {
          throw new VerifierError('token_revoked', 'the token has been revoked')
        }
      }
      return { sub, sid, ver, jti, iat, exp }
    },

    ready (timeoutMs = 10_000) {
      if (synced) return Promise.resolve()
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('the revocation feed did not connect')), timeoutMs)
        readyWaiters.push(() => { clearTimeout(timer); resolve() })
      })
    },

    get feedLive () { return feedLive() },

    async close () {
      closed = true
      abort?.abort()
    },
  }
}
