/**
 * Device names and user agents are shown back in the device list: control,
 * format and bidirectional characters must not reach it, whether they came
 * in the body (deviceName) or in the User-Agent header, at sign-up, sign-in
 * or from a row stored before the rule existed.
 */
import t from 'tap'
import { createTestApp } from '../helpers/app.js'
import { PASSWORD, bearer, post, uniqueEmail } from '../helpers/client.js'

/** Characters that must never be displayed: controls, format (bidi, zero-width), separators, lone surrogates. */
const HIDDEN = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/u

interface Listed { id: string, deviceName: string | null, userAgent: string | null, current: boolean }

async function signUp (app: Parameters<typeof post>[0], deviceName: string, userAgent: string) {
  const res = await post(app, '/auth/register', { email: uniqueEmail(), password: PASSWORD, deviceName }, { 'user-agent': userAgent })
  if (res.statusCode !== 201) throw new Error(`register failed: ${res.statusCode} ${res.body}`)
  return res.json() as { accessToken: string, sessionId: string, user: { id: string } }
}

async function devices (app: Parameters<typeof post>[0], accessToken: string): Promise<Listed[]> {
  const res = await app.inject({ method: 'GET', url: '/auth/sessions', headers: bearer(accessToken) })
  if (res.statusCode !== 200) throw new Error(`session list failed: ${res.statusCode} ${res.body}`)
  return res.json().sessions
}

t.test('a bidi override cannot disguise a device name: "laptop\\u202Egnp.exe\\u202C" is listed as "laptopgnp.exe"', async (t) => {
  const { app } = await createTestApp(t)
  const a = await signUp(app, 'laptop\u202Egnp.exe\u202C', 'curl/8.0')
  const [listed] = await devices(app, a.accessToken)
  t.equal(listed?.deviceName, 'laptopgnp.exe')
})

t.test('control, format and bidi characters never reach the device list, from the body or the User-Agent header', async (t) => {
  const { app, db } = await createTestApp(t)
  const hostile: Array<[string, string]> = [
    ['ANSI \u001b[31mred\u001b[0m', 'Mozilla/5.0 \u001b]0;owned\u0007 (X11)'],
    ['line one\r\nline two', 'agent\r\nX-Injected: yes'],
    ['\u2066isolate\u2069 \u202Aembed\u202C \u200Emark\u200F', 'ua\u202E\u2067txt.exe'],
    ['zero\u200Bwidth\uFEFF soft\u00ADhyphen \u061Carabic-mark', 'tab\there\u2028sep\u2029para'],
    ['C1 \u0085next\u009Bcsi', 'del\u007F'],
  ]
  let last = { accessToken: '' }
  const email = uniqueEmail()
  await post(app, '/auth/register', { email, password: PASSWORD }, { 'user-agent': 'setup' })
  for (const [deviceName, userAgent] of hostile) {
    const res = await post(app, '/auth/login', { email, password: PASSWORD, deviceName }, { 'user-agent': userAgent })
    t.equal(res.statusCode, 200, JSON.stringify(deviceName))
    last = res.json()
  }
  const listed = await devices(app, last.accessToken)
  t.equal(listed.length, hostile.length + 1)
  for (const session of listed) {
    for (const field of ['deviceName', 'userAgent'] as const) {
      const value = session[field]
      t.notOk(value !== null && HIDDEN.test(value), `${field} ${JSON.stringify(value)} holds nothing invisible`)
      t.notOk(value !== null && /\s{2}|^\s|\s$/.test(value), `${field} ${JSON.stringify(value)}: whitespace collapsed and trimmed`)
    }
  }
  const stored = await db.session.findMany({ where: { user: { email } }, select: { deviceName: true, userAgent: true } })
  t.notOk(stored.some((row) => HIDDEN.test(`${row.deviceName ?? ''}${row.userAgent ?? ''}`)), 'nor are they stored')
  const names = listed.map((session) => session.deviceName)
  t.ok(names.includes('line one line two'), 'a line break becomes a space')
  t.ok(names.includes('ANSI [31mred [0m'), 'an ANSI escape loses its ESC')
  t.ok(names.includes('isolate embed mark'), 'isolates, embeddings and marks are removed')
  t.ok(listed.some((session) => session.userAgent === 'agent X-Injected: yes'), 'CR/LF in the user agent become a space')
})

t.test('what remains is kept: accents (NFC), emoji with their joiners, and the 100-character limit after cleaning', async (t) => {
  const { app } = await createTestApp(t)
  const email = uniqueEmail()
  await post(app, '/auth/register', { email, password: PASSWORD })
  const signIn = async (deviceName: string) => {
    const res = await post(app, '/auth/login', { email, password: PASSWORD, deviceName })
    return { status: res.statusCode, token: res.statusCode === 200 ? (res.json() as { accessToken: string }).accessToken : '' }
  }
  t.equal((await signIn('Ame\u0301lie\u2019s phone')).status, 200)
  t.equal((await signIn('\u{1F469}\u200D\u{1F4BB} work')).status, 200)
  t.equal((await signIn('\u0958'.repeat(100))).status, 200, 'a name NFC expands to 200 code points')
  t.equal((await signIn('\u202E\u202C\u200B')).status, 200, 'a name of nothing visible')
  const last = await signIn('x'.repeat(100))
  t.equal(last.status, 200)
  t.equal((await signIn('x'.repeat(101))).status, 400, 'over 100 characters is still validation_failed')

  const names = (await devices(app, last.token)).map((session) => session.deviceName)
  t.ok(names.includes('Amélie\u2019s phone'), 'composed (NFC)')
  t.ok(names.includes('\u{1F469}\u200D\u{1F4BB} work'), 'an emoji keeps its zero-width joiner')
  t.ok(names.includes('x'.repeat(100)), '100 characters fit')
  const expanded = names.find((name) => name?.startsWith('\u0915\u093C'))
  t.equal(typeof expanded === 'string' ? [...expanded].length : -1, 100, 'cut to 100 code points after normalisation')
  t.ok(names.includes(null), 'a name of nothing visible is no name')
})

t.test('a session stored before the rule is cleaned when listed', async (t) => {
  const { app, db } = await createTestApp(t)
  const a = await signUp(app, 'ok', 'ok')
  await db.session.update({ where: { id: a.sessionId }, data: { deviceName: 'old\u202Egnp.exe', userAgent: 'old\r\nagent\u001b[2J' } })
  const [listed] = await devices(app, a.accessToken)
  t.equal(listed?.deviceName, 'oldgnp.exe')
  t.equal(listed?.userAgent, 'old agent [2J')
})
