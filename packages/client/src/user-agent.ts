/**
 * Browser and operating system from a User-Agent string: enough to tell
 * "Firefox on Windows" from "Safari on iPhone", not a full parser. vouch's
 * account page names devices with it and vouch's new-device mail says which
 * browser and system signed in, so the two always agree.
 *
 * - The order of the checks matters: most browsers also claim to be Chrome
 *   and Safari, so the specific tokens (Edge, Opera, Samsung) come first.
 *   An agent that is no browser gives its first product token ("curl 8.4").
 * - What comes back is a fixed name and a version number, or a product
 *   token (at most 40 characters) and its version: ASCII letters, digits,
 *   spaces, ".", "_" and "-" only, never other text a client put in its
 *   header, so it cannot break a line of a mail or a page.
 * - Only the first 1,024 characters are read: a few patterns have two
 *   open-ended parts, and a hostile header of 200 kB took seconds.
 *
 * @example
 * import { describeUserAgent, parseUserAgent } from '@vouch/client/user-agent'
 *
 * parseUserAgent(navigator.userAgent)  // { browser: 'Chrome 131', os: 'macOS' }
 * describeUserAgent(session.userAgent) // 'Chrome 131 on macOS'
 *
 * @module
 */

/**
 * The browser ("Chrome 131", "Safari 17", "curl 8.4") and the operating
 * system ("Windows 10 or 11", "iOS 17", "macOS") of a user agent; null when
 * not recognised.
 *
 * @example
 * const { browser, os }: UserAgentInfo = parseUserAgent(session.userAgent)
 */
export interface UserAgentInfo {
  readonly browser: string | null
  readonly os: string | null
}

/** How much of a header is read (real agents are a few hundred characters). */
const MAX_READ = 1024

/** [pattern, name]: the first match wins; group 1 is the version, if any. */
const BROWSERS: ReadonlyArray<readonly [RegExp, string]> = [
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
]

/** Windows NT versions that are not simply their own number. */
const WINDOWS: Readonly<Record<string, string>> = { '10.0': '10 or 11', '6.3': '8.1', '6.2': '8', '6.1': '7' }

function osOf (ua: string): string | null {
  let m: RegExpExecArray | null
  if ((m = /\bWindows NT (\d+\.\d+)/.exec(ua))) return `Windows ${WINDOWS[m[1]!] ?? m[1]}`
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

function browserOf (ua: string): string | null {
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
 * The browser and the system a User-Agent string names, each null when not
 * recognised (and both for no agent at all).
 *
 * @example
 * parseUserAgent('Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0')
 * // { browser: 'Firefox 133', os: 'Linux' }
 * parseUserAgent('curl/8.4.0') // { browser: 'curl 8.4', os: null }
 */
export function parseUserAgent (ua: string | null | undefined): UserAgentInfo {
  if (!ua) return { browser: null, os: null }
  const read = ua.slice(0, MAX_READ)
  return { browser: browserOf(read), os: osOf(read) }
}

/**
 * One line naming a device: "Firefox 128 on Windows 10 or 11", "Chrome 126",
 * "curl 8.4", "Unknown browser on Linux", or "Unknown browser".
 *
 * @example
 * for (const session of await vouch.sessions()) console.log(describeUserAgent(session.userAgent))
 */
export function describeUserAgent (ua: string | null | undefined): string {
  const { browser, os } = parseUserAgent(ua)
  if (browser && os) return `${browser} on ${os}`
  if (browser) return browser
  if (os) return `Unknown browser on ${os}`
  return 'Unknown browser'
}
