/**
 * @vouch/client's typed calls against a real vouch: every end-user route
 * answers in the documented shape, and every refusal is a VouchError whose
 * code comes from the catalogue shared with the server (so a `switch` on it
 * is exhaustive). The reset link is taken from the development outbox, as a
 * user would from their mail.
 */
import { readdir, readFile } from 'node:fs/promises'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { createVouchClient, isVouchError, VouchError, type ErrorCode, type VouchClient } from '@vouch/client'
import { PASSWORD, uniqueEmail } from '../helpers/client.js'
import { startSdkServer } from '../helpers/sdk.js'

async function codeOf (promise: Promise<unknown>): Promise<ErrorCode | string> {
  try {
    await promise
    return 'resolved'
  } catch (err) {
    return err instanceof VouchError ? err.code : `not a VouchError: ${String(err)}`
  }
}

/** The reset token of the latest mail in the outbox. */
async function mailedToken (dir: string): Promise<string> {
  const outbox = path.join(dir, 'outbox')
  for (let i = 0; i < 200; i++) {
    const files = (await readdir(outbox).catch(() => [] as string[])).sort()
    if (files.length > 0) {
      const eml = (await readFile(path.join(outbox, files.at(-1)!), 'utf8')).replace(/=\r?\n/g, '').replace(/=3D/g, '=')
      return decodeURIComponent(/token=([^\s&]+)/.exec(eml)![1]!)
    }
    await sleep(25)
  }
  throw new Error('no mail in the outbox')
}

function open (t: Parameters<typeof startSdkServer>[0], base: string, deviceName?: string): VouchClient {
  const vouch = createVouchClient({ baseUrl: `${base}/`, watch: false, ...(deviceName && { deviceName }) })
  t.teardown(() => vouch.close())
  return vouch
}

t.test('register, login, me and sessions answer in their documented shapes', async (t) => {
  const server = await startSdkServer(t)
  const email = uniqueEmail('shapes')
  const signedIn: string[] = []
  const first = open(t, server.base, 'Work laptop')
  first.on('signedIn', ({ session }) => signedIn.push(session.sessionId))
  const { user, session } = await first.register({ email, password: PASSWORD })
  t.match(user, { id: String, email, createdAt: String })
  t.match(session, { sessionId: String, accessToken: String, expiresAt: Number, userId: user.id })
  t.same(signedIn, [session.sessionId], 'signedIn')
  t.same(await first.me(), user)

  const second = open(t, server.base)
  const other = await second.login({ email, password: PASSWORD, deviceName: 'Phone' })
  t.not(other.sessionId, session.sessionId)
  const devices = await first.sessions()
  t.equal(devices.length, 2)
  for (const device of devices) {
    t.match(device, { id: String, userAgent: String, ip: String, createdAt: String, lastUsedAt: String, expiresAt: String, current: Boolean })
  }
  t.same(devices.map((d) => [d.deviceName, d.current]).sort(), [['Phone', false], ['Work laptop', true]], 'names from the option or the call; current marks this one')
})

t.test('refusals are VouchErrors with the catalogue code and status', async (t) => {
  const server = await startSdkServer(t)
  const email = uniqueEmail('errors')
  const vouch = open(t, server.base)
  await vouch.register({ email, password: PASSWORD })
  const other = open(t, server.base)
  t.equal(await codeOf(other.register({ email, password: PASSWORD })), 'email_taken')
  t.equal(await codeOf(other.register({ email: uniqueEmail(), password: 'short' })), 'weak_password')
  t.equal(await codeOf(other.login({ email, password: 'wrong password' })), 'invalid_credentials')
  t.equal(await codeOf(other.login({ email: 'x'.repeat(2000), password: PASSWORD })), 'validation_failed')
  t.equal(await codeOf(other.me()), 'invalid_token', 'signed out: refused without asking vouch')
  t.equal(await codeOf(other.refresh()), 'refresh_token_invalid')
  t.equal(await codeOf(vouch.revokeSession('no-such-session')), 'not_found')
  try {
    await other.login({ email, password: 'wrong again' })
  } catch (err) {
    t.ok(isVouchError(err, 'invalid_credentials'))
    t.equal((err as VouchError).status, 401)
    t.equal((err as VouchError).name, 'VouchError')
    t.match((err as VouchError).message, /incorrect/)
  }
})

t.test('forgot and reset password from the mailed link; with RESET_SIGNS_IN the reset signs in', async (t) => {
  for (const signsIn of [false, true]) {
    const server = await startSdkServer(t, { env: { RESET_SIGNS_IN: String(signsIn) } })
    const email = uniqueEmail('reset')
    const before = open(t, server.base)
    await before.register({ email, password: PASSWORD })
    const reasons: string[] = []
    before.on('signedOut', ({ reason }) => reasons.push(reason))

    const forgetful = open(t, server.base)
    await forgetful.forgotPassword(email)
    await forgetful.forgotPassword(uniqueEmail('nobody'))
    const token = await mailedToken(server.dir)
    const result = await forgetful.resetPassword({ token, newPassword: 'a fresh passphrase' })
    t.same(result, { signedIn: signsIn }, `RESET_SIGNS_IN=${signsIn}`)
    t.equal(forgetful.isSignedIn, signsIn)
    t.equal(await codeOf(forgetful.resetPassword({ token, newPassword: 'again and again' })), 'reset_token_invalid', 'a link works once')
    await codeOf(before.me())
    t.same(reasons, ['revoked'], 'the reset ended the sessions from before')
    const after = open(t, server.base)
    await after.login({ email, password: 'a fresh passphrase' })
    t.ok(after.isSignedIn, 'the new password works')
  }
})

t.test('deleteAccount: the password again, then signed out with logout', async (t) => {
  const server = await startSdkServer(t)
  const email = uniqueEmail('delete')
  const vouch = open(t, server.base)
  await vouch.register({ email, password: PASSWORD })
  const reasons: string[] = []
  vouch.on('signedOut', ({ reason }) => reasons.push(reason))
  t.equal(await codeOf(vouch.deleteAccount('not my password')), 'invalid_credentials')
  t.ok(vouch.isSignedIn)
  await vouch.deleteAccount(PASSWORD)
  t.same(reasons, ['logout'])
  t.equal(await codeOf(open(t, server.base).login({ email, password: PASSWORD })), 'invalid_credentials', 'the account is gone')
})

t.test("a mistake in the options is a TypeError at creation, like any caller's mistake", async (t) => {
  t.throws(() => createVouchClient({ baseUrl: 'auth.example.com' }), TypeError)
  t.throws(() => createVouchClient({ baseUrl: 'https://a.example', mode: 'session' as 'cookie' }), TypeError)
  t.throws(() => createVouchClient({ baseUrl: 'https://a.example', mode: 'cookie', storage: { get: () => null, set: () => {}, clear: () => {} } }), TypeError)
  t.throws(() => createVouchClient({ baseUrl: 'https://a.example', refreshLeeway: -1 }), TypeError)
})
