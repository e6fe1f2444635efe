/**
 * Input fuzzing against the whole HTTP stack (Fastify `inject`): fast-check
 * generates request bodies, content types, Authorization and other headers,
 * cookie mode, query strings and path variants for every route the app
 * registers, in every way the route can be authenticated: not at all, with
 * garbage, and with each kind of real credentials (a user's bearer token, a
 * resource client's or an admin client's Basic credentials).
 *
 * The routes are not listed here: they are collected from the app's own
 * onRoute events (test/helpers/registered-routes.ts), and what each needs is
 * read from the route itself: its credentials from its config (`auth`,
 * `client`, `admin`: src/http/plugins/authenticate.ts, client-auth.ts,
 * admin-auth.ts), its body fields from `schema.body.properties`, its query
 * fields from `schema.querystring.properties`, its path parameters from the
 * URL pattern. A registered route the fuzz does not understand (a config
 * key it does not know, say), or does not reach, fails the suite; the few
 * left out are in NOT_FUZZED, each with its reason.
 *
 * Whatever comes in, every answer must be:
 *
 * - below 500 (nothing a client sends may crash the service);
 * - for 4xx, JSON with exactly {statusCode, error, code, message}, statusCode
 *   equal to the HTTP status and code one of src/errors.ts's catalogue, with
 *   that code's status;
 * - free of internals: no stack trace, file path, SQL, Prisma or argon2 hash
 *   (unless the text merely echoes what the request itself sent; the files
 *   vouch serves, scripts and pages, are its own text and not searched);
 * - `Cache-Control: no-store` on /auth and /admin routes; on every 401 the
 *   challenge the error handler sets: RFC 6750's on a bearer route, Basic on
 *   a client or admin route;
 * - in cookie mode, never a refresh token in a body, and the refresh cookie
 *   only HttpOnly and SameSite=Strict.
 *
 * And by credentials: a user's live token always gets past bearer
 * authentication, a resource client's past client authentication, an admin
 * client's past admin authentication; a resource client's right secret on
 * an admin route is 403 `forbidden`, never more.
 *
 * Server-sent-event routes are read up to their first event and then left,
 * as a browser leaves a page; every request has a deadline, so none hangs
 * the suite.
 *
 * Deterministic cases add the body-limit boundary (exactly 64 KiB vs one byte
 * more), deeply nested and huge JSON, prototype-pollution keys at several
 * depths (afterwards Object.prototype and friends must be untouched), odd
 * values in every path parameter, and NUL bytes and odd unicode in otherwise
 * valid requests.
 */
import { STATUS_CODES, type ServerResponse } from 'node:http'
import { randomUUID } from 'node:crypto'
import type { Readable } from 'node:stream'
import t, { type Test } from 'tap'
import fc from 'fast-check'
import type { HTTPMethods } from 'fastify'
import { createTestApp } from '../helpers/app.js'
import { withRegisteredRoutes, type RegisteredRoute } from '../helpers/registered-routes.js'
import { PASSWORD, register, uniqueEmail } from '../helpers/client.js'
import { errorCatalogue } from '../../src/errors.js'
import { BODY_LIMIT } from '../../src/app.js'
import { randomSecret } from '../../src/crypto/secrets.js'
import { refreshCookieOptions } from '../../src/http/plugins/refresh-cookie.js'

const BEARER_CHALLENGE = 'Bearer error="invalid_token"'
const BASIC_CHALLENGE = 'Basic realm="vouch"'
const RUNS_PER_ROUTE_AND_MODE = Number(process.env.FUZZ_RUNS ?? 12)
/** Every request is answered (for a stream: its head and first event) within this, or the case fails instead of hanging. */
const ANSWER_MS = 15_000

const ADMIN = { id: 'fuzz-admin', secret: randomSecret() }
const RESOURCE = { id: 'fuzz-resource', secret: randomSecret() }
/** A cookie-mode origin (COOKIE_ORIGINS). */
const COOKIE_ORIGIN = 'https://app.example.com'

// ------------------------------------------------------------------ routes

/** What a route asks of its caller, from its config. */
type AuthKind = 'public' | 'bearer' | 'client' | 'admin'

interface Param {
  /** `*` for a wildcard. */
  name: string
  /** The path segment before it (`sessions`, `users`): what kind of id it is. */
  of: string | undefined
  /** From the route's params schema. */
  maxLength: number | undefined
}

interface Route {
  method: HTTPMethods
  /** The URL pattern, as registered. */
  path: string
  auth: AuthKind
  /** Body fields (schema.body.properties), fuzzed with right and wrong types. */
  fields: readonly string[]
  /** What the body schema says of them (type, maxLength), and which it requires. */
  properties: Readonly<Record<string, { type?: unknown, maxLength?: number }>>
  required: readonly string[]
  /** Query fields (schema.querystring.properties). */
  query: readonly string[]
  /** Path parameters in order (the URL pattern's `:name`s and `*`). */
  params: readonly Param[]
  /** Credentials checked only when presented (`client: 'optional'`). */
  optional: boolean
}

const routeName = (route: { method: string, path: string }) => `${route.method} ${route.path}`

/** Registered routes left out of the fuzz, with why. Everything else registered is fuzzed, or the suite fails. */
const NOT_FUZZED: ReadonlyArray<{ matches: (route: RegisteredRoute) => boolean, reason: string }> = [
  {
    matches: (route) => route.method === 'HEAD',
    reason: "Fastify's HEAD twin of a GET route (exposeHeadRoutes): the GET's hooks and handler, and no body to check; its GET is fuzzed",
  },
]

/** Route config keys and what they mean here; a key not listed is one the fuzz does not know how to satisfy. */
const CONFIG_KEYS: Readonly<Record<string, (value: unknown) => AuthKind | undefined>> = {
  auth: (value) => (value === 'bearer' ? 'bearer' : undefined),
  // With auth: 'bearer' (POST /auth/logout): in cookie mode the refresh cookie may stand in for a missing or expired token. Still a bearer route.
  cookieFallback: (value) => (value === true ? 'bearer' : undefined),
  client: (value) => (value === true || value === 'optional' ? 'client' : undefined),
  admin: (value) => (value === true ? 'admin' : undefined),
}

/** The fuzz's view of a registered route, or why it cannot have one. */
function deriveRoute (registered: RegisteredRoute): Route | string {
  const config = (registered.config ?? {}) as Record<string, unknown>
  const kinds = new Set<AuthKind>()
  for (const [key, value] of Object.entries(config)) {
    const kind = CONFIG_KEYS[key]?.(value)
    if (kind === undefined) return `config ${key}: ${JSON.stringify(value)} is unknown to the fuzz (teach CONFIG_KEYS what it asks of a caller)`
    kinds.add(kind)
  }
  if (kinds.size > 1) return `config asks for several kinds of credentials (${[...kinds].join(', ')})`
  if (/:\w+\(/.test(registered.url)) return 'a regular-expression path parameter (teach the fuzz to fill it)'
  type ObjectSchema = { properties?: Route['properties'], required?: string[] }
  const schema = (registered.schema ?? {}) as { body?: ObjectSchema, querystring?: ObjectSchema, params?: ObjectSchema }
  const paramSchema = schema.params?.properties ?? {}
  const params = [...registered.url.matchAll(/:(\w+)|\*/g)].map((match): Param => {
    const name = match[1] ?? '*'
    return { name, of: registered.url.slice(0, match.index).split('/').at(-2), maxLength: paramSchema[name]?.maxLength }
  })
  return {
    method: registered.method as HTTPMethods,
    path: registered.url,
    auth: [...kinds][0] ?? 'public',
    fields: Object.keys(schema.body?.properties ?? {}),
    properties: schema.body?.properties ?? {},
    required: schema.body?.required ?? [],
    query: Object.keys(schema.querystring?.properties ?? {}),
    params,
    optional: config.client === 'optional',
  }
}

/** How the request is authenticated. */
type AuthMode = 'none' | 'garbage' | 'user' | 'resource' | 'admin'

/** Every route is fuzzed without credentials, with garbage, and with each kind of real ones that tells something. */
const MODES: Readonly<Record<AuthKind, readonly AuthMode[]>> = {
  // A user's token on a public route: ignored.
  public: ['none', 'garbage', 'user'],
  bearer: ['none', 'garbage', 'user'],
  // A user's token is no client credential: 401 before the body is read.
  client: ['none', 'garbage', 'user', 'resource'],
  // A resource client's right secret is no admin credential: 403.
  admin: ['none', 'garbage', 'resource', 'admin'],
}

/** The credentials each kind of route asks for. */
const VALID: Readonly<Record<AuthKind, AuthMode>> = { public: 'user', bearer: 'user', client: 'resource', admin: 'admin' }

// -------------------------------------------------------------- the attack

interface Attack {
  method: HTTPMethods
  url: string
  headers: Record<string, string>
  payload?: string
  /** The request carries `Vouch-Mode: cookie` from an allowed origin. */
  cookieMode?: boolean
}

/** What came back: for a server-sent-event stream, its head and first event. */
interface Answer {
  statusCode: number
  headers: Record<string, string | string[] | number | undefined>
  body: string
  /** `METHOD url` of the route that took the request; undefined when none did (no match, a URL the router refused). */
  answeredBy: string | undefined
}

/** Short, printable description of an attack for failure messages. */
function describe (attack: Attack): string {
  const clip = (s: string, n = 300) => (s.length > n ? `${s.slice(0, n)}…(${s.length} chars)` : s)
  return JSON.stringify({
    method: attack.method,
    url: clip(attack.url),
    headers: Object.fromEntries(Object.entries(attack.headers).map(([k, v]) => [k, clip(v, 120)])),
    payload: attack.payload === undefined ? undefined : clip(attack.payload),
  })
}

// ------------------------------------------------------- what must hold

/** Internals that must never reach a client, unless echoed from the request itself. */
const LEAKS: ReadonlyArray<[string, RegExp]> = [
  ['stack frame', /\bat (?:async )?[\w$.<>]+ \(|\bat [^\s]+:\d+:\d+/],
  ['source file', /[\w-]+\.(?:ts|js|mjs|cjs):\d+/],
  ['file path', /\/(?:work|home|usr|tmp|var|opt|root)\/|node_modules|file:\/\/|[A-Z]:\\\\/],
  ['SQL', /\b(?:SELECT\b[\s\S]*\bFROM|INSERT\s+INTO|DELETE\s+FROM|UPDATE\s+["`\w]+\s+SET|CREATE\s+TABLE)\b/i],
  ['database', /prisma|sqlite|postgres|\bSQLSTATE\b|\bP\d{4}\b|constraint failed|relation "/i],
  ['argon2', /\$argon2/],
  ['JS error', /\b(?:TypeError|ReferenceError|RangeError|SyntaxError)\b|Cannot read propert|is not a function|undefined is not|Maximum call stack/],
]

/** Successful answers whose body is data (searched for leaks), not one of the files vouch serves (scripts, styles, pages, the YAML document). */
const DATA_TYPES = /^(?:application\/json|text\/event-stream|text\/plain)\b/

const CODES = new Set(Object.keys(errorCatalogue))

function requestText (attack: Attack): string {
  let url = attack.url
  try { url += decodeURIComponent(attack.url) } catch { /* keep the raw url */ }
  return `${url}\n${attack.payload ?? ''}\n${Object.values(attack.headers).join('\n')}`
}

function isPolluted (): string | undefined {
  const probe = {} as Record<string, unknown>
  for (const name of ['polluted', 'isAdmin', 'vouchPolluted', 'toString2']) {
    if (probe[name] !== undefined) return `({}).${name} is ${String(probe[name])}`
    if (([] as unknown as Record<string, unknown>)[name] !== undefined) return `[].${name} is defined`
  }
  if (Object.getPrototypeOf(probe) !== Object.prototype) return 'the prototype of {} changed'
  return undefined
}

/** A token pair's refresh token in a JSON body. */
function carriesRefreshToken (res: Answer): boolean {
  if (!String(res.headers['content-type']).startsWith('application/json')) return false
  try {
    const body = JSON.parse(res.body) as unknown
    return body !== null && typeof body === 'object' && Object.hasOwn(body, 'refreshToken')
  } catch {
    return false
  }
}

/** Everything wrong with one response; empty when it is acceptable. */
function problemsOf (res: Answer, attack: Attack, route: Route | undefined): string[] {
  const problems: string[] = []
  const status = res.statusCode
  const contentType = String(res.headers['content-type'] ?? '')
  if (status >= 500) problems.push(`status ${status} (must stay below 500)`)
  if (status >= 400) {
    let body: unknown
    try {
      body = JSON.parse(res.body)
    } catch {
      problems.push(`error body is not JSON: ${res.body.slice(0, 200)}`)
    }
    if (body !== undefined) {
      if (body === null || typeof body !== 'object' || Array.isArray(body)) {
        problems.push('error body is not a JSON object')
      } else {
        const fields = body as Record<string, unknown>
        const keys = Object.keys(fields).sort().join(',')
        if (keys !== 'code,error,message,statusCode') problems.push(`error body keys are {${keys}}`)
        if (fields.statusCode !== status) problems.push(`body statusCode ${String(fields.statusCode)} ≠ HTTP ${status}`)
        if (typeof fields.code !== 'string' || !CODES.has(fields.code)) {
          problems.push(`code ${JSON.stringify(fields.code)} is not in the catalogue`)
        } else if (errorCatalogue[fields.code as keyof typeof errorCatalogue].status !== status) {
          problems.push(`code ${fields.code} answered with ${status}`)
        }
        if (fields.error !== STATUS_CODES[status]) problems.push(`error ${JSON.stringify(fields.error)} is not "${STATUS_CODES[status]}"`)
        if (typeof fields.message !== 'string') problems.push('message is not a string')
      }
    }
    if (!/^application\/json/.test(contentType)) problems.push(`error content-type is ${contentType}`)
  }
  const sent = requestText(attack)
  const searchBody = status >= 300 || DATA_TYPES.test(contentType) || contentType === ''
  const inHeaders = Object.values(res.headers).map(String).join('\n')
  for (const [name, pattern] of LEAKS) {
    const match = searchBody ? pattern.exec(res.body) : null
    if (match !== null && !sent.includes(match[0])) problems.push(`leaks ${name}: …${res.body.slice(Math.max(0, match.index - 60), match.index + 80)}…`)
    const headerMatch = pattern.exec(inHeaders)
    if (headerMatch !== null && !sent.includes(headerMatch[0])) problems.push(`leaks ${name} in a header: ${headerMatch[0]}`)
  }
  if (/^\/(?:auth|admin)(?:[/?#;%]|$)/.test(attack.url) && res.headers['cache-control'] !== 'no-store') {
    problems.push(`${attack.url.split(/[/?]/)[1]} response with cache-control ${String(res.headers['cache-control'])}`)
  }
  if (status === 401 && route !== undefined && route.auth !== 'public') {
    const challenge = route.auth === 'bearer' ? BEARER_CHALLENGE : BASIC_CHALLENGE
    if (res.headers['www-authenticate'] !== challenge) {
      problems.push(`401 of a ${route.auth} route without the challenge ${challenge} (www-authenticate: ${String(res.headers['www-authenticate'])})`)
    }
  }
  if (attack.cookieMode === true && status < 300 && carriesRefreshToken(res)) problems.push('a refresh token in the body of a cookie-mode answer')
  for (const cookie of [res.headers['set-cookie'] ?? []].flat().map(String)) {
    if (cookie.startsWith(`${cookieName}=`) && !(/;\s*HttpOnly/i.test(cookie) && /;\s*SameSite=Strict/i.test(cookie))) {
      problems.push(`the refresh cookie without HttpOnly and SameSite=Strict: ${cookie.slice(0, 200)}`)
    }
  }
  const pollution = isPolluted()
  if (pollution !== undefined) problems.push(`prototype polluted: ${pollution}`)
  return problems
}

/**
 * Server bugs the fuzz found that are not fixed yet. An answer whose
 * problems one of these explains is reported as a todo (counted, shown, not
 * failing), so the suite stays green on a known bug and still fails on
 * anything new. An entry goes with its fix.
 */
const KNOWN_BUGS: ReadonlyArray<{ bug: string, explains: (res: Answer, attack: Attack) => boolean }> = []

const knownBugOf = (res: Answer, attack: Attack) => KNOWN_BUGS.find(({ explains }) => explains(res, attack))?.bug

/** What the credentials of `mode` promise when `route` took the request, beyond problemsOf: empty when kept. */
function credentialProblems (res: Answer, route: Route, mode: AuthMode): string[] {
  // A URL the router normalised to another route, or to none, says nothing about this one's credentials.
  if (res.answeredBy !== routeName(route)) return []
  const code = /"code":"(\w+)"/.exec(res.body)?.[1]
  // The app's own onRequest checks run before any route's credentials are looked at: a Vouch-Mode header it refuses, a cookie-mode origin it does not know.
  const beforeAuthentication = code === 'validation_failed' || code === 'origin_not_allowed'
  if (route.auth === 'bearer' && mode === 'user' && (code === 'invalid_token' || code === 'token_revoked')) return ['a valid bearer token was refused']
  if (route.auth === 'client' && mode === 'resource' && code === 'invalid_credentials') return ["a resource client's credentials were refused"]
  if (route.auth === 'client' && mode === 'user' && res.statusCode < 300) return ["a user's bearer token passed for a client's credentials"]
  if (route.auth === 'admin' && mode === 'admin' && (code === 'invalid_credentials' || code === 'forbidden')) return ["an admin client's credentials were refused"]
  if (route.auth === 'admin' && mode === 'resource' && code !== 'forbidden' && !beforeAuthentication) {
    return [`a resource client on an admin route got ${res.statusCode} ${code ?? ''}, not 403 forbidden`]
  }
  return []
}

// -------------------------------------------------------------- arbitraries

/** Characters a real HTTP parser lets through in a header value (visible ASCII, space, tab, obs-text). */
const headerChar = fc.oneof(
  { arbitrary: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), weight: 8 },
  { arbitrary: fc.constant('\t'), weight: 1 },
  { arbitrary: fc.integer({ min: 0x80, max: 0xff }).map((c) => String.fromCharCode(c)), weight: 1 },
)
const headerValue = (maxLength = 80) => fc.string({ unit: headerChar, maxLength })
const base64urlChar = fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'.split(''))
const b64 = (minLength: number, maxLength: number) => fc.string({ unit: base64urlChar, minLength, maxLength })

const TRICKY_STRINGS = [
  '', ' ', '\u0000', 'a\u0000b@example.com', 'user@example.com\u0000.evil', '\uD800', '\uDFFF', '\uFEFF', '\u202E',
  'ａｄｍｉｎ@ｅｘａｍｐｌｅ.com', 'ß@example.com', 'İ@example.com', '𝒜𝒷𝒸@example.com', '👍👍👍👍👍👍👍👍', 'user@localhost',
  '  UPPER@EXAMPLE.COM  ', '@', 'a@', '@b', 'a@b@c', 'a@.b', 'a@b.', 'a b@c.d',
  "' OR 1=1 --", '" OR ""="', "admin'--", '1; DROP TABLE "User"; --', '$where', '{"$gt":""}',
  '${7*7}', '{{7*7}}', '<script>alert(1)</script>', '../../etc/passwd', '%00', '%2e%2e%2f', '\r\nX-Injected: 1',
  'null', 'undefined', 'NaN', 'true', '[]', '{}', '0', '-1', '1e309',
  `${'a'.repeat(64)}@${'b'.repeat(185)}.com`, `${'a'.repeat(65)}@example.com`, `${'a'.repeat(64)}@${'b'.repeat(186)}.com`,
  'p'.repeat(7), 'p'.repeat(8), 'p'.repeat(256), 'p'.repeat(257), '😀'.repeat(256), '😀'.repeat(257), 'é'.repeat(300),
  'd'.repeat(100), 'd'.repeat(101), PASSWORD,
  `${randomUUID()}.${'A'.repeat(43)}`, `${randomUUID()}.${'A'.repeat(42)}`, `${randomUUID()}.${'A'.repeat(44)}`, `${randomUUID()}.`,
  `.${'A'.repeat(43)}`, `00000000-0000-0000-0000-000000000000.${'_'.repeat(43)}`, `${randomUUID().toUpperCase()}.${'A'.repeat(43)}`,
  '9'.repeat(16), '100', '101', ADMIN.id, RESOURCE.id,
]

/** Strings worth sending in any field: tricky constants, random unicode (with NULs and lone surrogates), sized runs. */
const weirdString = fc.oneof(
  { arbitrary: fc.constantFrom(...TRICKY_STRINGS), weight: 4 },
  { arbitrary: fc.string({ unit: 'binary', maxLength: 40 }), weight: 3 },
  { arbitrary: fc.string({ unit: 'grapheme', maxLength: 40 }), weight: 2 },
  { arbitrary: fc.tuple(fc.constantFrom('a', 'é', '😀', '\u0000', ' '), fc.integer({ min: 0, max: 2000 })).map(([c, n]) => c.repeat(n)), weight: 2 },
  { arbitrary: fc.tuple(b64(1, 20), b64(40, 46)).map(([a, b]) => `${a}.${b}`), weight: 1 },
  { arbitrary: fc.uuid().map((id) => `${id}.${'x'.repeat(43)}`), weight: 1 },
)

const smallJson = fc.jsonValue({ maxDepth: 3, stringUnit: 'binary' })

/** A value for a known field: the right type with odd content, or the wrong type altogether. */
const fieldValue: fc.Arbitrary<unknown> = fc.oneof(
  { arbitrary: weirdString, weight: 5 },
  { arbitrary: fc.oneof(fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.constant(-0)), weight: 1 },
  { arbitrary: fc.array(weirdString, { maxLength: 3 }), weight: 1 },
  { arbitrary: fc.dictionary(weirdString, weirdString, { maxKeys: 3 }), weight: 1 },
  { arbitrary: smallJson, weight: 1 },
)

/** JSON text with `key` (a prototype-pollution key) nested `depth` levels down. */
function pollutionJson (key: string, depth: number, around: Record<string, unknown> = {}, wrap: 'object' | 'array' | 'field' = 'object'): string {
  const payloads: Record<string, string> = {
    __proto__: '{"polluted":"yes","isAdmin":true}',
    constructor: '{"prototype":{"polluted":"yes","isAdmin":true}}',
    prototype: '{"polluted":"yes","isAdmin":true}',
    '\\u005f_proto__': '{"polluted":"yes"}',
    '__pro\\u0074o__': '{"polluted":"yes"}',
    'constr\\u0075ctor': '{"prototype":{"polluted":"yes"}}',
  }
  let inner = `{"${key}":${payloads[key] ?? '{"polluted":"yes"}'}}`
  for (let level = 0; level < depth; level++) {
    inner = wrap === 'array' ? `[${inner}]` : `{"${wrap === 'field' ? 'email' : 'nested'}":${inner}}`
  }
  const rest = JSON.stringify(around).slice(1, -1)
  if (inner.startsWith('{')) return rest === '' ? inner : `{${rest},${inner.slice(1)}`
  return rest === '' ? `{"nested":${inner}}` : `{${rest},"nested":${inner}}`
}

const POLLUTION_KEYS = ['__proto__', 'constructor', 'prototype', '\\u005f_proto__', '__pro\\u0074o__', 'constr\\u0075ctor'] as const

/** A JSON text of exactly `bytes` bytes (padding one string field). */
function jsonOfSize (bytes: number, fields: Record<string, unknown> = {}): string {
  const base = JSON.stringify({ ...fields, padding: '' })
  const text = `${base.slice(0, -2)}${'x'.repeat(bytes - Buffer.byteLength(base))}"}`
  if (Buffer.byteLength(text) !== bytes) throw new Error('jsonOfSize miscounted')
  return text
}

type BodySpec =
  | { kind: 'none' }
  | { kind: 'structured', value: Record<string, unknown> }
  | { kind: 'json', value: unknown }
  | { kind: 'raw', text: string }
  | { kind: 'truncated', value: Record<string, unknown>, cut: number }
  | { kind: 'big-string', field: string, length: number, char: string }
  | { kind: 'deep', depth: number, shape: 'array' | 'object', inField: boolean }
  | { kind: 'wide', keys: number }
  | { kind: 'pollution', key: string, depth: number, wrap: 'object' | 'array' | 'field' }
  | { kind: 'exact-size', bytes: number }

function bodyArb (route: Route): fc.Arbitrary<BodySpec> {
  const known = route.fields.length > 0 ? route.fields : ['email', 'password']
  const structured = fc.record(
    Object.fromEntries([...known.map((field) => [field, fieldValue]), ['extra', fieldValue]]) as Record<string, fc.Arbitrary<unknown>>,
    { requiredKeys: [] },
  )
  return fc.oneof(
    { arbitrary: fc.constant<BodySpec>({ kind: 'none' }), weight: 2 },
    { arbitrary: structured.map((value): BodySpec => ({ kind: 'structured', value })), weight: 8 },
    { arbitrary: smallJson.map((value): BodySpec => ({ kind: 'json', value })), weight: 2 },
    { arbitrary: fc.oneof(fc.string({ unit: 'binary', maxLength: 200 }), fc.constantFrom('{', '}', '{"a":', '{"a":1,}', "{'a':1}", '[1,2', 'nul', '\u0000', '{"a":"\\x"}', '{"a":"\\uZZZZ"}', '\uFEFF{}'))
      .map((text): BodySpec => ({ kind: 'raw', text })), weight: 2 },
    { arbitrary: fc.tuple(structured, fc.nat()).map(([value, cut]): BodySpec => ({ kind: 'truncated', value, cut })), weight: 1 },
    {
      arbitrary: fc.record({
        field: fc.constantFrom(...known, 'unknownField'),
        length: fc.oneof(fc.integer({ min: 1_000, max: BODY_LIMIT - 200 }), fc.integer({ min: BODY_LIMIT + 1, max: 3 * BODY_LIMIT }), fc.constant(1 << 20)),
        char: fc.constantFrom('a', 'é', '😀', '\u0000', '"', '\\'),
      }).map((spec): BodySpec => ({ kind: 'big-string', ...spec })),
      weight: 2,
    },
    {
      arbitrary: fc.record({ depth: fc.oneof(fc.integer({ min: 10, max: 2_000 }), fc.integer({ min: 2_000, max: 30_000 })), shape: fc.constantFrom('array' as const, 'object' as const), inField: fc.boolean() })
        .map((spec): BodySpec => ({ kind: 'deep', ...spec })),
      weight: 2,
    },
    { arbitrary: fc.integer({ min: 100, max: 8_000 }).map((keys): BodySpec => ({ kind: 'wide', keys })), weight: 1 },
    {
      arbitrary: fc.record({ key: fc.constantFrom(...POLLUTION_KEYS), depth: fc.integer({ min: 0, max: 6 }), wrap: fc.constantFrom('object' as const, 'array' as const, 'field' as const) })
        .map((spec): BodySpec => ({ kind: 'pollution', ...spec })),
      weight: 3,
    },
    { arbitrary: fc.integer({ min: -2, max: 2 }).map((delta): BodySpec => ({ kind: 'exact-size', bytes: BODY_LIMIT + delta })), weight: 1 },
  )
}

function bodyText (spec: BodySpec, route: Route, creds: Record<string, string>): string | undefined {
  switch (spec.kind) {
    case 'none': return undefined
    // With real credentials, the generated fields override some of them: a mostly valid body with a few odd fields.
    case 'structured': return JSON.stringify({ ...creds, ...spec.value })
    case 'json': return JSON.stringify(spec.value)
    case 'raw': return spec.text
    case 'truncated': {
      const text = JSON.stringify(spec.value)
      return text.slice(0, text.length === 0 ? 0 : spec.cut % text.length)
    }
    case 'big-string': return JSON.stringify({ ...creds, [spec.field]: spec.char.repeat(spec.length) })
    case 'deep': {
      const open = spec.shape === 'array' ? '['.repeat(spec.depth) : '{"a":'.repeat(spec.depth)
      const close = spec.shape === 'array' ? ']'.repeat(spec.depth) : `1${'}'.repeat(spec.depth)}`
      const nested = `${open}${close}`
      return spec.inField ? JSON.stringify(creds).replace(/^\{/, `{"${route.fields[0] ?? 'x'}":${nested},`).replace(/,}$/, '}') : nested
    }
    case 'wide': {
      const entries = Array.from({ length: spec.keys }, (_, i) => `"k${i}":${i}`)
      return `{${[JSON.stringify(creds).slice(1, -1), ...entries].filter((s) => s !== '').join(',')}}`
    }
    case 'pollution': return pollutionJson(spec.key, spec.depth, creds, spec.wrap)
    case 'exact-size': return jsonOfSize(spec.bytes, creds)
  }
}

const CONTENT_TYPES = [
  'application/json; charset=utf-8', 'application/json;charset=UTF-8', 'application/json; charset=utf-16', 'application/json; charset=latin1',
  'APPLICATION/JSON', 'Application/Json', 'application/json;', 'application/json ; x=y', ' application/json', 'application/json,text/plain',
  'application/jsonp', 'application/json-patch+json', 'application/merge-patch+json', 'application/problem+json', 'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=----vouch', 'text/plain', 'text/json', 'application/xml', 'application/octet-stream', '*/*', '', ';', 'application/',
  '/json', 'json', 'application/json\u00ff', 'application/json; boundary="\\"',
]

const contentTypeArb: fc.Arbitrary<string | undefined> = fc.oneof(
  { arbitrary: fc.constant('application/json'), weight: 8 },
  { arbitrary: fc.constant(undefined), weight: 1 },
  { arbitrary: fc.constantFrom(...CONTENT_TYPES), weight: 3 },
  { arbitrary: headerValue(60), weight: 1 },
)

/** Garbage credentials, some derived from a real token or a real client (given when the attack is materialised). */
type GarbageAuth =
  | { kind: 'random', value: string }
  | { kind: 'bearer-random', value: string }
  | { kind: 'three-parts', parts: [string, string, string] }
  | { kind: 'mutated-real', at: number, char: string }
  | { kind: 'real-variant', variant: number }
  | { kind: 'huge', length: number }
  | { kind: 'basic-random', value: string }
  | { kind: 'basic-pair', id: string, secret: string }
  | { kind: 'basic-near', client: 'admin' | 'resource', at: number, char: string, swap: boolean }

const garbageAuthArb: fc.Arbitrary<GarbageAuth> = fc.oneof(
  fc.record({ kind: fc.constant('random' as const), value: headerValue(200) }),
  fc.record({ kind: fc.constant('bearer-random' as const), value: headerValue(200) }),
  fc.record({ kind: fc.constant('three-parts' as const), parts: fc.tuple(b64(0, 80), b64(0, 200), b64(0, 90)) }),
  fc.record({ kind: fc.constant('mutated-real' as const), at: fc.nat(), char: fc.oneof(base64urlChar, fc.constantFrom('.', '=', '+', '/', '~')) }),
  fc.record({ kind: fc.constant('real-variant' as const), variant: fc.integer({ min: 0, max: 11 }) }),
  fc.record({ kind: fc.constant('huge' as const), length: fc.integer({ min: 1_000, max: 60_000 }) }),
  fc.record({ kind: fc.constant('basic-random' as const), value: headerValue(120) }),
  fc.record({ kind: fc.constant('basic-pair' as const), id: fc.oneof(weirdString, fc.constantFrom(ADMIN.id, RESOURCE.id)), secret: weirdString }),
  fc.record({ kind: fc.constant('basic-near' as const), client: fc.constantFrom('admin' as const, 'resource' as const), at: fc.nat(), char: base64urlChar, swap: fc.boolean() }),
)

const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`

function garbageAuthorization (spec: GarbageAuth, real: string): string {
  switch (spec.kind) {
    case 'random': return spec.value
    case 'bearer-random': return `Bearer ${spec.value}`
    case 'three-parts': return `Bearer ${spec.parts.join('.')}`
    case 'mutated-real': {
      const at = spec.at % real.length
      const mutated = `${real.slice(0, at)}${spec.char}${real.slice(at + 1)}`
      return `Bearer ${mutated === real ? `${real}x` : mutated}`
    }
    case 'real-variant': {
      const [h, p, s] = real.split('.') as [string, string, string]
      const variants = [
        real, `Basic ${real}`, `Bearer  ${real}x`, `Bearer ${h}.${p}.`, `Bearer ${h}.${p}`, `Bearer ${p}.${h}.${s}`,
        `Bearer ${real}.${s}`, `Bearer ${h}.${p}.${s.slice(0, -2)}`, `Bearer ${real},Bearer ${real}`, `Bearer\t${real}`,
        `Bearer ${Buffer.from('{"alg":"none","typ":"at+jwt"}').toString('base64url')}.${p}.`, `Bearer ${real}===`,
      ]
      return variants[spec.variant % variants.length]!
    }
    case 'huge': return `Bearer ${'a'.repeat(spec.length)}`
    case 'basic-random': return `Basic ${spec.value}`
    case 'basic-pair': return basic(spec.id, spec.secret)
    case 'basic-near': {
      // A real client's id with a secret one character off, or the two clients' ids and secrets crossed.
      const [client, other] = spec.client === 'admin' ? [ADMIN, RESOURCE] : [RESOURCE, ADMIN]
      if (spec.swap) return basic(client.id, other.secret)
      const at = spec.at % client.secret.length
      const near = `${client.secret.slice(0, at)}${spec.char}${client.secret.slice(at + 1)}`
      return basic(client.id, near === client.secret ? `${near}x` : near)
    }
  }
}

/** Values for any path parameter. */
const PARAM_VALUES = [
  '..', '.', '%2e%2e', '%2E', '%2F', 'a%2Fb', '..%2F..%2Fetc%2Fpasswd', '%2e%2e%2f%2e%2e%2fauth%2fme', '%00', 'a%00b', '%', '%ZZ', '%E0%A4%A',
  '%C0%AE%C0%AE', '%uFF0E', 'x'.repeat(64), 'x'.repeat(65), 'x'.repeat(5_000), '%27%20OR%201%3D1--', "'", ';', '*', '~', '%20', '+',
  '00000000-0000-0000-0000-000000000000', 'current', 'revoke-others', '__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty',
  '%F0%9F%98%80', '%EF%BB%BF', encodeURIComponent('\u202E'), `${'%41'.repeat(40)}`,
]

/** More for a wildcard, which takes slashes: traversals, dot files, names of files that exist somewhere. */
const WILDCARD_VALUES = [
  '', '/', '//', '../package.json', '../../package.json', '../../../etc/passwd', '..%2F..%2Fpackage.json', '%2e%2e/%2e%2e/package.json',
  '.env', '.git/config', 'a/../../b', 'index.html', 'index.js', 'app.js', 'account.css', 'swagger-initializer.js', 'swagger-ui.css',
  'index.d.ts', 'index.js.map', 'x/y/z.js', 'UPPER.JS', 'a.js%00.png', 'a.js?x=1', 'con', 'nul.js',
]

const URL_SUFFIXES = [
  '', '', '', '', '', '/', '?', '?a=1', '?__proto__[polluted]=yes', '?constructor[prototype][polluted]=yes', '?__proto__.polluted=yes',
  '?email=a%40b.c&password=x', '#frag', '?%', '?a=%ZZ', `?${'q'.repeat(5_000)}=1`, '/.', '/..', '%20', ';x', '%00',
]

/** One path parameter's value: a listed one, a random one, or the id of the caller's own session or user. */
type ParamSpec =
  | { kind: 'value', value: string }
  | { kind: 'random', value: string }
  | { kind: 'own' }

function paramArb (param: Param): fc.Arbitrary<ParamSpec> {
  const listed = param.name === '*' ? [...PARAM_VALUES, ...WILDCARD_VALUES, ...registeredPaths] : PARAM_VALUES
  return fc.oneof(
    fc.constantFrom(...listed).map((value): ParamSpec => ({ kind: 'value', value })),
    fc.uuid().map((value): ParamSpec => ({ kind: 'value', value })),
    fc.string({ unit: 'binary', minLength: 1, maxLength: 80 }).map((value): ParamSpec => ({ kind: 'random', value })),
    fc.constant<ParamSpec>({ kind: 'own' }),
  )
}

/** A query string of the route's own fields (plausible or odd values, some repeated) or none. */
type QuerySpec = Array<[string, string | { realistic: true }]>

function queryArb (route: Route): fc.Arbitrary<QuerySpec | undefined> {
  if (route.query.length === 0) return fc.constant(undefined)
  const value = fc.oneof(fc.constant({ realistic: true as const }), weirdString, fc.integer().map(String))
  return fc.oneof(
    { arbitrary: fc.constant(undefined), weight: 1 },
    { arbitrary: fc.array(fc.tuple(fc.constantFrom(...route.query, 'unknown'), value), { maxLength: 4 }), weight: 3 },
  )
}

interface PathSpec {
  params: ParamSpec[]
  suffix: string
  query: QuerySpec | undefined
}

function pathArb (route: Route): fc.Arbitrary<PathSpec> {
  return fc.record({
    params: fc.tuple(...route.params.map(paramArb)),
    suffix: fc.oneof(
      { arbitrary: fc.constant(''), weight: route.params.length > 0 ? 12 : 4 },
      { arbitrary: fc.constantFrom(...URL_SUFFIXES), weight: 1 },
    ),
    query: queryArb(route),
  })
}

/** The caller's own id for a parameter: its session for a `sessions/:id`, its user for a `users/:id`. */
function ownValue (param: Param, account: Account | undefined): string | undefined {
  if (account === undefined) return undefined
  if (param.of === 'sessions') return account.sessionId
  if (param.of === 'users') return account.user.id
  return undefined
}

/** `route`'s URL with `values` in its parameters, in order. */
function fillPath (route: Route, values: readonly string[]): string {
  let i = 0
  const filled = route.path.replace(/:\w+|\*/g, () => values[i++] ?? randomUUID())
  return filled.startsWith('/') ? filled : `/${filled}`
}

/** Each parameter the caller's own id where it has one, else a random UUID. */
const ownParams = (route: Route, account: Account | undefined) => route.params.map((param) => ownValue(param, account) ?? randomUUID())

function urlOf (route: Route, spec: PathSpec, account: Account | undefined): string {
  const values = route.params.map((param, i) => {
    const value = spec.params[i]!
    switch (value.kind) {
      case 'value': return value.value
      case 'random': return encodeURIComponent(value.value.replace(/[\uD800-\uDFFF]/g, '?'))
      case 'own': return ownValue(param, account) ?? randomUUID()
    }
  })
  const query = spec.query?.map(([key, value]) => {
    const text = typeof value === 'string' ? value : realisticValue(key, route, account) ?? ''
    return `${encodeURIComponent(key)}=${encodeURIComponent(text.replace(/[\uD800-\uDFFF]/g, '?'))}`
  }).join('&')
  return `${fillPath(route, values)}${spec.suffix}${query === undefined ? '' : `${spec.suffix.includes('?') ? '&' : '?'}${query}`}`
}

/**
 * A plausible value for a body or query field, by its name, for the caller's
 * account: a mostly valid request gets deeper than a random one. Undefined
 * for a field the fuzz knows nothing about (it still gets odd values).
 */
function realisticValue (field: string, route: Route, account: Account | undefined): string | undefined {
  switch (field) {
    // Registration needs an address no one has yet.
    case 'email': return route.path.endsWith('/register') ? uniqueEmail('fuzz-new') : account?.email
    case 'password': case 'currentPassword': return account?.password
    case 'newPassword': return 'a brand new passphrase'
    case 'refreshToken': case 'token': return account?.refreshToken
    case 'token_type_hint': return 'refresh_token'
    case 'client_id': return RESOURCE.id
    case 'client_secret': return RESOURCE.secret
    case 'deviceName': return 'fuzz device'
    case 'limit': return '10'
    case 'since': return '0'
    case 'before': return randomUUID()
    default: return undefined
  }
}

/** A body of plausible values for every field the route knows. */
function realisticBody (route: Route, account: Account | undefined): Record<string, string> {
  return Object.fromEntries(route.fields.flatMap((field) => {
    const value = realisticValue(field, route, account)
    return value === undefined ? [] : [[field, value]]
  }))
}

const extraHeadersArb = fc.record({
  'user-agent': fc.oneof(headerValue(100), fc.integer({ min: 500, max: 20_000 }).map((n) => 'U'.repeat(n))),
  'x-forwarded-for': fc.oneof(headerValue(60), fc.constantFrom('127.0.0.1', '::1', '1.2.3.4, 5.6.7.8', 'unknown', '<script>')),
  accept: fc.oneof(headerValue(40), fc.constantFrom('application/json', 'text/html', '*/*', 'application/xml', 'text/event-stream')),
  origin: fc.constantFrom('https://evil.example', 'null', 'http://localhost:3000', COOKIE_ORIGIN, `${COOKIE_ORIGIN}/`, COOKIE_ORIGIN.toUpperCase()),
  cookie: headerValue(80),
  'content-encoding': fc.constantFrom('gzip', 'deflate', 'br', 'identity', 'x-unknown'),
  'x-http-method-override': fc.constantFrom('DELETE', 'GET', 'PUT'),
  'access-control-request-method': fc.oneof(fc.constantFrom('POST', 'GET', 'DELETE', 'PUT', 'TRACE', ''), headerValue(20)),
  'access-control-request-headers': fc.oneof(fc.constantFrom('vouch-mode', 'authorization, content-type', 'x-evil', ''), headerValue(40)),
  'last-event-id': fc.oneof(fc.constantFrom('0', '-1', '1e3', '9'.repeat(20)), headerValue(30)),
}, { requiredKeys: [] })

/**
 * Cookie mode: `Vouch-Mode: cookie` from an allowed origin, with a refresh
 * cookie (the caller's, a made-up one, garbage or none); or an odd
 * Vouch-Mode header (refused before anything else, so kept rare).
 */
type CookieSpec =
  | { kind: 'off' }
  | { kind: 'on', cookie: 'caller' | 'made-up' | 'none' | 'garbage', garbage: string }
  | { kind: 'odd-header', value: string }

const cookieArb: fc.Arbitrary<CookieSpec> = fc.oneof(
  { arbitrary: fc.constant<CookieSpec>({ kind: 'off' }), weight: 6 },
  {
    arbitrary: fc.record({ kind: fc.constant('on' as const), cookie: fc.constantFrom('caller' as const, 'made-up' as const, 'none' as const, 'garbage' as const), garbage: headerValue(80) }),
    weight: 2,
  },
  {
    arbitrary: fc.record({ kind: fc.constant('odd-header' as const), value: fc.oneof(fc.constantFrom('COOKIE', ' cookie ', 'bearer', '', 'cookie, cookie'), headerValue(20)) }),
    weight: 1,
  },
)

interface AttackSpec {
  body: BodySpec
  contentType: string | undefined
  auth: GarbageAuth
  path: PathSpec
  extra: Record<string, string>
  cookie: CookieSpec
  /** Send a Content-Length that does not match the body. */
  lyingLength: number | undefined
  /** Build the body from the caller's real credentials where a body template asks for them. */
  realCreds: boolean
}

function attackArb (route: Route): fc.Arbitrary<AttackSpec> {
  return fc.record({
    body: bodyArb(route),
    contentType: contentTypeArb,
    auth: garbageAuthArb,
    path: pathArb(route),
    extra: extraHeadersArb,
    cookie: cookieArb,
    lyingLength: fc.oneof({ arbitrary: fc.constant(undefined), weight: 12 }, { arbitrary: fc.integer({ min: 0, max: 200 }), weight: 1 }),
    realCreds: fc.boolean(),
  })
}

// ------------------------------------------------------------------- suite

const { app, config, routes: registered, answeredBy } = await withRegisteredRoutes(() => createTestApp(t, {
  env: {
    // The reset limits are the domain's, not lifted by createTestApp: lift them so the fuzz reaches the validation.
    RESET_MAX_PER_EMAIL: '1000000000',
    RESET_MAX_PER_IP: '1000000000',
    ADMIN_CLIENTS: `${ADMIN.id}:${ADMIN.secret}`,
    RESOURCE_CLIENTS: `${RESOURCE.id}:${RESOURCE.secret}`,
    COOKIE_ORIGINS: COOKIE_ORIGIN,
  },
}))
const cookieName = refreshCookieOptions(config.cookies).name

const derived = registered
  .filter((route) => !NOT_FUZZED.some(({ matches }) => matches(route)))
  .map((route) => ({ registered: route, route: deriveRoute(route) }))
const ROUTES: readonly Route[] = derived.flatMap(({ route }) => (typeof route === 'string' ? [] : [route]))
/** Every registered path, parameters filled with a UUID: what a wildcard is also tried with. */
const registeredPaths = registered.map((route) => route.url.replace(/:\w+|\*/g, () => randomUUID()).replace(/^\//, ''))

/** A route the deterministic cases need by name; the suite fails if it is gone. */
function routeAt (method: string, path: string): Route {
  const route = ROUTES.find((r) => r.method === method && r.path === path)
  if (route === undefined) throw new Error(`${method} ${path} is not registered (or not fuzzed)`)
  return route
}

const protoBefore = {
  object: Object.getOwnPropertyNames(Object.prototype).sort().join(','),
  array: Object.getOwnPropertyNames(Array.prototype).sort().join(','),
  func: Object.getOwnPropertyNames(Function.prototype).sort().join(','),
}

let attacks = 0
let accounts = 0

type Account = Awaited<ReturnType<typeof register>>

/** A brand new account with a live session: destructive routes (logout-all, password, an admin's delete) never leave later cases without one. */
async function freshAccount (): Promise<Account> {
  accounts++
  return register(app, uniqueEmail('fuzz'), PASSWORD, 'fuzz device')
}

/** Its token is the material of garbage credentials (mutated, truncated, re-signed). */
const standing = await freshAccount()
/** The caller of reading routes (GET), which cannot end its session. */
const reader = await freshAccount()
/** The account admin clients read (GET); the admin's other routes act on fresh accounts. */
const adminTarget = await freshAccount()

/** Routes whose success may end the caller's session or change its account (logout, a password change, an admin's delete). */
const isDestructive = (route: Route) => route.method !== 'GET' && route.method !== 'OPTIONS'

/**
 * Callers of destructive routes, and of routes sent the caller's own
 * credentials in the body, by route and mode: each is used until a call
 * succeeds (it may have used the account up), then replaced. A refused call
 * changes nothing; if one did, the next call with the same caller would be
 * refused too, which credentialProblems reports.
 */
const callers = new Map<string, Account>()
const callerKey = (route: Route, mode: AuthMode) => `${routeName(route)} [${mode}]`

/** Who a request in `mode` acts as (whose token it carries, whose ids it names): its own for a destructive route, shared for a reading one. */
async function callerOf (route: Route, mode: AuthMode, wantsCreds = false): Promise<Account | undefined> {
  const own = (route.auth === 'bearer' && mode === 'user' && isDestructive(route)) ||
    (route.auth === 'admin' && mode === 'admin' && isDestructive(route)) || wantsCreds
  if (own) {
    const key = callerKey(route, mode)
    const caller = callers.get(key) ?? await freshAccount()
    callers.set(key, caller)
    return caller
  }
  if (route.auth === 'admin') return adminTarget
  return mode === 'user' ? reader : undefined
}

/** After each call: a success may have used its caller up. */
function spent (route: Route, mode: AuthMode, res: Answer): void {
  if (res.statusCode < 300) callers.delete(callerKey(route, mode))
}

function authorization (mode: AuthMode, account: Account | undefined, garbage?: GarbageAuth): string | undefined {
  switch (mode) {
    case 'none': return undefined
    case 'garbage': return garbageAuthorization(garbage!, standing.accessToken)
    case 'user': return `Bearer ${(account ?? reader).accessToken}`
    case 'resource': return basic(RESOURCE.id, RESOURCE.secret)
    case 'admin': return basic(ADMIN.id, ADMIN.secret)
  }
}

async function within<T> (promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} within ${ANSWER_MS} ms`)), ANSWER_MS)
  })
  try {
    return await Promise.race([promise, deadline])
  } finally {
    clearTimeout(timer)
  }
}

/** The first chunk a stream sends (or what it sent before it ended). */
function firstChunk (stream: Readable): Promise<string> {
  return new Promise((resolve, reject) => {
    stream.once('data', (chunk: Buffer) => resolve(chunk.toString('utf8')))
    stream.once('end', () => resolve(''))
    stream.once('error', reject)
  })
}

async function readAll (stream: Readable): Promise<string> {
  const chunks: Buffer[] = []
  for await (const chunk of stream) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks).toString('utf8')
}

/**
 * Sends the attack and reads the answer. A server-sent-event stream (which
 * never ends) is read up to its first event, then the reader leaves, which
 * closes the stream on the server as a real disconnection would.
 */
async function send (attack: Attack): Promise<Answer> {
  attacks++
  const res = await within(app.inject({
    method: attack.method,
    url: attack.url,
    headers: attack.headers,
    ...(attack.payload !== undefined && { payload: attack.payload }),
    payloadAsStream: true,
  }), `${attack.method} ${attack.url.slice(0, 100)}: no answer`)
  const stream = res.stream()
  const isEventStream = String(res.headers['content-type']).startsWith('text/event-stream')
  try {
    const body = await within(isEventStream ? firstChunk(stream) : readAll(stream), `${attack.method} ${attack.url.slice(0, 100)}: no body`)
    const raw = res.raw.res as ServerResponse
    return { statusCode: res.statusCode, headers: res.headers, body, answeredBy: answeredBy(raw) }
  } finally {
    if (isEventStream) (res.raw.res as ServerResponse).destroy()
  }
}

async function runAttack (route: Route, mode: AuthMode, spec: AttackSpec): Promise<void> {
  const account = await callerOf(route, mode, spec.realCreds && route.fields.length > 0)
  const creds = spec.realCreds ? realisticBody(route, account) : {}
  const headers: Record<string, string> = { ...spec.extra }
  const auth = authorization(mode, account, spec.auth)
  if (auth !== undefined) headers.authorization = auth
  const cookieMode = spec.cookie.kind === 'on'
  if (spec.cookie.kind === 'odd-header') headers['vouch-mode'] = spec.cookie.value
  if (spec.cookie.kind === 'on') {
    headers['vouch-mode'] = 'cookie'
    headers.origin = COOKIE_ORIGIN
    const made = `${randomUUID()}.${'A'.repeat(43)}`
    const cookie = { caller: account?.refreshToken ?? made, 'made-up': made, garbage: spec.cookie.garbage, none: undefined }[spec.cookie.cookie]
    if (cookie === undefined) delete headers.cookie
    else headers.cookie = `${cookieName}=${cookie}`
  }
  const payload = bodyText(spec.body, route, creds)
  if (payload !== undefined && spec.contentType !== undefined) headers['content-type'] = spec.contentType
  if (payload !== undefined && spec.lyingLength !== undefined) headers['content-length'] = String(spec.lyingLength)
  const attack: Attack = { method: route.method, url: urlOf(route, spec.path, account), headers, cookieMode, ...(payload !== undefined && { payload }) }
  const res = await send(attack)
  spent(route, mode, res)
  statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1)
  const problems = [...problemsOf(res, attack, route), ...credentialProblems(res, route, mode)]
  const known = problems.length > 0 ? knownBugOf(res, attack) : undefined
  if (known !== undefined) {
    if (!knownHits.has(known)) knownHits.set(known, `${res.statusCode} ${res.body.slice(0, 100)}; request: ${describe(attack)}`)
  } else if (problems.length > 0) {
    throw new Error(`${routeName(route)} [${mode}] → ${res.statusCode} ${res.body.slice(0, 300)}\n  ${problems.join('\n  ')}\n  request: ${describe(attack)}`)
  }
}

/** Statuses seen by the current generated run (printed per route and mode, to show how deep the inputs got). */
const statuses = new Map<number, number>()
/** Known bugs the current generated run ran into, with the first request that did. */
const knownHits = new Map<string, string>()
/** Route and mode pairs the generated test went through. */
const fuzzed = new Set<string>()

async function fuzzRoute (t: Test, route: Route, mode: AuthMode): Promise<void> {
  statuses.clear()
  knownHits.clear()
  const details = await fc.check(
    fc.asyncProperty(attackArb(route), (spec) => runAttack(route, mode, spec)),
    { numRuns: RUNS_PER_ROUTE_AND_MODE, ...(process.env.FUZZ_SEED !== undefined && { seed: Number(process.env.FUZZ_SEED) }) },
  )
  if (details.failed) {
    const reason = details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance)
    t.fail(`${routeName(route)} [${mode}]: ${reason}\n${fc.defaultReportMessage(details) ?? ''}`)
  } else {
    t.pass(`${routeName(route)} [${mode}]: ${details.numRuns} generated requests answered acceptably (seed ${details.seed})`)
  }
  for (const [bug, example] of knownHits) t.fail(`${routeName(route)} [${mode}]: ${example}`, { todo: `known server bug: ${bug}` })
  if (details.numRuns > 0) fuzzed.add(`${routeName(route)} [${mode}]`)
  t.comment(`${routeName(route)} [${mode}] statuses: ${[...statuses].sort(([a], [b]) => a - b).map(([status, n]) => `${status}×${n}`).join(' ')}`)
}

t.test('every route the app registers is fuzzed, or left out here with a reason', async (t) => {
  t.ok(registered.length > 40, `the app's routes were collected (${registered.length})`)
  for (const { registered: route, route: result } of derived) {
    t.type(result, 'object', `${route.method} ${route.url}: ${typeof result === 'string' ? `cannot be fuzzed: ${result}` : `fuzzed as a ${result.auth} route`}`)
  }
  const fuzzedGets = new Set(ROUTES.filter((r) => r.method === 'GET').map((r) => r.path))
  for (const route of registered) {
    const excluded = NOT_FUZZED.find(({ matches }) => matches(route))
    if (excluded === undefined) continue
    t.pass(`${route.method} ${route.url} is left out: ${excluded.reason}`)
    if (route.method === 'HEAD') t.ok(fuzzedGets.has(route.url) || fuzzedGets.has(route.url.replace(/\/$/, '')), `HEAD ${route.url}: its GET is fuzzed`)
  }
  t.comment(`${ROUTES.length} routes fuzzed, ${registered.length - derived.length} left out`)
})

t.test('generated requests against every route, without credentials, with garbage and with each kind of real ones', async (t) => {
  for (const route of ROUTES) {
    for (const mode of MODES[route.auth]) {
      await fuzzRoute(t, route, mode)
    }
  }
  const missing = ROUTES.flatMap((route) => MODES[route.auth].map((mode) => `${routeName(route)} [${mode}]`)).filter((name) => !fuzzed.has(name))
  t.same(missing, [], 'every route was fuzzed in each of its modes')
})

interface FixedOptions {
  contentType?: string
  url?: string
  /** Whose ids the URL names and whose token a bearer request carries; by default callerOf's. */
  caller?: Account
}

/** Deterministic attacks for one route, without credentials or with the ones it asks for: each is checked like the generated ones. */
async function fixedAttack (t: Test, route: Route, mode: 'none' | 'valid', name: string, payload: string | undefined, options: FixedOptions = {}): Promise<Answer> {
  const authMode = mode === 'valid' ? VALID[route.auth] : 'none'
  const account = options.caller ?? await callerOf(route, authMode)
  const headers: Record<string, string> = {}
  const auth = authorization(authMode, account)
  if (auth !== undefined) headers.authorization = auth
  if (payload !== undefined) headers['content-type'] = options.contentType ?? 'application/json'
  const attack: Attack = { method: route.method, url: options.url ?? fillPath(route, ownParams(route, account)), headers, ...(payload !== undefined && { payload }) }
  const res = await send(attack)
  spent(route, authMode, res)
  const problems = [...problemsOf(res, attack, route), ...credentialProblems(res, route, authMode)]
  const known = problems.length > 0 ? knownBugOf(res, attack) : undefined
  const message = `${routeName(route)} [${mode}] ${name}: ${res.statusCode}${problems.length > 0 ? ` ${res.body.slice(0, 200)} ${describe(attack)}` : ''}`
  t.same(problems, [], message, known === undefined ? {} : { todo: `known server bug: ${known}` })
  return res
}

const BODY_METHODS = new Set(['POST', 'DELETE', 'PUT', 'PATCH'])

/** Does the route parse a body, and get as far as parsing it in this mode (a token or an admin's credentials are checked first)? */
const parsesBody = (route: Route, mode: 'none' | 'valid') =>
  BODY_METHODS.has(route.method) && (route.auth === 'bearer' || route.auth === 'admin' ? mode === 'valid' : true)

/** ...and as far as validating it (body credentials of a client are checked after parsing, before validation)? */
const validatesBody = (route: Route, mode: 'none' | 'valid') =>
  parsesBody(route, mode) && !(route.auth === 'client' && !route.optional && mode === 'none')

/**
 * Could `text` pass the route's body schema, as far as its top level shows:
 * an object with every required field, and the known fields of the type and
 * length the schema says. When it cannot, the answer must be 400.
 */
function mayBeValidBody (route: Route, text: string): boolean {
  let body: unknown
  try { body = JSON.parse(text) } catch { return false }
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return false
  const fields = body as Record<string, unknown>
  if (route.required.some((name) => !Object.hasOwn(fields, name))) return false
  return Object.entries(route.properties).every(([name, { type, maxLength }]) => {
    if (!Object.hasOwn(fields, name) || type === undefined) return true
    const value = fields[name]
    switch (type) {
      case 'string': return typeof value === 'string' && (maxLength === undefined || [...value].length <= maxLength)
      case 'integer': return Number.isInteger(value)
      case 'number': case 'boolean': return typeof value === type
      case 'object': return typeof value === 'object' && value !== null && !Array.isArray(value)
      default: return true // a type this check does not know: it cannot tell
    }
  })
}

t.test('prototype-pollution keys at several depths are refused or dropped, never applied', async (t) => {
  for (const route of ROUTES) {
    for (const mode of ['none', 'valid'] as const) {
      for (const key of POLLUTION_KEYS) {
        const escaped = key.includes('\\u')
        for (const depth of escaped ? [0, 2] : [0, 1, 4]) {
          for (const wrap of ['object', 'array', 'field'] as const) {
            if ((depth === 0 || escaped) && wrap !== 'object') continue
            const res = await fixedAttack(t, route, mode, `${key} at depth ${depth} (${wrap})`, pollutionJson(key, depth, {}, wrap))
            // README: `__proto__`/`constructor` keys are rejected by the JSON parser.
            if (parsesBody(route, mode) && key !== 'prototype') {
              t.equal(res.statusCode, 400, `${routeName(route)} [${mode}] ${key} at depth ${depth} (${wrap}) is refused`)
            }
          }
        }
      }
    }
  }
  t.equal(isPolluted(), undefined, 'no prototype was polluted')
})

t.test('the 64 KiB body limit: exactly at the limit is parsed, one byte over is 413', async (t) => {
  for (const route of ROUTES) {
    for (const mode of ['none', 'valid'] as const) {
      for (const bytes of [BODY_LIMIT - 1, BODY_LIMIT]) {
        const res = await fixedAttack(t, route, mode, `${bytes}-byte body`, jsonOfSize(bytes))
        t.not(res.statusCode, 413, `${routeName(route)} [${mode}] a ${bytes}-byte body is within the limit`)
      }
      for (const bytes of [BODY_LIMIT + 1, BODY_LIMIT + 1024, 4 * BODY_LIMIT]) {
        const res = await fixedAttack(t, route, mode, `${bytes}-byte body`, jsonOfSize(bytes))
        if (parsesBody(route, mode)) {
          t.equal(res.statusCode, 413, `${routeName(route)} [${mode}] a ${bytes}-byte body is 413`)
          t.equal(JSON.parse(res.body).code, 'payload_too_large')
        }
      }
      // Over the limit and not JSON either, and a huge malformed JSON text.
      await fixedAttack(t, route, mode, 'over-limit text/plain', 'x'.repeat(BODY_LIMIT + 1), { contentType: 'text/plain' })
      await fixedAttack(t, route, mode, 'over-limit malformed JSON', `{"password":"${'y'.repeat(BODY_LIMIT)}`)
    }
  }
})

t.test('deeply nested and huge JSON documents', async (t) => {
  const nestings: Array<[string, string]> = [
    ['arrays nested 10,000 deep', `${'['.repeat(10_000)}${']'.repeat(10_000)}`],
    ['arrays nested 32,000 deep (just under 64 KiB)', `${'['.repeat(32_000)}${']'.repeat(32_000)}`],
    ['objects nested 6,000 deep', `${'{"a":'.repeat(6_000)}1${'}'.repeat(6_000)}`],
    ['objects nested 10,000 deep in the email field', `{"email":${'{"a":'.repeat(10_000)}1${'}'.repeat(10_000)},"password":"x"}`],
    ['5,000 keys', `{${Array.from({ length: 5_000 }, (_, i) => `"k${i}":${i}`).join(',')}}`],
    ['the same key 2,500 times', `{${Array.from({ length: 2_500 }, () => '"password":"a-password"').join(',')}}`],
    ['an array of 30,000 numbers', `[${Array.from({ length: 30_000 }, () => '1').join(',')}]`],
    ['a 60 KiB string of escapes', `{"email":"${'\\u0000'.repeat(10_000)}"}`],
    ['a 60 KiB number', `{"email":${'9'.repeat(60_000)}}`],
  ]
  for (const [name, text] of nestings) t.ok(Buffer.byteLength(text) <= BODY_LIMIT, `${name}: within the body limit`)
  for (const route of ROUTES) {
    for (const mode of ['none', 'valid'] as const) {
      for (const [name, text] of nestings) {
        const res = await fixedAttack(t, route, mode, name, text)
        if (validatesBody(route, mode) && route.fields.length > 0 && !mayBeValidBody(route, text)) t.equal(res.statusCode, 400, `${routeName(route)} [${mode}] ${name} is refused`)
      }
    }
  }
})

t.test("odd values in every path parameter get a catalogue answer and never reach anyone else's session or account", async (t) => {
  const victim = await freshAccount()
  // The account whose ids fill a route's other parameters: only the odd value can be wrong, so nothing may happen to it.
  const bystander = await freshAccount()
  let cases = 0
  for (const route of ROUTES.filter((r) => r.params.length > 0)) {
    for (const [i, param] of route.params.entries()) {
      const own = ownValue(param, victim)
      // Someone else's id, as is and disguised, where the caller is a user (an admin may act on anyone).
      const victimIds = own === undefined || route.auth !== 'bearer' ? [] : [own, own.toUpperCase(), `${own}%00`, `${own}%2F..`, ` ${own}`]
      const values = [...PARAM_VALUES, ...(param.name === '*' ? WILDCARD_VALUES : []), ...victimIds]
      for (const value of values) {
        for (const mode of ['none', 'valid'] as const) {
          const caller = route.auth === 'admin' ? bystander : undefined
          const params = ownParams(route, bystander)
          params[i] = value
          cases++
          await fixedAttack(t, route, mode, `${param.name} ${value.slice(0, 40)}`, undefined, { url: fillPath(route, params), ...(caller && { caller }) })
        }
      }
    }
  }
  for (const [who, account] of [['victim', victim], ['bystander', bystander]] as const) {
    const still = await app.inject({ method: 'GET', url: '/auth/me', headers: { authorization: `Bearer ${account.accessToken}` } })
    t.equal(still.statusCode, 200, `the ${who}'s session survived every attempt`)
  }
  t.comment(`${cases} requests with odd path parameters`)
})

/** Odd values for a field, by what it holds (from the realistic value `base`). */
function oddValues (field: string, base: string | undefined): string[] {
  const value = base ?? 'value'
  if (field === 'email') return [`nul\u0000${value}`, `${value}\u0000`, `\uD800${value}`, `\u202E${value}`, `${value.split('@')[0]}@exa\u0000mple.com`, `ｕｓｅｒ${value}`]
  if (field === 'deviceName') return ['dev\u0000ice', '\u0000', '\uD800', '\u202Eecived', '👍'.repeat(50)]
  if (/token$/i.test(field) && base !== undefined) return [`${value}\u0000`, `${value.slice(0, -1)}\u0000`, value.replace('.', '\u0000'), `${value.slice(0, -1)}\uD800`]
  return [`${value}\u0000`, '\u0000'.repeat(8), '\uD800'.repeat(8), `\uFEFF${value}`, '\u0301'.repeat(8)]
}

t.test('NUL bytes, lone surrogates and odd unicode in otherwise valid requests', async (t) => {
  // Each field of an otherwise valid body is replaced in turn, so the odd value gets as deep as it can.
  let cases = 0
  for (const route of ROUTES.filter((r) => r.fields.length > 0)) {
    const mode = VALID[route.auth]
    const shared = await freshAccount()
    for (const field of route.fields) {
      for (const value of oddValues(field, realisticValue(field, route, shared))) {
        cases++
        // A signed-in user's body may be valid enough to change its password or delete the account: its own caller (callerOf).
        const caller = route.auth === 'bearer' ? (await callerOf(route, mode))! : shared
        const body = { ...realisticBody(route, caller), [field]: value }
        const auth = route.auth === 'public' ? undefined : authorization(mode, caller)
        const attack: Attack = {
          method: route.method, url: fillPath(route, ownParams(route, caller)), payload: JSON.stringify(body),
          headers: { 'content-type': 'application/json', ...(auth !== undefined && { authorization: auth }) },
        }
        const res = await send(attack)
        if (route.auth === 'bearer') spent(route, mode, res)
        const problems = [...problemsOf(res, attack, route), ...credentialProblems(res, route, route.auth === 'public' ? 'none' : mode)]
        t.same(problems, [], `${routeName(route)} ${field} = ${JSON.stringify(value).slice(0, 60)}: ${res.statusCode}${problems.length > 0 ? ` ${res.body.slice(0, 200)}` : ''}`)
      }
    }
  }
  // The same in path parameters and a header that reaches the database (user-agent is stored with the session).
  for (const route of ROUTES.filter((r) => r.params.some((param) => ownValue(param, reader) !== undefined))) {
    const caller = route.auth === 'admin' ? await freshAccount() : undefined
    for (const [i, param] of route.params.entries()) {
      const own = ownValue(param, caller ?? reader) ?? randomUUID()
      for (const odd of ['%00', `${own}%00`, `%00${own}`, '%ED%A0%80', `${own.slice(0, -1)}%C3%A9`]) {
        cases++
        const params = ownParams(route, caller ?? reader)
        params[i] = odd
        await fixedAttack(t, route, 'valid', `${param.name} ${odd}`, undefined, { url: fillPath(route, params), ...(caller && { caller }) })
      }
    }
  }
  const login = routeAt('POST', '/auth/login')
  const account = await freshAccount()
  for (const userAgent of ['ua\u00ff\u00fe', 'x'.repeat(600)]) {
    cases++
    const attack: Attack = { method: 'POST', url: login.path, payload: JSON.stringify({ email: account.email, password: account.password }), headers: { 'content-type': 'application/json', 'user-agent': userAgent } }
    const res = await send(attack)
    t.same(problemsOf(res, attack, login), [], `login with user-agent ${JSON.stringify(userAgent.slice(0, 20))}: ${res.statusCode}`)
  }
  t.comment(`${cases} requests with odd characters in otherwise valid requests`)
})

t.test("malformed percent-encoding and over-long path parameters get the catalogue's error shape", async (t) => {
  // One malformed escape after every route's path, or in its first parameter...
  for (const route of ROUTES) {
    const url = route.params.length > 0 ? fillPath(route, ['%ZZ']) : `${fillPath(route, [])}%ZZ`
    await fixedAttack(t, route, 'none', `url ${url}`, undefined, { url })
  }
  // ...and several in each parameter, and parameters of every length around the schema's limit, with and without credentials.
  for (const route of ROUTES.filter((r) => r.params.length > 0)) {
    for (const [i, param] of route.params.entries()) {
      for (const mode of ['none', 'valid'] as const) {
        // An odd or over-long id reaches no account, so the admin's destructive routes may name the shared target's ids around it.
        const caller = route.auth === 'admin' && mode === 'valid' ? adminTarget : undefined
        const urlWith = (value: string) => {
          const params = ownParams(route, caller ?? (route.auth === 'bearer' ? reader : undefined))
          params[i] = value
          return fillPath(route, params)
        }
        for (const bad of ['%', '%ZZ', '%E0%A4%A', '%C0%AE']) {
          await fixedAttack(t, route, mode, `${param.name} ${bad}`, undefined, { url: urlWith(bad), ...(caller && { caller }) })
        }
        for (const length of [64, 65, 100, 101, 5_000]) {
          const res = await fixedAttack(t, route, mode, `a ${length}-character ${param.name}`, undefined, { url: urlWith('x'.repeat(length)), ...(caller && { caller }) })
          if (mode === 'valid' && param.maxLength !== undefined && length > param.maxLength) {
            t.equal(res.statusCode, 400, `${routeName(route)}: a ${length}-character ${param.name} is validation_failed`)
          }
        }
      }
    }
  }
})

t.test('afterwards: no prototype was polluted and the service still works', async (t) => {
  t.equal(isPolluted(), undefined, '({}).polluted and friends are undefined')
  t.equal(({} as Record<string, unknown>).polluted, undefined)
  t.equal(({} as Record<string, unknown>).isAdmin, undefined)
  t.equal(Object.getOwnPropertyNames(Object.prototype).sort().join(','), protoBefore.object, 'Object.prototype has the same properties')
  t.equal(Object.getOwnPropertyNames(Array.prototype).sort().join(','), protoBefore.array, 'Array.prototype has the same properties')
  t.equal(Object.getOwnPropertyNames(Function.prototype).sort().join(','), protoBefore.func, 'Function.prototype has the same properties')
  const account = await freshAccount()
  const res = await app.inject({ method: 'GET', url: '/auth/me', headers: { authorization: `Bearer ${account.accessToken}` } })
  t.equal(res.statusCode, 200)
  t.equal(res.json().email, account.email)
  t.notOk('polluted' in res.json(), 'no polluted property in a profile')
  t.equal((await app.inject({ method: 'GET', url: '/health/ready' })).statusCode, 200)
  for (const [who, account] of [['reader', reader], ['admin target', adminTarget]] as const) {
    t.equal((await app.inject({ method: 'GET', url: '/auth/me', headers: { authorization: `Bearer ${account.accessToken}` } })).statusCode, 200, `the shared ${who}'s session is still live`)
  }
  t.comment(`input-fuzz: ${attacks} attack cases tried, ${accounts} accounts registered`)
})
