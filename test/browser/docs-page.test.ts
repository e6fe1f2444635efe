/// <reference lib="dom" />
/**
 * The API reference page at /docs in real headless Chromium, against a real
 * vouch process: it loads everything from vouch (the page has no other
 * network, and its CSP would refuse it), shows every operation of
 * /openapi.json, opens one to its schemas and examples, and logs no console
 * error and no CSP violation on the way.
 */
import path from 'node:path'
import t from 'tap'
import { createTestDatabase, NO_RATE_LIMITS } from '../helpers/app.js'
import { launchBrowser, openPage } from '../helpers/browser.js'
import { freePort, startVouch } from '../helpers/process.js'
import { DOCS_CSP } from '../../src/http/plugins/openapi.js'

const browser = await launchBrowser(t)
if (browser !== undefined) {
  const { url: databaseUrl, dir } = await createTestDatabase(t)
  const port = await freePort()
  const base = `http://127.0.0.1:${port}`
  await startVouch(t, { DATABASE_URL: databaseUrl, DATA_DIR: dir, PORT: String(port), PUBLIC_URL: base, ...NO_RATE_LIMITS })

  t.test('/docs lists every operation of the document, from vouch\'s own files, with no console error or CSP violation', async (t) => {
    const document = await (await fetch(`${base}/openapi.json`)).json() as { paths: Record<string, Record<string, unknown>> }
    const operations = Object.entries(document.paths).flatMap(([route, methods]) => Object.keys(methods).map((method) => `${method.toUpperCase()} ${route}`))

    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } })
    t.teardown(() => context.close())
    const { page, problems } = await openPage(context)
    const elsewhere: string[] = []
    page.on('request', (request) => { if (!request.url().startsWith(base) && !request.url().startsWith('data:')) elsewhere.push(request.url()) })

    const response = await page.goto(`${base}/docs`)
    t.equal(response?.status(), 200)
    t.equal(response?.headers()['content-security-policy'], DOCS_CSP)
    await page.locator('.opblock').first().waitFor({ state: 'visible', timeout: 30_000 })

    const screenshot = process.env.VOUCH_DOCS_SCREENSHOT ?? path.join(t.testdir(), 'docs-page.png')
    await page.screenshot({ path: screenshot })

    const shown = await page.locator('.opblock').evaluateAll((blocks) => blocks.map((block) =>
      `${block.querySelector('.opblock-summary-method')?.textContent?.trim()} ${block.querySelector('.opblock-summary-path')?.getAttribute('data-path')}`))
    t.same([...new Set(shown)].sort(), [...operations].sort(), `all ${operations.length} operations listed`)

    // Open sign-in: its body and answer examples, and an error's, render under the CSP too.
    const login = page.locator('.opblock-post', { has: page.locator('[data-path="/auth/login"]') })
    await login.locator('.opblock-summary').click()
    await login.locator('.responses-wrapper').waitFor({ state: 'visible' })
    const opened = await login.innerText()
    t.match(opened, /ada@example\.com/, 'the request example')
    t.match(opened, /invalid_credentials/, 'an error code')
    t.match(opened, /Retry-After|retry-after/, 'the 429\'s Retry-After header')

    // "Try it out" calls vouch itself (connect-src 'self').
    const live = page.locator('.opblock-get', { has: page.locator('[data-path="/health/live"]') })
    await live.locator('.opblock-summary').click()
    await live.locator('.try-out__btn').click()
    await live.locator('.execute').click()
    await live.locator('.live-responses-table .response-col_status').first().waitFor({ state: 'visible' })
    t.match(await live.locator('.live-responses-table').innerText(), /200[\s\S]*"status": "ok"/, 'a live call answered')

    t.same(elsewhere, [], 'nothing loaded from anywhere but vouch')
    t.same(problems(), [], 'no console error, page error or CSP violation')
    t.pass(`screenshot: ${screenshot}`)
  })
}
