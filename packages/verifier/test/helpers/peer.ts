/**
 * The tests' own peer: a real node:http server on loopback that serves a
 * JWKS (keys made with jose) and a revocation feed spoken with the
 * protocol's own formatters, under the test's control: each feed request is
 * handed to the test, which writes events, heartbeats or raw bytes, ends the
 * stream, or refuses it. A manual clock goes with it, so the verifier's time
 * decisions are moved, not slept through.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { exportJWK, generateKeyPair, SignJWT, type JWK, type JWTPayload, type CryptoKey } from 'jose'
import type { Test } from 'tap'
import { createVerifier, type Verifier, type VerifierOptions } from '../../src/index.js'
import { formatFeedEvent, formatHeartbeat, type FeedReady, type RevocationBatch } from '../../src/protocol.js'

export const ISSUER = 'https://auth.example.test'
export const AUDIENCE = 'vouch'
export const CLIENT = { id: 'orders', secret: 'a-strong:client secret of 40 characters!' }

/** A clock the test moves. */
export function manualClock (start = Date.UTC(2030, 0, 1)) {
  let now = start
  return {
    now: () => now,
    advance (ms: number) { now += ms },
    set (ms: number) { now = ms },
  }
}
export type ManualClock = ReturnType<typeof manualClock>

export interface SigningKey { kid: string, privateKey: CryptoKey, jwk: JWK }

export async function signingKey (kid: string, alg: 'EdDSA' | 'ES256' = 'EdDSA'): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true })
  return { kid, privateKey, jwk: { ...await exportJWK(publicKey), kid, alg, use: 'sig' } }
}

/** One feed request, as the peer received it. */
export interface FeedConnection {
  readonly since: string | null
  readonly authorization: string | undefined
  readonly accept: string | undefined
  write (text: string | Uint8Array): void
  ready (data: Partial<FeedReady>): void
  revocations (batch: RevocationBatch): void
  heartbeat (now?: number): void
  /** Ends the stream (the verifier sees the connection lost). */
  end (): void
  /** Resolves when the verifier closed the connection. */
  readonly closed: Promise<void>
}

export interface Peer {
  readonly url: string
  /** Keys published in the JWKS (replace the array's contents to rotate). */
  keys: SigningKey[]
  /** JWKS requests served so far. */
  readonly jwksRequests: number
  /** Next feed request (already connected ones are not repeated). */
  nextConnection (): Promise<FeedConnection>
  /** While set, feed requests are answered with this status instead of a stream. */
  refuseWith: number | undefined
  close (): Promise<void>
}

export async function startPeer (t: Test, initialKeys: SigningKey[]): Promise<Peer> {
  const waiting: Array<(connection: FeedConnection) => void> = []
  const queued: FeedConnection[] = []
  const open = new Set<ServerResponse>()
  let jwksRequests = 0

  const feed = (req: IncomingMessage, res: ServerResponse, url: URL) => {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store' })
    res.flushHeaders()
    open.add(res)
    const closed = new Promise<void>((resolve) => res.on('close', () => { open.delete(res); resolve() }))
    const connection: FeedConnection = {
      since: url.searchParams.get('since'),
      authorization: req.headers.authorization,
      accept: req.headers.accept,
      write: (text) => { res.write(text) },
      ready: (data) => {
        res.write(formatFeedEvent('ready', { maxTokenAge: 900, heartbeatMs: 1000, users: [], sessions: [], cursor: 1, ...data }))
      },
      revocations: (batch) => { res.write(formatFeedEvent('revocations', batch)) },
      heartbeat: (now = 0) => { res.write(formatHeartbeat(now)) },
      end: () => { res.end() },
      closed,
    }
    const taker = waiting.shift()
    if (taker) taker(connection)
    else queued.push(connection)
  }

  const peer: Peer = {
    url: '',
    keys: [...initialKeys],
    get jwksRequests () { return jwksRequests },
    refuseWith: undefined,
    nextConnection () {
      const connection = queued.shift()
      if (connection) return Promise.resolve(connection)
      return new Promise((resolve) => waiting.push(resolve))
    },
    close: async () => {},
  }

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://peer')
    if (url.pathname === '/.well-known/jwks.json') {
      jwksRequests++
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ keys: peer.keys.map((key) => key.jwk) }))
    } else if (url.pathname === '/auth/revocations') {
      if (peer.refuseWith !== undefined) {
        res.writeHead(peer.refuseWith, { 'content-type': 'application/json' })
        res.end('{}')
      } else {
        feed(req, res, url)
      }
    } else {
      res.writeHead(404)
      res.end()
    }
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  const close = async () => {
    for (const res of open) res.destroy()
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }
  Object.assign(peer, { url: `http://127.0.0.1:${port}`, close })
  t.teardown(close)
  return peer
}

/** A loopback URL where nothing listens. */
export async function deadUrl (): Promise<string> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return `http://127.0.0.1:${port}`
}

/** A verifier of the peer's tokens, closed at the end of the test. */
export function verifierFor (t: Test, peer: Pick<Peer, 'url'>, options: Partial<VerifierOptions> = {}): Verifier {
  const verifier = createVerifier({
    vouchUrl: peer.url, issuer: ISSUER, audience: AUDIENCE, clientId: CLIENT.id, clientSecret: CLIENT.secret,
    jwksCooldownMs: 0, ...options,
  })
  t.teardown(() => verifier.close())
  return verifier
}

/** An access token as vouch signs it, at the clock's time, with claims and header overridden as asked. */
export async function accessToken (key: SigningKey, clock: { now (): number }, claims: JWTPayload = {}, header: Record<string, unknown> = {}): Promise<string> {
  const iat = Math.floor(clock.now() / 1000)
  return new SignJWT({
    iss: ISSUER, aud: AUDIENCE, sub: 'user-1', sid: 'session-1', ver: 0, jti: `jti-${Math.random()}`, client_id: 'web',
    iat, exp: iat + 900, ...claims,
  }).setProtectedHeader({ alg: 'EdDSA', typ: 'at+jwt', kid: key.kid, ...header }).sign(key.privateKey)
}

/** Waits for I/O to have happened (the verifier read what the peer wrote), checking every few milliseconds; fails after `limitMs`. */
export async function until (condition: () => boolean | Promise<boolean>, what: string, limitMs = 5000): Promise<void> {
  const start = performance.now()
  while (!await condition()) {
    if (performance.now() - start > limitMs) throw new Error(`timed out waiting until ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 2))
  }
}

/** What verify says: 'accepted', or the VerifierError's code. */
export async function outcome (verifier: Verifier, token: string): Promise<string> {
  try {
    await verifier.verify(token)
    return 'accepted'
  } catch (err) {
    if (err instanceof Error && 'code' in err) return String(err.code)
    throw err
  }
}
