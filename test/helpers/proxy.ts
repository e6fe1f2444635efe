import { createServer, connect, type Server, type Socket } from 'node:net'

/** A loopback TCP proxy to `target` that can be cut (connections dropped, port closed) and restored. */
export async function createCuttableProxy (target: { host: string, port: number }) {
  const sockets = new Set<Socket>()
  let server: Server | undefined
  let port = 0
  const start = () => new Promise<void>((resolve) => {
    server = createServer((client) => {
      const upstream = connect(target.port, target.host)
      for (const socket of [client, upstream]) {
        sockets.add(socket)
        socket.on('close', () => sockets.delete(socket))
        socket.on('error', () => { client.destroy(); upstream.destroy() })
      }
      client.pipe(upstream).pipe(client)
    })
    server.listen(port, '127.0.0.1', () => {
      port = (server!.address() as { port: number }).port
      resolve()
    })
  })
  await start()
  return {
    get port () { return port },
    start,
    cut: () => new Promise<void>((resolve) => {
      for (const socket of sockets) socket.destroy()
      server!.close(() => resolve())
    }),
  }
}
