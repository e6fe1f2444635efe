/**
 * The mail templates a deployer can replace (src/mail/template.ts):
 * RESET_EMAIL_TEMPLATE and NEW_DEVICE_EMAIL_TEMPLATE are read and checked
 * when vouch starts. A file that cannot be read, has no `Subject:` line, or
 * uses a placeholder its mail does not fill stops the start with a
 * ConfigError naming the setting, instead of mailing users a literal
 * "{{token}}" (or nothing) later. The default templates pass the same check.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import t, { type Test } from 'tap'
import { ConfigError } from '../../src/config.js'
import { createTestApp } from '../helpers/app.js'

/** Each replaceable template, with a line that uses every placeholder its mail fills. */
const TEMPLATES = [
  { setting: 'RESET_EMAIL_TEMPLATE', valid: 'Subject: Reset ({{email}})\n\n{{link}} within {{minutes}} minutes\n' },
  {
    setting: 'NEW_DEVICE_EMAIL_TEMPLATE',
    valid: 'Subject: New sign-in ({{device}})\n\n{{email}} {{device}} {{browser}} {{os}} {{userAgent}} {{ip}} {{time}}\n{{link}}\n',
  },
] as const

async function tempDir (t: Test): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'vouch-templates-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

/** What building the app with `env` throws, or undefined. */
async function startError (t: Test, env: Record<string, string>): Promise<unknown> {
  try {
    await createTestApp(t, { env })
  } catch (err) {
    return err
  }
  return undefined
}

for (const { setting, valid } of TEMPLATES) {
  t.test(`${setting}: a template with every placeholder its mail fills starts`, async (t) => {
    const file = path.join(await tempDir(t), 'template.txt')
    await writeFile(file, valid)
    t.equal(await startError(t, { [setting]: file }), undefined)
  })

  t.test(`${setting}: a template that cannot be used stops the start with a ConfigError naming ${setting}`, async (t) => {
    const dir = await tempDir(t)
    /** [what, how the file at `file` is made, what the refusal says]. */
    const cases: Array<[string, (file: string) => Promise<unknown>, RegExp]> = [
      ['a file that does not exist', async () => {}, /cannot read .*ENOENT/],
      ['a folder', (file) => mkdir(file), /cannot read .*EISDIR/],
      ['no Subject line', (file) => writeFile(file, 'Hello,\n\n{{link}}\n'), /starts with a "Subject: …" line/],
      ['an unknown placeholder', (file) => writeFile(file, valid.replace('\n\n', '\n\n{{token}}\n')), /unknown placeholder \{\{token\}\}/],
      ['an unknown placeholder in the subject', (file) => writeFile(file, valid.replace('Subject: ', 'Subject: {{name}} ')), /unknown placeholder \{\{name\}\}/],
      ['a placeholder written with spaces', (file) => writeFile(file, valid.replace('{{email}}', '{{ email }}')), /unknown placeholder \{\{ email \}\}/],
    ]
    for (const [what, make, problem] of cases) {
      const file = path.join(dir, what.replace(/\W+/g, '-'))
      await make(file)
      const err = await startError(t, { [setting]: file })
      t.type(err, ConfigError, `${what}: a ConfigError`)
      t.equal((err as ConfigError | undefined)?.variable, setting, `${what}: about ${setting}`)
      t.match((err as Error | undefined)?.message, problem, `${what}: says what is wrong`)
      t.match((err as Error | undefined)?.message, file, `${what}: names the file`)
    }
  })
}

t.test('the unknown-placeholder refusal lists the placeholders the mail fills', async (t) => {
  const file = path.join(await tempDir(t), 'template.txt')
  await writeFile(file, 'Subject: New sign-in\n\n{{location}}\n')
  const err = await startError(t, { NEW_DEVICE_EMAIL_TEMPLATE: file }) as Error
  t.match(err.message, /unknown placeholder \{\{location\}\}/)
  t.match(err.message, /\{\{email\}\}, \{\{device\}\}, \{\{browser\}\}, \{\{os\}\}, \{\{userAgent\}\}, \{\{ip\}\}, \{\{time\}\}, \{\{link\}\}/)
})

t.test('with NEW_DEVICE_ALERTS=false the new-device template is not read', async (t) => {
  t.equal(await startError(t, { NEW_DEVICE_ALERTS: 'false', NEW_DEVICE_EMAIL_TEMPLATE: '/nonexistent/new-device.txt' }), undefined)
})
