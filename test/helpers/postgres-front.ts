/**
 * A loopback TCP front for PostgreSQL that can play the server going down
 * the way PostgreSQL itself does: while "shut down", every new connection's
 * startup message is answered with the FATAL error a stopping (or starting)
 * postmaster sends — SQLSTATE 57P03 "the database system is shutting down"
 * by default, or any other code — and the connection is closed; connections
 * already open keep passing through until `dropAll` (a crash, a cut cable)
 * or until the real server terminates them (pg_terminate_backend: 57P01).
 */
import { createServer, connect, type Socket } from 'node:net'
import type { Test } from 'tap'

/** SSLRequest's magic protocol number: the client asks for TLS before its startup message. */
const SSL_REQUEST = 80877103

export interface Refusal {
  code: string
  message: string
}

export const SHUTTING_DOWN: Refusal = Object.freeze({ code: '57P03', message: 'the database system is shutting down' })

/** A protocol-3 ErrorResponse ('E') with severity FATAL. */
function fatal ({ code, message }: Refusal): Buffer {
  const fields = [['S', 'FATAL'], ['V', 'FATAL'], ['C', code], ['M', message]]
  const body = Buffer.concat([...fields.map(([tag, value]) => Buffer.from(`${tag}${value}\0`)), Buffer.from([0])])
  const head = Buffer.alloc(5)
  head.write('E')
  head.writeInt32BE(body.length + 4, 1)
  return Buffer.concat([head, body])
}

export interface PostgresFront {
  port: number
  /** `url` with its host and port replaced by the front's. */
  urlFor (url: string): string
  /** From now on, new connections are refused with `refusal` (57P03 by default). */
  shutDown (refusal?: Refusal): void
  /** New connections pass through again. */
  restart (): void
  /** Destroys every open connection, as a crash or a network cut would. */
  dropAll (): void
}

export async function createPostgresFront (t: Test, target: { host: string, port: number }): Promise<PostgresFront> {
  const sockets = new Set<Socket>()
  let refusal: Refusal | undefined
  const server = createServer((client) => {
    sockets.add(client)
    client.on('close', () => sockets.delete(client))
    client.on('error', () => client.destroy())
    if (refusal === undefined) {
      const upstream = connect(target.port, target.host)
      sockets.add(upstream)
      upstream.on('close', () => { sockets.delete(upstream); client.destroy() })
      upstream.on('error', () => { upstream.destroy(); client.destroy() })
      client.on('close', () => upstream.destroy())
      client.pipe(upstream).pipe(client)
      return
    }
    const answer = refusal
    let pending = Buffer.alloc(0)
    client.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk])
      while (pending.length >= 8 && pending.length >= pending.readInt32BE(0)) {
        const length = pending.readInt32BE(0)
        const protocol = pending.readInt32BE(4)
        pending = pending.subarray(length)
        if (protocol === SSL_REQUEST) {
          client.write('N')
        } else {
          client.end(fatal(answer))
          return
        }
      }
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as { port: number }).port
  const dropAll = () => { for (const socket of sockets) socket.destroy() }
  t.teardown(() => new Promise<void>((resolve) => {
    dropAll()
    server.close(() => resolve())
  }))
  return {
    port,
    urlFor: (url) => {
      const via = new URL(url)
      via.hostname = '127.0.0.1'
      via.port = String(port)
      return via.toString()
    },
    shutDown: (answer = SHUTTING_DOWN) => { refusal = answer },
    restart: () => { refusal = undefined },
    dropAll,
  }
}
