/**
 * The address vouch records for a request (sessions, the device list,
 * security events, mails): what trust-proxy resolved when that is an IP
 * address, else the connection's own. Under TRUST_PROXY=true a client
 * chooses its X-Forwarded-For; whatever it writes there must not reach the
 * records as text (control characters, kilobytes, markup).
 */
import t from 'tap'
import { createTestApp } from '../helpers/app.js'
import { PASSWORD, uniqueEmail } from '../helpers/client.js'

t.test('a forwarded address that is not an IP address is not recorded; one that is, is', async (t) => {
  const { app, db } = await createTestApp(t, { env: { TRUST_PROXY: 'true' } })
  const cases: Array<[string, string]> = [
    ['203.0.113.9', '203.0.113.9'],
    ['2001:db8::7', '2001:db8::7'],
    ['<script>alert(1)</script>', '127.0.0.1'],
    [`x${'\u0085'.repeat(3)}y${'9'.repeat(5000)}`, '127.0.0.1'],
    ['203.0.113.9 extra', '127.0.0.1'],
  ]
  for (const [forwarded, recorded] of cases) {
    const res = await app.inject({
      method: 'POST', url: '/auth/register', remoteAddress: '127.0.0.1',
      payload: { email: uniqueEmail('address'), password: PASSWORD }, headers: { 'x-forwarded-for': forwarded },
    })
    t.equal(res.statusCode, 201)
    const session = await db.session.findUniqueOrThrow({ where: { id: res.json().sessionId }, select: { ip: true } })
    t.equal(session.ip, recorded, `X-Forwarded-For ${JSON.stringify(forwarded.slice(0, 30))}: the session records ${recorded}`)
    const event = await db.securityEvent.findFirstOrThrow({ where: { sessionId: res.json().sessionId }, select: { ip: true } })
    t.equal(event.ip, recorded, 'and so does its event')
  }
})
