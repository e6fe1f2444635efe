// @ts-check
/**
 * Browser and operating system from a User-Agent string, for the device
 * list: enough to tell "Firefox on Windows" from "Safari on iPhone", not a
 * full parser. The order of the checks matters: most browsers also claim to
 * be Chrome and Safari, so the specific tokens (Edge, Opera, Samsung) come
 * first. Unknown agents fall back to their first product token ("curl 8.4").
 */

/** @typedef {{ browser: string | null, os: string | null }} AgentInfo */

/** [pattern, name]: the first match wins; group 1 is the version, if any. */
const BROWSERS = /** @type {const} */ ([
  [/\bEdg(?:e|A|iOS)?\/(\d+)/, 'Edge'],
  [/\bOPR\/(\d+)/, 'Opera'],
  [/\bSamsungBrowser\/(\d+)/, 'Samsung Internet'],
  [/\bVivaldi\/(\d+)/, 'Vivaldi'],
  [/\bYaBrowser\/(\d+)/, 'Yandex Browser'],
  [/\b(?:Firefox|FxiOS)\/(\d+)/, 'Firefox'],
  [/\bHeadlessChrome\/(\d+)/, 'Headless Chrome'],
  [/\b(?:Chrome|CriOS)\/(\d+)/, 'Chrome'],
  [/\bVersion\/(\d+)(?:\.\d+)*.*\bSafari\//, 'Safari'],
  [/\bAppleWebKit\/.*\bMobile\//, 'Safari'],
])

/** Windows NT versions that are not simply their own number. */
const WINDOWS = /** @type {Record<string, string>} */ ({ '10.0': '10 or 11', '6.3': '8.1', '6.2': '8', '6.1': '7' })

/**
 * @param {string} ua
 * @returns {string | null}
 */
function osOf (ua) {
  let m
  if ((m = /\bWindows NT (\d+\.\d+)/.exec(ua))) return `Windows ${WINDOWS[m[1] ?? ''] ?? m[1]}`
  if (/\bWindows\b/.test(ua)) return 'Windows'
  if ((m = /\biPhone OS (\d+)/.exec(ua)) || /\biPhone\b/.test(ua)) return m ? `iOS ${m[1]}` : 'iOS'
  if ((m = /\biPad.*? OS (\d+)/.exec(ua)) || /\biPad\b/.test(ua)) return m ? `iPadOS ${m[1]}` : 'iPadOS'
  if ((m = /\bAndroid (\d+)/.exec(ua)) || /\bAndroid\b/.test(ua)) return m ? `Android ${m[1]}` : 'Android'
  if (/\bCrOS\b/.test(ua)) return 'ChromeOS'
  if (/\bMac OS X\b|\bMacintosh\b/.test(ua)) return 'macOS'
  if (/\bUbuntu\b/.test(ua)) return 'Ubuntu'
  if (/\bFedora\b/.test(ua)) return 'Fedora'
  if (/\bLinux\b|\bX11\b/.test(ua)) return 'Linux'
  if (/\bFreeBSD\b/.test(ua)) return 'FreeBSD'
  return null
}

/**
 * @param {string} ua
 * @returns {string | null}
 */
function browserOf (ua) {
  for (const [pattern, name] of BROWSERS) {
    const m = pattern.exec(ua)
    if (m) return m[1] ? `${name} ${m[1]}` : name
  }
  // Not a browser: a library or an app ("curl/8.4.0", "okhttp/4.12.0", "MyApp/2.1 (iPhone)").
  const product = /^([A-Za-z][\w.-]{0,39})\/(\d+(?:\.\d+)?)/.exec(ua)
  if (product && product[1] !== 'Mozilla') return `${product[1]} ${product[2]}`
  return null
}

/**
 * @param {string | null | undefined} ua
 * @returns {AgentInfo}
 */
export function parseUserAgent (ua) {
  if (!ua) return { browser: null, os: null }
  return { browser: browserOf(ua), os: osOf(ua) }
}

/**
 * One line for the device list: "Firefox 128 on Windows 10 or 11",
 * "Chrome 126", "curl 8.4", or "Unknown browser".
 *
 * @param {string | null | undefined} ua
 * @returns {string}
 */
export function describeUserAgent (ua) {
  const { browser, os } = parseUserAgent(ua)
  if (browser && os) return `${browser} on ${os}`
  if (browser) return browser
  if (os) return `Unknown browser on ${os}`
  return 'Unknown browser'
}
