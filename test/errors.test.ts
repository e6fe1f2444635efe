/** The error catalogue is complete and documented, both ways. */
import { readFile } from 'node:fs/promises'
import t from 'tap'
import { errorCatalogue } from '../src/errors.js'

t.test('every error code has a 4xx/5xx status and a message', async (t) => {
  for (const [code, { status, message }] of Object.entries(errorCatalogue)) {
    t.ok(status >= 400 && status < 600, `${code} has an error status`)
    t.ok(message.length > 0, `${code} has a message`)
  }
})

t.test('every error code is in the README with its status, and the README lists no other', async (t) => {
  const readme = await readFile(new URL('../README.md', import.meta.url), 'utf8')
  const rows = [...readme.matchAll(/^\| `([a-z_]+)` \| (\d{3}) \|/gm)].map(([, code, status]) => [code, Number(status)])
  t.same(Object.fromEntries(rows), Object.fromEntries(Object.entries(errorCatalogue).map(([code, { status }]) => [code, status])))
})

const spec = await readFile(new URL('../../shared/SPEC.md', import.meta.url), 'utf8').catch(() => undefined)
t.test("every code of SPEC.md's error table is in the catalogue with the same status", {
  skip: spec === undefined && 'shared/SPEC.md is not beside this checkout',
}, async (t) => {
  const rows = [...spec!.matchAll(/^\| ([a-z_]+) \| (\d{3})/gm)]
  t.ok(rows.length >= 14, 'the spec table was found')
  for (const [, code = '', status] of rows) {
    t.equal(errorCatalogue[code as keyof typeof errorCatalogue]?.status, Number(status), code)
  }
})
