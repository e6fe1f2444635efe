/**
 * The licence that package.json declares is the one in LICENSE, for vouch and
 * for each published package (npm packs a package's LICENSE whatever its
 * "files" say, so the file must be in the package's own folder).
 */
import { existsSync } from 'node:fs'
import { readFile, readdir } from 'node:fs/promises'
import path from 'node:path'
import t from 'tap'
import { root } from '../helpers/process.js'

const folders = ['.', ...(await readdir(path.join(root, 'packages'))).map((name) => `packages/${name}`)]
const rootLicense = await readFile(path.join(root, 'LICENSE'), 'utf8')

for (const folder of folders) {
  t.test(`${folder}: package.json's licence is the text of its LICENSE`, async (t) => {
    const pkg = JSON.parse(await readFile(path.join(root, folder, 'package.json'), 'utf8')) as { name: string, license?: string }
    t.equal(pkg.license, 'MIT', `${pkg.name} declares MIT`)
    const file = path.join(root, folder, 'LICENSE')
    t.ok(existsSync(file), `${folder}/LICENSE exists`)
    if (!existsSync(file)) return
    const text = await readFile(file, 'utf8')
    t.match(text, /^MIT License\n\nCopyright \(c\) \d{4} \S/, 'the MIT licence with a copyright line')
    t.match(text, /THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND/, '…and its whole text')
    t.equal(text, rootLicense, 'the same text as the repository\'s LICENSE')
  })
}
