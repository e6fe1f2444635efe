/**
 * A browser's fetch for a page at `origin`, reduced to what cookie mode
 * needs, for the @vouch/client tests in Node (whose fetch has no cookie jar
 * and sends no Origin): every request carries `Origin`, and a cookie jar
 * keeps cookies as a browser does (RFC 6265 §5.3): one per name and Path (a
 * Set-Cookie with the same name and path replaces, Max-Age=0 or an empty
 * value removes), sent with `credentials: 'include'` to the paths that
 * path-match theirs (§5.1.4). Domain and expiry other than Max-Age=0 are not
 * modelled: vouch sets host-only cookies, and the tests move vouch's clock,
 * not the jar's.
 */
import type { FetchLike } from '@vouch/client'

export interface JarCookie { name: string, value: string, path: string }

export interface SeenRequest { url: string, mode: string | null, credentials: string | undefined, body: string }

/** RFC 6265 §5.1.4: does a request path match a cookie's Path? */
function pathMatches (requestPath: string, cookiePath: string): boolean {
  if (requestPath === cookiePath) return true
  if (!requestPath.startsWith(cookiePath)) return false
  return cookiePath.endsWith('/') || requestPath[cookiePath.length] === '/'
}

/** RFC 6265 §5.1.4: the Path of a cookie set without one. */
function defaultPath (requestPath: string): string {
  const last = requestPath.lastIndexOf('/')
  return last <= 0 ? '/' : requestPath.slice(0, last)
}

export function browserLikeFetch (origin: string) {
  const jar = new Map<string, JarCookie>()
  const seen: SeenRequest[] = []
  const fetchImpl: FetchLike = async (input, init = {}) => {
    const url = new URL(String(input))
    const headers = new Headers(init.headers)
    headers.set('origin', origin)
    if (init.credentials === 'include') {
      const cookies = [...jar.values()].filter((c) => pathMatches(url.pathname, c.path)).map((c) => `${c.name}=${c.value}`)
      if (cookies.length > 0) headers.set('cookie', cookies.join('; '))
    }
    const response = await fetch(url, { ...init, headers })
    for (const line of response.headers.getSetCookie()) {
      const [pair = '', ...attributes] = line.split(';').map((part) => part.trim())
      const name = pair.slice(0, pair.indexOf('='))
      const value = pair.slice(pair.indexOf('=') + 1)
      const path = attributes.find((a) => /^path=/i.test(a))?.slice(5) ?? defaultPath(url.pathname)
      const key = `${name};${path}`
      if (attributes.some((a) => /^max-age=0$/i.test(a)) || value === '') jar.delete(key)
      else jar.set(key, { name, value, path })
    }
    const body = await response.clone().text()
    seen.push({ url: url.pathname, mode: headers.get('vouch-mode'), credentials: init.credentials, body })
    return response
  }
  return {
    fetch: fetchImpl,
    /** What the jar holds, in the order the cookies were first set. */
    cookies: (): JarCookie[] => [...jar.values()],
    /** Every request sent, with the body of its answer. */
    seen,
  }
}
