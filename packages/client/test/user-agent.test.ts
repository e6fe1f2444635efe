/**
 * The user-agent parser (src/user-agent.ts), the one both the account page's
 * device list and the server's new-device mail use: short browser and
 * system names from real User-Agent strings, the specific browsers before
 * the Chrome and Safari they also claim to be, a library's product token
 * when there is no browser, nothing for what it does not know, and bounded
 * work on a hostile header.
 */
import t from 'tap'
import { describeUserAgent, parseUserAgent } from '../src/user-agent.js'

const CHROME_WINDOWS = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36'
const SAFARI_IPHONE = 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1'
const FIREFOX_LINUX = 'Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0'

t.test('the device list\'s one line names the browser and the system', async (t) => {
  // Moved from test/http/account-page.test.ts, where the parser lived in web/account/user-agent.js.
  const cases: Array<[string | null, string]> = [
    ['Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36', 'Chrome 126 on Windows 10 or 11'],
    ['Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 Edg/126.0.2592.87', 'Edge 126 on Windows 10 or 11'],
    ['Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15', 'Safari 17 on macOS'],
    ['Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1', 'Safari 17 on iOS 17'],
    ['Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/126.0.6478.54 Mobile/15E148 Safari/604.1', 'Chrome 126 on iOS 17'],
    ['Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0', 'Firefox 128 on Ubuntu'],
    ['Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.6478.71 Mobile Safari/537.36', 'Chrome 126 on Android 14'],
    ['Mozilla/5.0 (Linux; Android 14; SM-S921B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/25.0 Chrome/121.0.0.0 Mobile Safari/537.36', 'Samsung Internet 25 on Android 14'],
    ['Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/140.0.0.0 Safari/537.36', 'Headless Chrome 140 on Linux'],
    ['Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36', 'Chrome 126 on ChromeOS'],
    ['curl/8.4.0', 'curl 8.4'],
    ['node', 'Unknown browser'],
    ['', 'Unknown browser'],
    [null, 'Unknown browser'],
  ]
  for (const [ua, expected] of cases) t.equal(describeUserAgent(ua), expected, String(ua))
  t.equal(describeUserAgent(undefined), 'Unknown browser', 'undefined')
  t.equal(describeUserAgent('Mozilla/5.0 (Windows NT 6.1)'), 'Unknown browser on Windows 7', 'a system without a browser')
})

t.test('the browser and the system, each on its own, or null when not known', async (t) => {
  const cases: Array<[string | null | undefined, { browser: string | null, os: string | null }]> = [
    [CHROME_WINDOWS, { browser: 'Chrome 131', os: 'Windows 10 or 11' }],
    [SAFARI_IPHONE, { browser: 'Safari 17', os: 'iOS 17' }],
    [FIREFOX_LINUX, { browser: 'Firefox 133', os: 'Linux' }],
    ['Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36', { browser: 'Chrome 131', os: 'macOS' }],
    ['Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1', { browser: 'Safari 16', os: 'iPadOS 16' }],
    ['Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 OPR/116.0.0.0', { browser: 'Opera 116', os: 'Windows 10 or 11' }],
    ['okhttp/4.12.0', { browser: 'okhttp 4.12', os: null }],
    ['MyApp/2.1 (iPhone; iOS 17.5)', { browser: 'MyApp 2.1', os: 'iOS' }],
    ['Mozilla/5.0 (compatible; something)', { browser: null, os: null }],
    ['node', { browser: null, os: null }],
    ['', { browser: null, os: null }],
    [null, { browser: null, os: null }],
    [undefined, { browser: null, os: null }],
  ]
  for (const [ua, expected] of cases) t.same(parseUserAgent(ua), expected, String(ua))
})

t.test('what a client wrote never comes back except as a product name of letters, digits, ".", "_" and "-"', async (t) => {
  for (const ua of ['{{link}}/1.0', 'Evil\r\nBcc: victim@example.com/1.0', '<script>/1', 'Caf\u00e9/1.0', '\u202Eexe/1.0']) {
    t.same(parseUserAgent(ua), { browser: null, os: null }, JSON.stringify(ua))
  }
  t.same(parseUserAgent(`${'A'.repeat(40)}/1.0`), { browser: `${'A'.repeat(40)} 1.0`, os: null }, 'a product name of 40 characters')
  t.same(parseUserAgent(`${'A'.repeat(41)}/1.0`), { browser: null, os: null }, 'not 41')

  // Agents pieced together from the tokens the patterns look for and text that must never come back (seeded: repeatable).
  const pieces = ['Mozilla/5.0 ', 'Chrome/', 'Version/', 'Safari/', 'AppleWebKit/', 'Mobile/', 'Edg/', 'OPR/', 'Firefox/', 'Windows NT ',
    'iPhone OS ', 'iPad', ' OS ', 'Android ', 'Linux', '131', '10.0', '.', '_', '-', ' ', '/', 'x', 'Caf\u00e9', '{{link}}', '<b>', '\r\n', '\u202E', '\u0000', ':', ';', '(', ')']
  let seed = 42
  const next = () => { seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31; return seed }
  let bad = 0
  let named = 0
  for (let i = 0; i < 5_000; i++) {
    const ua = Array.from({ length: 1 + next() % 12 }, () => pieces[next() % pieces.length]).join('')
    const { browser, os } = parseUserAgent(ua)
    for (const value of [browser, os]) {
      if (value !== null) named++
      if (value !== null && !/^[A-Za-z0-9 ._-]+$/.test(value)) bad++
    }
  }
  t.ok(named > 1_000, `${named} names found among them`)
  t.equal(bad, 0, '5,000 pieced-together agents: every name is ASCII letters, digits, spaces, ".", "_" and "-"')
})

t.test('a hostile header costs little: the parser reads its first 1,024 characters only', async (t) => {
  // Shapes that make the patterns with two open-ended parts backtrack over the whole string.
  const hostile = [
    'Version/1 '.repeat(20_000),
    'iPad '.repeat(40_000),
    'AppleWebKit/1 '.repeat(15_000),
    `Mozilla/5.0 (X11; Linux x86_64) ${'A'.repeat(200_000)}`,
  ]
  const started = performance.now()
  for (const ua of hostile) parseUserAgent(ua)
  const took = performance.now() - started
  t.ok(took < 250, `four 200 kB agents parsed in ${took.toFixed(1)} ms`)
  t.same(parseUserAgent(`${' '.repeat(1_024)}Firefox/133.0`), { browser: null, os: null }, 'a browser token past the first 1,024 characters is not read')
  t.same(parseUserAgent(`${' '.repeat(1_000)}Firefox/133.0`), { browser: 'Firefox 133', os: null }, 'one within them is')
})

t.test('the main entry exports the same functions as @vouch/client/user-agent', async (t) => {
  const main = await import('../src/index.js')
  t.equal(main.parseUserAgent, parseUserAgent)
  t.equal(main.describeUserAgent, describeUserAgent)
})
