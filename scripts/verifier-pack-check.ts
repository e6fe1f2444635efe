/**
 * @vouch/verifier as a new user gets it (npm run verifier:pack-check; in CI):
 *
 * 1. `npm pack` in packages/verifier (its prepare script builds dist/): the
 *    tarball holds compiled JS, .d.ts, README, LICENSE and package.json only, and no
 *    install script.
 * 2. `npm install <tarball>` in an empty folder outside the repository:
 *    node_modules must hold @vouch/verifier and jose, nothing else. Printed
 *    with sizes.
 * 3. A real vouch (dist/server.js, on a scratch SQLite file) and two
 *    resource servers of about 15 lines written into temp folders, using only
 *    the installed tarball: one with the Fastify plugin (fastify installed
 *    into a second folder, so the first stays jose-only), one a fetch-style
 *    handler with verifyRequest on Node's http. Both accept a fresh token and
 *    refuse it within 1 s of logout-all.
 *
 * Exits non-zero, saying why, when any of it fails. Needs the npm registry
 * (for jose and fastify) and a built root (npm run build).
 */
import { randomBytes } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { freePort } from '../test/helpers/process.js'
import { packCheck, readManifest, root } from './lib/pack-check.js'

const packageDir = path.join(root, 'packages/verifier')
const REVOCATION_BOUND_MS = 1000
const rootPackage = readManifest(root) as { dependencies: Record<string, string> }
const { scratch, fail, pack, project, install, start } = packCheck('verifier')

// 1. Pack.
const tarball = pack(packageDir, ['index', 'fastify', 'express', 'protocol'])
if (readManifest(packageDir).dependencies?.jose !== rootPackage.dependencies.jose) {
  fail(`the package's jose (${readManifest(packageDir).dependencies?.jose}) is not the server's (${rootPackage.dependencies.jose})`)
}

// 2. Install into an empty folder outside the repository.
const plain = project('plain-api')
const withFastify = project('fastify-api')
const installed = install(plain, tarball)
if (installed.join(',') !== '@vouch/verifier,jose') fail(`node_modules must hold @vouch/verifier and jose only, not ${installed.join(', ')}`)

console.log(`\n== the Fastify example's own folder: the tarball and fastify@${rootPackage.dependencies.fastify}`)
const withFastifyInstalled = install(withFastify, tarball, `fastify@${rootPackage.dependencies.fastify}`)
console.log(`${withFastifyInstalled.length} packages (fastify's own); nothing more for the plugin`)

// 3. A real vouch and two resource servers.
const vouchPort = await freePort()
const vouchUrl = `http://127.0.0.1:${vouchPort}`
const client = { id: 'orders', secret: randomBytes(32).toString('base64url') }
console.log(`\n== vouch (dist/server.js) at ${vouchUrl}`)
await start('vouch', root, [path.join(root, 'dist/server.js')], {
  HOST: '127.0.0.1', PORT: String(vouchPort), LOG_LEVEL: 'warn',
  DATABASE_URL: `file:${path.join(scratch, 'vouch.db')}`, DATA_DIR: path.join(scratch, 'data'),
  JWT_ISSUER: vouchUrl, RESOURCE_CLIENTS: `${client.id}:${client.secret}`, REVOCATION_FEED_HEARTBEAT_MS: '500',
}, `${vouchUrl}/health/live`)

const options = `{ vouchUrl: process.env.VOUCH_URL, issuer: process.env.VOUCH_URL, audience: 'vouch', clientId: 'orders', clientSecret: process.env.VOUCH_CLIENT_SECRET }`
const servers = {
  fastify: {
    dir: withFastify,
    source: `import Fastify from 'fastify'
import { vouchAuth } from '@vouch/verifier/fastify'

const app = Fastify()
await app.register(vouchAuth, ${options})
app.get('/orders', async (request) => ({ owner: request.user.sub }))
app.get('/health', { config: { public: true } }, async () => ({ ok: true }))
await app.vouch.ready()
await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT) })
`,
  },
  'verifyRequest + node:http': {
    dir: plain,
    source: `import { createServer } from 'node:http'
import { createVerifier, VerifierError } from '@vouch/verifier'

const verifier = createVerifier(${options})
async function handle (request) { // fetch-style: Request in, Response out
  if (new URL(request.url).pathname === '/health') return Response.json({ ok: true })
  try {
    return Response.json({ owner: (await verifier.verifyRequest(request)).sub })
  } catch (err) {
    if (err instanceof VerifierError) return err.toResponse()
    throw err
  }
}
await verifier.ready()
createServer(async (req, res) => {
  const response = await handle(new Request(\`http://\${req.headers.host}\${req.url}\`, { headers: { authorization: req.headers.authorization ?? '' } }))
  res.writeHead(response.status, Object.fromEntries(response.headers)).end(await response.text())
}).listen(Number(process.env.PORT), '127.0.0.1')
`,
  },
}

const apis: Array<{ name: string, base: string }> = []
for (const [name, { dir, source }] of Object.entries(servers)) {
  writeFileSync(path.join(dir, 'server.js'), source)
  const port = await freePort()
  const base = `http://127.0.0.1:${port}`
  console.log(`== resource server (${name}, ${source.trim().split('\n').length} lines) at ${base}`)
  await start(name, dir, ['server.js'], { PORT: String(port), VOUCH_URL: vouchUrl, VOUCH_CLIENT_SECRET: client.secret }, `${base}/health`)
  apis.push({ name, base })
}

const json = async (res: Response) => ({ status: res.status, body: await res.json().catch(() => undefined) as Record<string, unknown> | undefined })
const registered = await json(await fetch(`${vouchUrl}/auth/register`, {
  method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: 'pack-check@example.com', password: 'a long pack-check password' }),
}))
if (registered.status !== 201) fail(`registering at vouch answered ${registered.status}: ${JSON.stringify(registered.body)}`)
const token = registered.body!.accessToken as string
const orders = (base: string) => fetch(`${base}/orders`, { headers: { authorization: `Bearer ${token}` } }).then(json)

console.log('\n== a valid token is accepted, and refused after logout-all')
for (const { name, base } of apis) {
  const res = await orders(base)
  if (res.status !== 200) fail(`${name} refused a valid token: ${res.status} ${JSON.stringify(res.body)}`)
  console.log(`${name}: 200 ${JSON.stringify(res.body)}`)
}
const loggedOut = await fetch(`${vouchUrl}/auth/logout-all`, { method: 'POST', headers: { authorization: `Bearer ${token}` } })
const revokedAt = performance.now()
if (loggedOut.status !== 204) fail(`logout-all answered ${loggedOut.status}`)
await Promise.all(apis.map(async ({ name, base }) => {
  for (;;) {
    const res = await orders(base)
    const after = performance.now() - revokedAt
    if (res.status === 401 && res.body?.code === 'token_revoked') {
      console.log(`${name}: 401 token_revoked ${after.toFixed(0)} ms after logout-all answered`)
      return
    }
    if (res.status !== 200) fail(`${name} answered ${res.status} ${JSON.stringify(res.body)} instead of 200 or 401 token_revoked`)
    if (after > REVOCATION_BOUND_MS) fail(`${name} still accepted the token ${after.toFixed(0)} ms after logout-all`)
    await sleep(5)
  }
}))
console.log('\nverifier pack check passed')
process.exit(0)
