/**
 * The account page as the server serves it (the page's behaviour is tested
 * in a real browser, test/browser/): which URLs answer and with what, the
 * page CSP on page responses only, traversal and unknown files refused with
 * the catalogue's not_found, ACCOUNT_PAGE=false, and the page's own files
 * checked for what the CSP would block (inline script or style) and for
 * unlabelled inputs.
 */
import { readdir, readFile } from 'node:fs/promises'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { createTestApp } from '../helpers/app.js'
import { PASSWORD, uniqueEmail } from '../helpers/client.js'
import { PAGE_ROOT, SDK_ROOT } from '../../src/http/routes/account-page.js'

/** design.md section 4, word for word. */
const PAGE_CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
const API_CSP = "default-src 'none';frame-ancestors 'none'"

const PAGES = ['/account', '/account/', '/account/reset-password']

/** The ids the browser tests rely on (design.md section 4). */
const STABLE_IDS: Record<string, string[]> = {
  'index.html': ['signin-form', 'signin-email', 'signin-password', 'signup-form', 'signup-email', 'signup-password',
    'account', 'account-email', 'devices', 'revoke-others', 'logout-all', 'logout', 'password-form',
    'current-password', 'new-password', 'forgot-form', 'forgot-email', 'status'],
  'reset-password.html': ['reset-form', 'reset-password', 'reset-password-confirm', 'status'],
}

async function pageFiles (extension: string): Promise<string[]> {
  return (await readdir(PAGE_ROOT)).filter((name) => name.endsWith(extension)).sort()
}

function assertNotFound (t: Test, res: { statusCode: number, headers: Record<string, unknown>, body: string }, url: string) {
  t.equal(res.statusCode, 404, `${url}: 404`)
  t.match(res.headers['content-type'], /^application\/json/, `${url}: JSON`)
  t.equal(JSON.parse(res.body).code, 'not_found', `${url}: the catalogue's not_found`)
  t.equal(res.headers['content-security-policy'], API_CSP, `${url}: an error keeps the deny-all CSP`)
  t.notMatch(res.body, /workspaces|"dependencies"|<html/i, `${url}: no file content`)
}

/** GET with the path sent exactly as written (inject and fetch would normalise "..", "." and "//"). */
async function rawGet (port: number, rawPath: string): Promise<{ statusCode: number, headers: Record<string, unknown>, body: string }> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: rawPath }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => { body += chunk })
      res.on('end', () => resolve({ statusCode: res.statusCode ?? 0, headers: res.headers, body }))
    }).on('error', reject)
  })
}

async function listen (t: Test, app: FastifyInstance): Promise<number> {
  await app.listen({ host: '127.0.0.1', port: 0 })
  return (app.server.address() as AddressInfo).port
}

t.test('the pages are HTML with the page CSP; the API keeps its deny-all CSP', async (t) => {
  const { app } = await createTestApp(t)
  for (const url of PAGES) {
    const res = await app.inject({ method: 'GET', url })
    t.equal(res.statusCode, 200, `${url}: 200`)
    t.equal(res.headers['content-type'], 'text/html; charset=utf-8', `${url}: HTML`)
    t.equal(res.headers['content-security-policy'], PAGE_CSP, `${url}: the page CSP, exactly`)
    t.equal(res.headers['x-content-type-options'], 'nosniff', `${url}: nosniff`)
    t.equal(res.headers['x-frame-options'], 'DENY', `${url}: no framing`)
    t.equal(res.headers['cache-control'], 'no-store', `${url}: not kept in caches or the back/forward cache`)
  }
  t.match((await app.inject({ method: 'GET', url: '/account' })).body, /id="signin-form"/, '/account is the account page')
  t.match((await app.inject({ method: 'GET', url: '/account/reset-password?token=abc' })).body, /id="reset-form"/,
    '/account/reset-password (with its token) is the reset page')
  const head = await app.inject({ method: 'HEAD', url: '/account' })
  t.equal(head.statusCode, 200, 'HEAD /account')

  const api = {
    'GET /auth/me': await app.inject({ method: 'GET', url: '/auth/me' }),
    'GET /.well-known/jwks.json': await app.inject({ method: 'GET', url: '/.well-known/jwks.json' }),
    'POST /auth/login': await app.inject({ method: 'POST', url: '/auth/login', payload: { email: 'a@example.com', password: 'wrong password' } }),
    'GET /nope': await app.inject({ method: 'GET', url: '/nope' }),
  }
  for (const [name, res] of Object.entries(api)) {
    t.equal(res.headers['content-security-policy'], API_CSP, `${name}: the deny-all CSP`)
  }
})

t.test('every asset of the pages is served with its content type, the SDK at /account/sdk/ as JavaScript', async (t) => {
  const { app } = await createTestApp(t)
  const types: Record<string, RegExp> = { '.js': /^(?:text|application)\/javascript; charset=utf-8$/, '.css': /^text\/css; charset=utf-8$/, '.svg': /^image\/svg\+xml/ }
  for (const [extension, type] of Object.entries(types)) {
    for (const file of await pageFiles(extension)) {
      const res = await app.inject({ method: 'GET', url: `/account/assets/${file}` })
      t.equal(res.statusCode, 200, `${file}: 200`)
      t.match(res.headers['content-type'], type, `${file}: ${extension} content type`)
      t.equal(res.headers['content-security-policy'], PAGE_CSP, `${file}: the page CSP`)
      t.equal(res.body, await readFile(path.join(PAGE_ROOT, file), 'utf8'), `${file}: the file itself`)
    }
  }

  // The SDK entry and every module it imports, followed through relative imports as a browser would.
  const seen = new Set<string>()
  const queue = ['/account/sdk/index.js']
  while (queue.length > 0) {
    const url = queue.shift()!
    if (seen.has(url)) continue
    seen.add(url)
    const res = await app.inject({ method: 'GET', url })
    t.equal(res.statusCode, 200, `${url}: 200`)
    t.match(res.headers['content-type'], types['.js'], `${url}: JavaScript`)
    for (const [, specifier] of res.body.matchAll(/(?:from|import)\s*\(?\s*['"](\.{1,2}\/[^'"]+)['"]/g)) {
      queue.push(new URL(specifier!, `http://vouch${url}`).pathname)
    }
  }
  t.ok(seen.size >= 1, `the SDK's modules are all served (${seen.size})`)
})

t.test('traversal out of /account/assets and /account/sdk, plain or encoded, is not_found', async (t) => {
  const { app } = await createTestApp(t)
  const port = await listen(t, app)
  const attempts = [
    '/account/assets/../../package.json',
    '/account/assets/../../../package.json',
    '/account/sdk/../../../package.json',
    '/account/sdk/../package.json',
    '/account/assets/..%2f..%2fpackage.json',
    '/account/assets/%2e%2e/%2e%2e/package.json',
    '/account/assets/%2e%2e%2f%2e%2e%2fpackage.json',
    '/account/assets/.%2e/.%2e/package.json',
    '/account/assets/%252e%252e/%252e%252e/package.json',
    '/account/sdk/%2e%2e/package.json',
    '/account/sdk/%2E%2E/%2E%2E/%2E%2E/package.json',
    '/account/assets/..\\..\\package.json',
    '/account/assets/..%5c..%5cpackage.json',
    '/account/assets/%5c..%5c..%5cpackage.json',
    '/account/assets//etc/passwd',
    '/account/assets/%2fetc%2fpasswd',
    '/account/assets/./app.js',
    '/account/assets//app.js',
    '/account/assets/app.js%00.css',
    '/account/../package.json',
  ]
  for (const attempt of attempts) assertNotFound(t, await rawGet(port, attempt), attempt)
})

t.test('only the pages, their assets and the SDK modules answer under /account', async (t) => {
  const { app } = await createTestApp(t)
  const unknown = [
    '/account/nope',
    '/account/index.html',
    '/account/reset-password.html',
    '/account/assets/',
    '/account/assets/nope.js',
    '/account/assets/index.html',
    '/account/assets/tsconfig.json',
    '/account/assets/APP.JS',
    '/account/assets/app.js/',
    '/account/sdk/',
    '/account/sdk/index.d.ts',
    '/account/sdk/index.js.map',
    '/account/sdk/../package.json',
    '/account/sdk/nope.js',
  ]
  for (const url of unknown) assertNotFound(t, await app.inject({ method: 'GET', url }), url)
})

t.test('ACCOUNT_PAGE=false turns the pages off: /account and its files are not_found', async (t) => {
  const { app } = await createTestApp(t, { env: { ACCOUNT_PAGE: 'false' } })
  for (const url of [...PAGES, '/account/assets/app.js', '/account/assets/account.css', '/account/sdk/index.js']) {
    assertNotFound(t, await app.inject({ method: 'GET', url }), url)
  }
})

// ---------------------------------------------------------------- the page's files

interface Tag { name: string, closing: boolean, attributes: Map<string, string>, start: number, end: number }

/**
 * The tags of an HTML file, strictly: every "<" must open a comment, a
 * doctype or a well-formed tag, so nothing the checks look for can hide in
 * something this reader skipped. Enough for the page's own files; not a
 * general HTML parser.
 */
function parseTags (html: string): Tag[] {
  const tags: Tag[] = []
  const tag = /<(\/?)([a-zA-Z][a-zA-Z0-9-]*)((?:\s+[^\s"'>/=]+(?:\s*=\s*(?:"[^"]*"|'[^']*'|[^\s"'=<>`]+))?)*)\s*\/?>/y
  const attribute = /([^\s"'>/=]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+)))?/g
  let at = 0
  while ((at = html.indexOf('<', at)) !== -1) {
    if (html.startsWith('<!--', at)) {
      const close = html.indexOf('-->', at)
      if (close === -1) throw new Error('unclosed comment')
      at = close + 3
      continue
    }
    if (/^<!doctype html>/i.test(html.slice(at, at + 15))) {
      at += 15
      continue
    }
    tag.lastIndex = at
    const m = tag.exec(html)
    if (!m) throw new Error(`not a tag at ${at}: ${html.slice(at, at + 40)}`)
    const attributes = new Map<string, string>()
    for (const a of m[3]!.matchAll(attribute)) attributes.set(a[1]!.toLowerCase(), a[2] ?? a[3] ?? a[4] ?? '')
    tags.push({ name: m[2]!.toLowerCase(), closing: m[1] === '/', attributes, start: at, end: tag.lastIndex })
    at = tag.lastIndex
  }
  return tags
}

t.test('the HTML files have no inline script or style and load only their own files', async (t) => {
  const files = await pageFiles('.html')
  t.same(files, ['index.html', 'reset-password.html'])
  for (const file of files) {
    const html = await readFile(path.join(PAGE_ROOT, file), 'utf8')
    const tags = parseTags(html)
    const scripts = tags.filter((tag) => tag.name === 'script')
    t.ok(scripts.some((tag) => !tag.closing), `${file}: has a script`)
    for (const [i, tag] of scripts.entries()) {
      if (tag.closing) continue
      t.match(tag.attributes.get('src'), /^\/account\/assets\/[a-z-]+\.js$/, `${file}: script ${i} is a file of the page`)
      t.equal(tag.attributes.get('type'), 'module', `${file}: script ${i} is a module`)
      const close = scripts[i + 1]
      t.ok(close?.closing, `${file}: script ${i} is closed`)
      t.equal(html.slice(tag.end, close?.start).trim(), '', `${file}: script ${i} has no inline code`)
    }
    t.notOk(tags.some((tag) => tag.name === 'style'), `${file}: no <style>`)
    for (const tag of tags) {
      for (const [name, value] of tag.attributes) {
        t.notOk(name.startsWith('on'), `${file}: no event handler attribute (${tag.name} ${name})`)
        t.not(name, 'style', `${file}: no style attribute (${tag.name})`)
        t.notMatch(value, /^\s*(?:javascript|data):/i, `${file}: no javascript: or data: URL (${tag.name} ${name})`)
      }
      for (const name of ['src', 'href']) {
        const url = tag.attributes.get(name)
        if (url === undefined || url.startsWith('#')) continue
        t.match(url, /^\/account(?:\/|$|#)/, `${file}: ${tag.name} ${name}="${url}" is vouch's own`)
        const asset = /^\/account\/assets\/(.+)$/.exec(url)?.[1]
        if (asset) t.ok((await readdir(PAGE_ROOT)).includes(asset), `${file}: ${asset} exists`)
      }
    }
  }
})

t.test('every input of the pages has a label, and the ids the browser tests use are there', async (t) => {
  for (const file of await pageFiles('.html')) {
    const tags = parseTags(await readFile(path.join(PAGE_ROOT, file), 'utf8'))
    const ids = tags.map((tag) => tag.attributes.get('id')).filter((id): id is string => id !== undefined)
    t.same(ids, [...new Set(ids)], `${file}: ids are unique`)
    for (const id of STABLE_IDS[file] ?? []) t.ok(ids.includes(id), `${file}: #${id}`)
    const labelled = new Set(tags.filter((tag) => tag.name === 'label' && !tag.closing).map((tag) => tag.attributes.get('for')))
    const inputs = tags.filter((tag) => ['input', 'select', 'textarea'].includes(tag.name) && !tag.closing)
    t.ok(inputs.length > 0, `${file}: has inputs`)
    for (const input of inputs) {
      if (input.attributes.get('type') === 'hidden') continue
      const id = input.attributes.get('id')
      t.ok(id !== undefined && labelled.has(id), `${file}: input ${id ?? input.attributes.get('name')} has a <label for>`)
    }
  }
})

t.test('the page\'s modules import only each other and the SDK', async (t) => {
  const modules = await pageFiles('.js')
  for (const file of modules) {
    const source = await readFile(path.join(PAGE_ROOT, file), 'utf8')
    t.match(source, /^\/\/ @ts-check\n/, `${file}: type-checked (// @ts-check)`)
    for (const [, specifier] of source.matchAll(/^\s*(?:import|export)\b[^'"]*?from\s+['"]([^'"]+)['"]/gm)) {
      if (specifier === '/account/sdk/index.js') continue
      t.match(specifier, /^\.\/[a-z-]+\.js$/, `${file}: imports ${specifier}, a module of the page`)
      t.ok(modules.includes(specifier!.slice(2)), `${file}: ${specifier} exists`)
    }
  }
})

t.test('the device list names browsers and systems from user agents with the SDK\'s parser, as served', async (t) => {
  // One parser, in @vouch/client (its cases: packages/client/test/user-agent.test.ts), shared with the new-device mail.
  t.notOk((await pageFiles('.js')).includes('user-agent.js'), 'the page keeps no parser of its own')
  t.match(await readFile(path.join(PAGE_ROOT, 'devices.js'), 'utf8'), /^import \{[^}]*\bdescribeUserAgent\b[^}]*\} from '\.\/sdk\.js'$/m,
    'devices.js takes describeUserAgent from the SDK')
  const { app } = await createTestApp(t)
  for (const url of ['/account/sdk/index.js', '/account/sdk/user-agent.js']) {
    t.equal((await app.inject({ method: 'GET', url })).statusCode, 200, `${url} is served`)
  }
  // The build the page loads (SDK_ROOT), not the package's source.
  const { describeUserAgent } = await import(pathToFileURL(path.join(SDK_ROOT, 'index.js')).href) as { describeUserAgent: (ua: string | null) => string }
  const cases: Array<[string | null, string]> = [
    ['Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36', 'Chrome 126 on Windows 10 or 11'],
    ['Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1', 'Safari 17 on iOS 17'],
    ['Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0', 'Firefox 128 on Ubuntu'],
    ['curl/8.4.0', 'curl 8.4'],
    [null, 'Unknown browser'],
  ]
  for (const [ua, expected] of cases) t.equal(describeUserAgent(ua), expected, String(ua))
})

t.test('the page signs in however a browser names this machine\'s loopback address, and from no other origin', async (t) => {
  const signUp = (app: FastifyInstance, origin: string) => app.inject({
    method: 'POST', url: '/auth/register', payload: { email: uniqueEmail('loopback'), password: PASSWORD },
    headers: { origin, 'vouch-mode': 'cookie' },
  })
  // As `npm start` derives it (HOST=127.0.0.1), and as a container's HOST=0.0.0.0 derives it (localhost).
  for (const publicUrl of ['http://127.0.0.1:3000', 'http://localhost:3000']) {
    const { app } = await createTestApp(t, { env: { PUBLIC_URL: publicUrl } })
    for (const origin of ['http://127.0.0.1:3000', 'http://localhost:3000', 'http://[::1]:3000']) {
      t.equal((await signUp(app, origin)).statusCode, 201, `${publicUrl}: the page opened at ${origin}`)
    }
    for (const origin of ['http://localhost:3001', 'http://127.0.0.2:3000', 'https://localhost:3000', 'http://evil.example']) {
      const res = await signUp(app, origin)
      t.equal(res.json().code, 'origin_not_allowed', `${publicUrl}: not from ${origin}`)
    }
  }
  const { app } = await createTestApp(t, { env: { PUBLIC_URL: 'https://auth.example.com' } })
  t.equal((await signUp(app, 'https://auth.example.com')).statusCode, 201, 'a public URL: its own origin')
  t.equal((await signUp(app, 'http://localhost')).json().code, 'origin_not_allowed', 'and no loopback alias')
})
