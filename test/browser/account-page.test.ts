/// <reference lib="dom" />
/**
 * The account page at /account in real headless Chromium, against a real
 * vouch process: what a person does there (sign up, sign in, see devices,
 * sign one out, change the password, reset a forgotten one), what must never
 * happen (two refreshes of one token leaving one browser, a tab signed out by
 * its own sibling, console errors or CSP violations), keyboard use, and the
 * README's screenshots.
 */
import { mkdir, readdir, readFile } from 'node:fs/promises'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import type { BrowserContext, Page } from 'playwright-core'
import { createTestDatabase, NO_RATE_LIMITS } from '../helpers/app.js'
import { launchBrowser, openPage, type WatchedPage } from '../helpers/browser.js'
import { freePort, root, startVouch } from '../helpers/process.js'

const PASSWORD = 'correct horse battery staple'
const DESKTOP = { width: 1280, height: 800 }
const PHONE = { width: 375, height: 740 }
const IPHONE_SAFARI = 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1'

const browser = await launchBrowser(t)
if (browser !== undefined) {
  const { url: databaseUrl, dir } = await createTestDatabase(t)
  const port = await freePort()
  const base = `http://127.0.0.1:${port}`
  const vouch = await startVouch(t, {
    DATABASE_URL: databaseUrl, DATA_DIR: dir, PORT: String(port), PUBLIC_URL: base, ...NO_RATE_LIMITS,
  })
  const watched: WatchedPage[] = []
  let emails = 0
  const newEmail = () => `person${++emails}-${process.pid}@example.com`

  /** Refreshes that reached vouch so far, read from its access log. */
  const refreshes = () => vouch.output().split('\n')
    .filter((line) => line.includes('"url":"/auth/refresh"') && /"msg":"request (completed|errored)"/.test(line)).length

  /** The refresh count once the log has stopped growing for a second (waiting 10 s at most). */
  const quietRefreshes = async (): Promise<number> => {
    let count = refreshes()
    let quietSince = Date.now()
    const deadline = Date.now() + 10_000
    while (Date.now() - quietSince < 1000 && Date.now() < deadline) {
      await sleep(100)
      if (refreshes() !== count) {
        count = refreshes()
        quietSince = Date.now()
      }
    }
    return count
  }

  const open = async (context: BrowserContext, url = '/account'): Promise<Page> => {
    const opened = await openPage(context)
    watched.push(opened)
    await opened.page.goto(`${base}${url}`)
    return opened.page
  }

  const signUp = async (page: Page, email: string) => {
    await reveal(page, '#signup-form')
    await page.fill('#signup-email', email)
    await page.fill('#signup-password', PASSWORD)
    await page.locator('#signup-form [type=submit]').click()
    await page.locator('#account').waitFor({ state: 'visible' })
  }

  const signIn = async (page: Page, email: string, password = PASSWORD) => {
    await reveal(page, '#signin-form')
    await page.fill('#signin-email', email)
    await page.fill('#signin-password', password)
    await page.locator('#signin-form [type=submit]').click()
    await page.locator('#account').waitFor({ state: 'visible' })
  }

  /** Shows a form that sits behind a toggle (a button or link that controls it). */
  const reveal = async (page: Page, form: string) => {
    if (await page.locator(form).isVisible()) return
    await page.locator(`[aria-controls="${form.slice(1)}"]`).first().click()
    await page.locator(form).waitFor({ state: 'visible' })
  }

  /** A new context whose account was created there and then signed out: for the flows that start signed out. */
  const signedOutAccount = async (t: Test, viewport: typeof DESKTOP) => {
    const email = newEmail()
    const context = await browser.newContext({ viewport })
    t.teardown(() => context.close())
    const page = await open(context)
    await signUp(page, email)
    await page.locator('#logout').click()
    await page.locator('#signin-form').waitFor()
    return { email, context, page }
  }

  const devices = (page: Page) => page.locator('#devices [data-session-id]')

  /** Milliseconds until the page shows the sign-in form again, failing after `bound`. */
  const signedOutWithin = async (page: Page, bound: number): Promise<number> => {
    const start = Date.now()
    await page.locator('#signin-form').waitFor({ state: 'visible', timeout: bound })
    return Date.now() - start
  }

  t.test('two devices: signing the other out from the first ends it within 5 s, and its refresh cookie dies', async (t) => {
    const email = newEmail()
    const first = await browser.newContext({ viewport: DESKTOP })
    const second = await browser.newContext({ viewport: PHONE, userAgent: IPHONE_SAFARI })
    t.teardown(async () => { await first.close(); await second.close() })
    const a = await open(first)
    await signUp(a, email)
    const b = await open(second)
    await signIn(b, email)

    await a.reload()
    await t.resolves(devices(a).nth(1).waitFor(), 'the first page lists both devices')
    t.equal(await devices(a).count(), 2)
    t.equal(await a.locator('#devices [data-current="true"]').count(), 1, 'one of them marked as this device')
    t.match(await a.locator('#devices [data-current="true"]').innerText(), /this device/i)
    t.match(await a.locator('#devices [data-session-id]:not([data-current="true"])').innerText(), /Safari/,
      'the other device is recognised from its user agent')

    const before = await second.cookies(`${base}/auth/refresh`)
    t.equal(before.length, 1, 'the second context holds a refresh cookie')
    t.ok(before[0]!.httpOnly, 'HttpOnly')
    for (const [name, page] of [['first', a], ['second', b]] as const) {
      const readable = await page.evaluate(() => JSON.stringify({
        cookie: document.cookie, local: Object.entries(localStorage), session: Object.entries(sessionStorage),
      }))
      t.notOk(readable.includes(before[0]!.value.split('.').at(-1)!), `${name} page: the refresh token is in no storage a script can read`)
      t.equal(await page.evaluate(() => document.cookie), '', `${name} page: script sees no cookie`)
    }

    await a.locator('#devices [data-session-id]:not([data-current="true"]) button', { hasText: /sign out/i }).click()
    const took = await signedOutWithin(b, 5000)
    t.pass(`the other page showed it was signed out ${took} ms after the click`)
    t.match(await b.locator('#status').innerText(), /another device/i, 'and says why')
    await t.resolves(devices(a).first().waitFor(), 'the first page is still signed in')
    t.equal(await devices(a).count(), 1, 'and lists one device')

    const res = await second.request.post(`${base}/auth/refresh`, { headers: { 'vouch-mode': 'cookie', origin: base } })
    t.equal(res.status(), 401, 'the signed-out context\'s refresh cookie no longer works')
    t.equal((await res.json()).code, 'refresh_token_invalid')
  })

  t.test('two tabs with an expired access token call vouch at the same instant: one refresh, both keep working', async (t) => {
    const context = await browser.newContext({ viewport: DESKTOP })
    t.teardown(() => context.close())
    await context.clock.install()
    const first = await open(context)
    await signUp(first, newEmail())
    const second = await open(context)
    await second.locator('#account').waitFor({ state: 'visible' })

    // The second tab's own start (its restore) may still be on its way into the access log,
    // which this process reads from a pipe: count from a quiet log, or it would be counted below.
    const before = await quietRefreshes()
    // Past the access token's 15 minutes in both tabs at once: each tab's refresh timer fires at the same instant,
    // and each tab then asks for its device list with the expired token.
    await context.clock.fastForward('16:00')
    await Promise.all([first, second].map((page) => page.locator('#refresh-devices').click()))
    await Promise.all([first, second].map((page) => devices(page).first().waitFor()))
    await sleep(1000)
    t.equal(refreshes() - before, 1, `exactly one refresh reached vouch (${refreshes() - before})`)
    for (const page of [first, second]) {
      t.ok(await page.locator('#account').isVisible(), 'both tabs are still signed in')
      t.equal(await devices(page).count(), 1)
    }
    await second.locator('#refresh-devices').click()
    await devices(second).first().waitFor()
    t.equal(refreshes() - before, 1, `and the refreshed token serves the next calls without another refresh (${refreshes() - before})`)
  })

  t.test('a password change keeps this tab signed in and signs the other context out', async (t) => {
    const email = newEmail()
    const first = await browser.newContext({ viewport: DESKTOP })
    const second = await browser.newContext({ viewport: DESKTOP })
    t.teardown(async () => { await first.close(); await second.close() })
    const a = await open(first)
    await signUp(a, email)
    const b = await open(second)
    await signIn(b, email)

    await a.fill('#current-password', PASSWORD)
    await a.fill('#new-password', 'a brand new passphrase')
    await a.locator('#password-form [type=submit]').click()
    await t.resolves(a.locator('#status', { hasText: /password/i }).waitFor(), 'the page confirms the change')
    const took = await signedOutWithin(b, 5000)
    t.pass(`the other context was signed out ${took} ms after the change`)
    await a.reload()
    await t.resolves(a.locator('#account').waitFor(), 'the tab that changed it is still signed in after a reload')
    const c = await open(second)
    await signIn(c, email, 'a brand new passphrase')
    t.pass('the new password signs in')
  })

  t.test('a forgot-password mail\'s link, read from the raw message, opens the reset page and completes the reset', async (t) => {
    const { email, context, page } = await signedOutAccount(t, PHONE)
    await reveal(page, '#forgot-form')
    await page.fill('#forgot-email', email)
    await page.locator('#forgot-form [type=submit]').click()
    await page.locator('#status', { hasText: /reset link/i }).waitFor()

    // The mail is written after the 202 answer: wait for it (bounded). The outbox also holds
    // the earlier tests' mails (new-device alerts among them): find the reset mail to this address.
    const outbox = path.join(dir, 'outbox')
    const resetMail = async (): Promise<string | undefined> => {
      for (const name of (await readdir(outbox).catch(() => [])).filter((name) => name.endsWith('.eml'))) {
        const text = await readFile(path.join(outbox, name), 'utf8')
        if (text.includes(email) && text.includes('/account/reset-password?token=')) return text
      }
      return undefined
    }
    let eml = await resetMail()
    for (let waited = 0; eml === undefined && waited < 10_000; waited += 50) {
      await sleep(50)
      eml = await resetMail()
    }
    t.ok(eml, 'the reset mail was written')
    const link = new RegExp(`${base.replace(/\./g, '\\.')}/account/reset-password\\?token=[A-Za-z0-9._~%-]+`).exec(eml ?? '')?.[0]
    t.ok(link, 'the link stands in the raw mail unbroken, with no quoted-printable decoding')

    await page.goto(link!)
    await page.fill('#reset-password', 'reset by mail 1234')
    await page.fill('#reset-password-confirm', 'reset by mail 1234')
    await page.locator('#reset-form [type=submit]').click()
    await page.locator('#status', { hasText: /password/i }).waitFor()
    t.notMatch(page.url(), /token=/, 'the token is gone from the address bar')

    const again = await open(context)
    await signIn(again, email, 'reset by mail 1234')
    t.pass('the new password signs in')
  })

  t.test('the page works with the keyboard alone', async (t) => {
    const { email, context } = await signedOutAccount(t, DESKTOP)
    const page = await open(context)
    const focusTo = async (id: string) => {
      for (let presses = 0; presses < 40; presses++) {
        if (await page.evaluate(() => document.activeElement?.id) === id) {
          const outline = await page.evaluate(() => {
            const style = getComputedStyle(document.activeElement!)
            return `${style.outlineStyle} ${style.outlineWidth} ${style.boxShadow}`
          })
          t.notMatch(outline, /^none 0px none$/, `#${id} shows where the focus is (${outline})`)
          return
        }
        await page.keyboard.press('Tab')
      }
      throw new Error(`Tab never reached #${id}`)
    }
    await focusTo('signin-email')
    await page.keyboard.type(email)
    await focusTo('signin-password')
    await page.keyboard.type(PASSWORD)
    await page.keyboard.press('Enter')
    await page.locator('#account').waitFor()
    t.pass('signed in by keyboard')
    await focusTo('logout')
    await page.keyboard.press('Enter')
    await page.locator('#signin-form').waitFor()
    t.pass('signed out by keyboard')
  })

  t.test('the device list at desktop and phone width (the README\'s screenshots)', async (t) => {
    const email = newEmail()
    const phone = await browser.newContext({ viewport: PHONE, userAgent: IPHONE_SAFARI, deviceScaleFactor: 2 })
    const desktop = await browser.newContext({ viewport: DESKTOP })
    t.teardown(async () => { await phone.close(); await desktop.close() })
    const p = await open(phone)
    await signUp(p, email)
    const d = await open(desktop)
    await signIn(d, email)
    await p.reload()
    await devices(p).nth(1).waitFor()
    await devices(d).nth(1).waitFor()
    t.ok(await p.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), 'nothing scrolls sideways at 375 px')

    // Written into the repository only on request; otherwise into the test's own folder.
    const folder = process.env.VOUCH_UPDATE_SCREENSHOTS === '1' ? path.join(root, 'docs', 'images') : t.testdir()
    await mkdir(folder, { recursive: true })
    await d.screenshot({ path: path.join(folder, 'account-devices-desktop.png'), fullPage: true })
    await p.screenshot({ path: path.join(folder, 'account-devices-phone.png'), fullPage: true })
    t.pass(`screenshots in ${folder}`)
  })

  t.test('no page logged a console error or a CSP violation', async (t) => {
    t.same(watched.flatMap((page) => page.problems()), [])
  })
}
