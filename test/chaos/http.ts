/**
 * A small keep-alive JSON client for the chaos run. It never throws: a
 * request that gets no answer (refused, reset, timed out) resolves with
 * status 0 and the reason, so that every request lands in the ledger.
 */
import http from 'node:http'

export interface Answer {
  /** HTTP status; 0 when no answer came. */
  status: number
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: any
  /** Why no answer came (status 0 only). */
  error?: string
}

export interface RequestOptions {
  method: string
  path: string
  body?: unknown
  token?: string
  userAgent?: string
}

export interface JsonClient {
  request (options: RequestOptions): Promise<Answer>
  close (): void
}

export function createJsonClient (base: string, timeoutMs: number): JsonClient {
  const url = new URL(base)
  // Idle sockets are dropped well before a server's keep-alive timeout, so a request never races the server closing one.
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64, timeout: 2000 })
  return {
    request ({ method, path, body, token, userAgent }) {
      const payload = body === undefined ? undefined : JSON.stringify(body)
      return new Promise((resolve) => {
        let settled = false
        const settle = (answer: Answer) => {
          if (settled) return
          settled = true
          clearTimeout(timer)
          resolve(answer)
        }
        const req = http.request({
          host: url.hostname,
          port: url.port,
          method,
          path,
          agent,
          headers: {
            ...(payload !== undefined && { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) }),
            ...(token !== undefined && { authorization: `Bearer ${token}` }),
            ...(userAgent !== undefined && { 'user-agent': userAgent }),
          },
        }, (res) => {
          const chunks: Buffer[] = []
          res.on('data', (chunk: Buffer) => chunks.push(chunk))
          res.on('error', (err) => settle({ status: 0, body: undefined, error: err.message }))
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString()
            let parsed: unknown
            try { parsed = text ? JSON.parse(text) : undefined } catch { parsed = text }
            settle({ status: res.statusCode ?? 0, body: parsed })
          })
        })
        const timer = setTimeout(() => {
          settle({ status: 0, body: undefined, error: `no answer within ${timeoutMs} ms` })
          req.destroy()
        }, timeoutMs)
        req.on('error', (err: NodeJS.ErrnoException) => settle({ status: 0, body: undefined, error: err.code ?? err.message }))
        req.end(payload)
      })
    },
    close () { agent.destroy() },
  }
}
