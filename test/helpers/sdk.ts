/**
 * What the @vouch/client tests (test/client/) run against: the whole vouch
 * app listening on a loopback port, with a count of the requests it received
 * per route (an onRequest hook, so the count is vouch's, not the client's),
 * and an application API in front of it (a plain node:http server, as an
 * app's own backend would be) that checks each bearer token by asking
 * vouch's GET /auth/me and relays vouch's verdict: 401 with vouch's code, or
 * 200 with the user.
 */
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Test } from 'tap'
import { createTestApp, type TestContext, type TestOptions } from './app.js'

export interface SdkServer extends TestContext {
  base: string
  /** Requests vouch has received for `METHOD /path` (query excluded). */
  requests (route: string): number
}

export async function startSdkServer (t: Test, options: TestOptions = {}): Promise<SdkServer> {
  const context = await createTestApp(t, options)
  const counts = new Map<string, number>()
  context.app.addHook('onRequest', async (request) => {
    const route = `${request.method} ${request.url.split('?')[0]}`
    counts.set(route, (counts.get(route) ?? 0) + 1)
  })
  await context.app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = context.app.server.address() as AddressInfo
  return { ...context, base: `http://127.0.0.1:${port}`, requests: (route) => counts.get(route) ?? 0 }
}

export interface Api {
  base: string
  /** Requests the API has received. */
  readonly calls: number
}

/**
 * The application's API. GET /api/profile answers the user; POST /api/echo
 * answers the JSON body it was sent (so a retried call can be seen to carry
 * its body again); GET /api/always-expired answers 401 token_expired
 * whatever the token.
 */
export async function startApi (t: Test, vouchBase: string): Promise<Api> {
  let calls = 0
  const server = http.createServer(async (req, res) => {
    calls += 1
    const chunks: Buffer[] = []
    for await (const chunk of req) chunks.push(chunk as Buffer)
    const send = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      res.writeHead(status, { 'content-type': 'application/json', ...headers })
      res.end(JSON.stringify(body))
    }
    if (req.url === '/api/always-expired') {
      return send(401, { statusCode: 401, error: 'Unauthorized', code: 'token_expired', message: 'The access token has expired.' },
        { 'www-authenticate': 'Bearer error="invalid_token"' })
    }
    const verdict = await fetch(`${vouchBase}/auth/me`, { headers: { authorization: req.headers.authorization ?? '' } })
    const body = await verdict.json() as Record<string, unknown>
    if (verdict.status !== 200) return send(verdict.status, body, { 'www-authenticate': verdict.headers.get('www-authenticate') ?? 'Bearer' })
    if (req.url === '/api/echo') return send(200, { user: body.id, echo: JSON.parse(Buffer.concat(chunks).toString('utf8') || 'null') })
    return send(200, { user: body.id, email: body.email })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => {
    server.closeAllConnections()
    server.close(() => resolve())
  }))
  const { port } = server.address() as AddressInfo
  return { base: `http://127.0.0.1:${port}`, get calls () { return calls } }
}

/** A token storage whose contents the test can read (a thief's view of a device), async like IndexedDB. */
export function inspectableStorage () {
  let held: unknown = null
  const later = () => new Promise((resolve) => setTimeout(resolve, 1))
  return {
    get held () { return held as { refreshToken?: string, accessToken: string, sessionId: string } | null },
    async get () { await later(); return held === null ? null : JSON.parse(JSON.stringify(held)) },
    async set (tokens: object) { await later(); held = JSON.parse(JSON.stringify(tokens)) },
    async clear () { await later(); held = null },
  }
}
