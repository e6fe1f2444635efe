/**
 * @vouch/client as a new user gets it (npm run client:pack-check; in CI):
 *
 * 1. `npm pack` in packages/client: compiled JS, .d.ts, README, LICENSE and
 *    package.json only; no install script; no dependencies at all.
 * 2. `npm install <tarball>` in an empty folder outside the repository:
 *    node_modules holds @vouch/client and nothing else.
 * 3. A script of about 15 lines in that folder, using only the installed
 *    tarball in Node, against a real vouch (dist/server.js on a scratch
 *    SQLite file): register, a typed call, `vouch.fetch`, and sign-out with
 *    its reason; the error codes come from the shared list.
 *
 * Exits non-zero, saying why, when any of it fails. Needs a built root
 * (npm run build).
 */
import { execFileSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import path from 'node:path'
import { freePort } from '../test/helpers/process.js'
import { packCheck, readManifest, root } from './lib/pack-check.js'

const packageDir = path.join(root, 'packages/client')
const { scratch, fail, pack, project, install, start } = packCheck('client')

const tarball = pack(packageDir, ['index', 'error-codes', 'protocol', 'user-agent'])
const dependencies = Object.keys(readManifest(packageDir).dependencies ?? {})
if (dependencies.length > 0) fail(`the package has runtime dependencies: ${dependencies.join(', ')}`)

const app = project('node-app')
const installed = install(app, tarball)
if (installed.join(',') !== '@vouch/client') fail(`node_modules must hold @vouch/client only, not ${installed.join(', ')}`)

const vouchPort = await freePort()
const vouchUrl = `http://127.0.0.1:${vouchPort}`
console.log(`\n== vouch (dist/server.js) at ${vouchUrl}`)
await start('vouch', root, [path.join(root, 'dist/server.js')], {
  HOST: '127.0.0.1', PORT: String(vouchPort), LOG_LEVEL: 'warn',
  DATABASE_URL: `file:${path.join(scratch, 'vouch.db')}`, DATA_DIR: path.join(scratch, 'data'),
}, `${vouchUrl}/health/live`)

const source = `import { createVouchClient, isVouchError } from '@vouch/client'
import { ERROR_CODES } from '@vouch/client/error-codes'
import { describeUserAgent } from '@vouch/client/user-agent'

const vouch = createVouchClient({ baseUrl: process.env.VOUCH_URL, deviceName: 'pack check' })
const reasons = []
vouch.on('signedOut', ({ reason }) => reasons.push(reason))
const { user } = await vouch.register({ email: 'client-pack@example.com', password: 'a long pack-check password' })
const me = await vouch.me()
const viaFetch = await vouch.fetch(process.env.VOUCH_URL + '/auth/me').then((res) => res.json())
const wrong = await createVouchClient({ baseUrl: process.env.VOUCH_URL })
  .login({ email: 'client-pack@example.com', password: 'not the password at all' }).catch((err) => err)
await vouch.logout()
console.log(JSON.stringify({ same: me.id === user.id && viaFetch.id === user.id, refused: isVouchError(wrong, 'invalid_credentials'),
  known: ERROR_CODES.includes(wrong.code), reasons, signedIn: vouch.isSignedIn,
  device: describeUserAgent('Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36') }))
vouch.close()
`
writeFileSync(path.join(app, 'app.js'), source)
console.log(`\n== a Node app (${source.trim().split('\n').length} lines) using the installed client`)
const output = ((): string => {
  try {
    return execFileSync(process.execPath, ['app.js'], { cwd: app, env: { PATH: process.env.PATH ?? '', VOUCH_URL: vouchUrl }, encoding: 'utf8', timeout: 30_000 })
  } catch (err) {
    return fail(`the app failed: ${(err as { stderr?: string }).stderr ?? String(err)}`)
  }
})()
console.log(output.trim())
const result = JSON.parse(output) as { same: boolean, refused: boolean, known: boolean, reasons: string[], signedIn: boolean, device: unknown }
if (!result.same) fail('register, me() and vouch.fetch did not agree on the user')
if (!result.refused || !result.known) fail('a wrong password was not a VouchError with a known code')
if (result.reasons.join(',') !== 'logout' || result.signedIn) fail(`logout did not sign out with reason "logout": ${JSON.stringify(result)}`)
if (typeof result.device !== 'string' || !/Chrome/.test(result.device)) fail(`@vouch/client/user-agent did not name a Chrome user agent: ${JSON.stringify(result.device)}`)
console.log('\nclient pack check passed')
process.exit(0)
