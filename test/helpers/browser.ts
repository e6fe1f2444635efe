/// <reference lib="dom" />
/**
 * Real headless Chromium for the browser tests: Debian's `chromium` package
 * driven by playwright-core (never a browser download). Where no Chromium is
 * installed, the browser tests skip with one line saying how to run them,
 * unless VOUCH_REQUIRE_BROWSER=1 (set by .ci/run), where its absence fails.
 *
 * Every page opened through `openPage` records console errors, uncaught
 * exceptions and CSP violations; `problems()` returns them, so each test can
 * end by asserting that the page logged none.
 */
import { existsSync } from 'node:fs'
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core'
import type { Test } from 'tap'

export const CHROMIUM = process.env.VOUCH_CHROMIUM ?? '/usr/bin/chromium'

/** The browser, or undefined after a skip when none is installed (and none is required). */
export async function launchBrowser (t: Test): Promise<Browser | undefined> {
  if (!existsSync(CHROMIUM)) {
    if (process.env.VOUCH_REQUIRE_BROWSER === '1') throw new Error(`VOUCH_REQUIRE_BROWSER=1 but there is no Chromium at ${CHROMIUM}`)
    t.plan(0, `browser tests skipped: no Chromium at ${CHROMIUM} (apt-get install chromium, or set VOUCH_CHROMIUM)`)
    return undefined
  }
  // --no-sandbox: CI runs as root, where Chromium's sandbox cannot start.
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] })
  t.teardown(() => browser.close())
  return browser
}

export interface WatchedPage {
  page: Page
  /** Console errors, page errors and CSP violations seen so far. */
  problems (): string[]
}

/** A page in `context` that records what a user would never want to see in the console. */
export async function openPage (context: BrowserContext): Promise<WatchedPage> {
  const page = await context.newPage()
  const problems: string[] = []
  page.on('console', (message) => { if (message.type() === 'error') problems.push(`console: ${message.text()}`) })
  page.on('pageerror', (err) => { problems.push(`page error: ${err.message}`) })
  await page.exposeFunction('__reportCspViolation', (text: string) => { problems.push(`CSP: ${text}`) })
  await page.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (event: SecurityPolicyViolationEvent) => {
      (window as unknown as { __reportCspViolation (text: string): void })
        .__reportCspViolation(`${event.violatedDirective} blocked ${event.blockedURI}`)
    })
  })
  return { page, problems: () => [...problems] }
}
