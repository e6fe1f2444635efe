/** The documents point at tests that exist, and say what those tests say. */
import { access, readFile } from 'node:fs/promises'
import t from 'tap'

const root = new URL('../', import.meta.url)

t.test('every test SECURITY.md cites exists, and every quoted test name is in it', async (t) => {
  const security = await readFile(new URL('SECURITY.md', root), 'utf8')
  const rows = security.split('\n').filter((line) => line.startsWith('| ') && line.includes('test/'))
  t.ok(rows.length >= 30, `${rows.length} threat rows`)
  for (const row of rows) {
    const testCell = row.split(' | ').at(-1)!
    // The server's tests (test/…) and the workspace packages' (packages/<name>/test/…).
    const citations = [...testCell.matchAll(/`((?:packages\/[a-z-]+\/)?test\/[^`]+\.ts)`(?: \(([^)]*)\))?/g)]
    t.ok(citations.length > 0, `a test is cited: ${row.slice(0, 60)}`)
    for (const [, file, names] of citations) {
      await t.resolves(access(new URL(file!, root)), `${file} exists`)
      const source = await readFile(new URL(file!, root), 'utf8')
      for (const name of [...(names ?? '').matchAll(/"([^"]+)"/g)].map((m) => m[1]!)) {
        const fragments = name.split(' … ')
        t.ok(fragments.every((fragment) => source.includes(fragment)), `${file} has a test about "${name}"`)
      }
    }
  }
})
