/**
 * An instance starts beside one that is already serving from the same
 * database. On SQLite the start used to fail: every start ran Prisma's
 * schema engine, which cannot open a database file another process holds
 * open ("SocketTimeout"); now a start on an up-to-date database reads the
 * applied migrations with one query and leaves the engine alone
 * (src/db/migrate.ts).
 */
import t from 'tap'
import { instanceDeployment } from '../helpers/instances.js'
import { call } from '../helpers/process.js'

t.test('a second instance starts while the first is serving from the same database, and both answer', async (t) => {
  const deployment = await instanceDeployment(t, {})
  const first = await deployment.start('a')
  // Serving: its connection to the database is open and has been used.
  const registered = await call(first.base, '/auth/register', { method: 'POST', body: { email: 'second@example.com', password: 'correct horse battery staple' } })
  t.equal(registered.status, 201)
  t.equal((await call(first.base, '/health/ready')).status, 200)

  const second = await deployment.start('b')
  t.equal((await call(second.base, '/health/ready')).status, 200, 'the second instance is ready')
  const token = registered.body.accessToken as string
  t.equal((await call(second.base, '/auth/me', { token })).status, 200, 'and serves the first one\'s users')
  t.equal((await call(first.base, '/auth/me', { token })).status, 200, 'the first one still serves')
})
