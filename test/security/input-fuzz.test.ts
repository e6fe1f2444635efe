/**
 * Input fuzzing against the whole HTTP stack (Fastify `inject`): fast-check
 * generates request bodies, content types, Authorization and other headers,
 * and path variants for every route, unauthenticated, with garbage
 * credentials and with a valid bearer token. Whatever comes in, every answer
 * must be:
 *
 * - below 500 (nothing a client sends may crash the service);
 * - for 4xx, JSON with exactly {statusCode, error, code, message}, statusCode
 *   equal to the HTTP status and code one of src/errors.ts's catalogue, with
 *   that code's status;
 * - free of internals: no stack trace, file path, SQL, Prisma or argon2 hash
 *   (unless the text merely echoes what the request itself sent);
 * - `Cache-Control: no-store` on /auth routes; the RFC 6750 challenge on
 *   every 401 of a bearer route.
 *
 * Deterministic cases add the body-limit boundary (exactly 64 KiB vs one byte
 * more), deeply nested and huge JSON, and prototype-pollution keys at several
 * depths; afterwards Object.prototype (and friends) must be untouched.
 */
import { STATUS_CODES } from 'node:http'
import { randomUUID } from 'node:crypto'
import t, { type Test } from 'tap'
import fc from 'fast-check'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { createTestApp } from '../helpers/app.js'
import { PASSWORD, register, uniqueEmail, type TokenPair } from '../helpers/client.js'
import { errorCatalogue } from '../../src/errors.js'
import { BODY_LIMIT } from '../../src/app.js'

const CHALLENGE = 'Bearer error="invalid_token"'
const RUNS_PER_ROUTE_AND_MODE = Number(process.env.FUZZ_RUNS ?? 12)

// ------------------------------------------------------------------ routes

type Method = 'GET' | 'POST' | 'DELETE'

interface Route {
  method: Method
  /** With `:id` for the one parameterised route. */
  path: string
  bearer: boolean
  /** Client authentication: any Authorization header that is not a resource client's credentials (a bearer token) is 401 before the body is read. */
  client?: true
  /** The body fields the route knows (fuzzed with right and wrong types). */
  fields: readonly string[]
}

const ROUTES: readonly Route[] = [
  { method: 'POST', path: '/auth/register', bearer: false, fields: ['email', 'password', 'deviceName'] },
  { method: 'POST', path: '/auth/login', bearer: false, fields: ['email', 'password', 'deviceName'] },
  { method: 'POST', path: '/auth/refresh', bearer: false, fields: ['refreshToken'] },
  { method: 'POST', path: '/auth/logout', bearer: true, fields: [] },
  { method: 'POST', path: '/auth/logout-all', bearer: true, fields: [] },
  { method: 'POST', path: '/auth/password', bearer: true, fields: ['currentPassword', 'newPassword'] },
  { method: 'POST', path: '/auth/sessions/revoke-others', bearer: true, fields: [] },
  { method: 'POST', path: '/auth/password/forgot', bearer: false, fields: ['email'] },
  { method: 'POST', path: '/auth/password/reset', bearer: false, fields: ['token', 'newPassword', 'deviceName'] },
  { method: 'GET', path: '/auth/me', bearer: true, fields: [] },
  { method: 'GET', path: '/auth/sessions', bearer: true, fields: [] },
  { method: 'GET', path: '/.well-known/jwks.json', bearer: false, fields: [] },
  { method: 'GET', path: '/.well-known/oauth-authorization-server', bearer: false, fields: [] },
  { method: 'GET', path: '/.well-known/openid-configuration', bearer: false, fields: [] },
  { method: 'POST', path: '/auth/revoke', bearer: false, client: true, fields: ['token', 'token_type_hint', 'client_id', 'client_secret'] },
  { method: 'GET', path: '/health/live', bearer: false, fields: [] },
  { method: 'GET', path: '/health/ready', bearer: false, fields: [] },
  { method: 'DELETE', path: '/auth/sessions/:id', bearer: true, fields: [] },
]

const routeName = (route: Route) => `${route.method} ${route.path}`

/** How the request is authenticated: not at all, with garbage, or with a real, live token. */
type AuthMode = 'none' | 'garbage' | 'valid'

// -------------------------------------------------------------- the attack

interface Attack {
  method: Method
  url: string
  headers: Record<string, string>
  payload?: string
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

/** Everything wrong with one response; empty when it is acceptable. */
function problemsOf (res: LightMyRequestResponse, attack: Attack, route: Route | undefined): string[] {
  const problems: string[] = []
  const status = res.statusCode
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
    if (!/^application\/json/.test(String(res.headers['content-type']))) {
      problems.push(`error content-type is ${String(res.headers['content-type'])}`)
    }
  }
  const sent = requestText(attack)
  for (const [name, pattern] of LEAKS) {
    const match = pattern.exec(res.body)
    if (match !== null && !sent.includes(match[0])) problems.push(`leaks ${name}: …${res.body.slice(Math.max(0, match.index - 60), match.index + 80)}…`)
    const inHeaders = Object.values(res.headers).map(String).join('\n')
    const headerMatch = pattern.exec(inHeaders)
    if (headerMatch !== null && !sent.includes(headerMatch[0])) problems.push(`leaks ${name} in a header: ${headerMatch[0]}`)
  }
  if (attack.url.startsWith('/auth') && res.headers['cache-control'] !== 'no-store') {
    problems.push(`/auth response with cache-control ${String(res.headers['cache-control'])}`)
  }
  if (status === 401 && route?.bearer === true && res.headers['www-authenticate'] !== CHALLENGE) {
    problems.push(`401 of a bearer route without the challenge (www-authenticate: ${String(res.headers['www-authenticate'])})`)
  }
  const pollution = isPolluted()
  if (pollution !== undefined) problems.push(`prototype polluted: ${pollution}`)
  return problems
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
      const nested = spec.shape === 'array' ? `${open}${close}` : `${open}${close}`
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

/** Garbage credentials, some derived from a real token (given when the attack is materialised). */
type GarbageAuth =
  | { kind: 'random', value: string }
  | { kind: 'bearer-random', value: string }
  | { kind: 'three-parts', parts: [string, string, string] }
  | { kind: 'mutated-real', at: number, char: string }
  | { kind: 'real-variant', variant: number }
  | { kind: 'huge', length: number }

const garbageAuthArb: fc.Arbitrary<GarbageAuth> = fc.oneof(
  fc.record({ kind: fc.constant('random' as const), value: headerValue(200) }),
  fc.record({ kind: fc.constant('bearer-random' as const), value: headerValue(200) }),
  fc.record({ kind: fc.constant('three-parts' as const), parts: fc.tuple(b64(0, 80), b64(0, 200), b64(0, 90)) }),
  fc.record({ kind: fc.constant('mutated-real' as const), at: fc.nat(), char: fc.oneof(base64urlChar, fc.constantFrom('.', '=', '+', '/', '~')) }),
  fc.record({ kind: fc.constant('real-variant' as const), variant: fc.integer({ min: 0, max: 11 }) }),
  fc.record({ kind: fc.constant('huge' as const), length: fc.integer({ min: 1_000, max: 60_000 }) }),
)

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
  }
}

const SESSION_IDS = [
  '..', '.', '%2e%2e', '%2E', '%2F', 'a%2Fb', '..%2F..%2Fetc%2Fpasswd', '%2e%2e%2f%2e%2e%2fauth%2fme', '%00', 'a%00b', '%', '%ZZ', '%E0%A4%A',
  '%C0%AE%C0%AE', '%uFF0E', 'x'.repeat(64), 'x'.repeat(65), 'x'.repeat(5_000), '%27%20OR%201%3D1--', "'", ';', '*', '~', '%20', '+',
  '00000000-0000-0000-0000-000000000000', 'current', 'revoke-others', '__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty',
  '%F0%9F%98%80', '%EF%BB%BF', encodeURIComponent('\u202E'), `${'%41'.repeat(40)}`,
]

const URL_SUFFIXES = [
  '', '', '', '', '', '/', '?', '?a=1', '?__proto__[polluted]=yes', '?constructor[prototype][polluted]=yes', '?__proto__.polluted=yes',
  '?email=a%40b.c&password=x', '#frag', '?%', '?a=%ZZ', `?${'q'.repeat(5_000)}=1`, '/.', '/..', '%20', ';x', '%00',
]

type PathSpec =
  | { kind: 'plain' }
  | { kind: 'suffix', suffix: string }
  | { kind: 'id', id: string }
  | { kind: 'random-id', id: string }
  | { kind: 'own-session' }

function pathArb (route: Route): fc.Arbitrary<PathSpec> {
  if (route.path.includes(':id')) {
    return fc.oneof(
      fc.constantFrom(...SESSION_IDS).map((id): PathSpec => ({ kind: 'id', id })),
      fc.uuid().map((id): PathSpec => ({ kind: 'id', id })),
      fc.string({ unit: 'binary', minLength: 1, maxLength: 80 }).map((id): PathSpec => ({ kind: 'random-id', id })),
      fc.constant<PathSpec>({ kind: 'own-session' }),
    )
  }
  return fc.oneof(
    { arbitrary: fc.constant<PathSpec>({ kind: 'plain' }), weight: 4 },
    { arbitrary: fc.constantFrom(...URL_SUFFIXES).map((suffix): PathSpec => ({ kind: 'suffix', suffix })), weight: 1 },
  )
}

function urlOf (route: Route, spec: PathSpec, sessionId: string | undefined): string {
  switch (spec.kind) {
    case 'plain': return route.path
    case 'suffix': return `${route.path}${spec.suffix}`
    case 'id': return route.path.replace(':id', spec.id)
    case 'random-id': return route.path.replace(':id', encodeURIComponent(spec.id.replace(/[\uD800-\uDFFF]/g, '?')))
    case 'own-session': return route.path.replace(':id', sessionId ?? randomUUID())
  }
}

const extraHeadersArb = fc.record({
  'user-agent': fc.oneof(headerValue(100), fc.integer({ min: 500, max: 20_000 }).map((n) => 'U'.repeat(n))),
  'x-forwarded-for': fc.oneof(headerValue(60), fc.constantFrom('127.0.0.1', '::1', '1.2.3.4, 5.6.7.8', 'unknown', '<script>')),
  accept: fc.oneof(headerValue(40), fc.constantFrom('application/json', 'text/html', '*/*', 'application/xml')),
  origin: fc.constantFrom('https://evil.example', 'null', 'http://localhost:3000'),
  cookie: headerValue(80),
  'content-encoding': fc.constantFrom('gzip', 'deflate', 'br', 'identity', 'x-unknown'),
  'x-http-method-override': fc.constantFrom('DELETE', 'GET', 'PUT'),
}, { requiredKeys: [] })

interface AttackSpec {
  body: BodySpec
  contentType: string | undefined
  auth: GarbageAuth
  path: PathSpec
  extra: Record<string, string>
  /** Send a Content-Length that does not match the body. */
  lyingLength: number | undefined
  /** Build the body from the fuzz user's real credentials where a body template asks for them. */
  realCreds: boolean
}

function attackArb (route: Route): fc.Arbitrary<AttackSpec> {
  return fc.record({
    body: bodyArb(route),
    contentType: contentTypeArb,
    auth: garbageAuthArb,
    path: pathArb(route),
    extra: extraHeadersArb,
    lyingLength: fc.oneof({ arbitrary: fc.constant(undefined), weight: 12 }, { arbitrary: fc.integer({ min: 0, max: 200 }), weight: 1 }),
    realCreds: fc.boolean(),
  })
}

// ------------------------------------------------------------------- suite

const { app } = await createTestApp(t, {
  // The reset limits are the domain's, not lifted by createTestApp: lift them so the fuzz reaches the validation.
  env: { RESET_MAX_PER_EMAIL: '1000000000', RESET_MAX_PER_IP: '1000000000' },
})

const protoBefore = {
  object: Object.getOwnPropertyNames(Object.prototype).sort().join(','),
  array: Object.getOwnPropertyNames(Array.prototype).sort().join(','),
  func: Object.getOwnPropertyNames(Function.prototype).sort().join(','),
}

let attacks = 0

/** A brand new account with a live session: destructive routes (logout-all, password) never leave later cases without one. */
async function freshAccount (app: FastifyInstance): Promise<TokenPair & { email: string, password: string }> {
  return register(app, uniqueEmail('fuzz'), PASSWORD, 'fuzz device')
}

const standing = await freshAccount(app)

async function send (attack: Attack): Promise<LightMyRequestResponse> {
  attacks++
  return app.inject({
    method: attack.method,
    url: attack.url,
    headers: attack.headers,
    ...(attack.payload !== undefined && { payload: attack.payload }),
  })
}

async function runAttack (route: Route, mode: AuthMode, spec: AttackSpec): Promise<void> {
  const account = mode === 'valid' || spec.realCreds ? await freshAccount(app) : undefined
  const creds: Record<string, string> = !spec.realCreds || account === undefined
    ? {}
    : route.path === '/auth/refresh' ? { refreshToken: account.refreshToken }
      : route.path === '/auth/password' ? { currentPassword: account.password, newPassword: 'a brand new passphrase' }
        : route.path === '/auth/password/forgot' ? { email: account.email }
          : route.path === '/auth/password/reset' ? { token: `${randomUUID()}.${'A'.repeat(43)}`, newPassword: 'a brand new passphrase' }
            : route.path === '/auth/register' ? { email: uniqueEmail('fuzz-new'), password: PASSWORD }
              : { email: account.email, password: account.password }
  const headers: Record<string, string> = { ...spec.extra }
  if (mode === 'valid') headers.authorization = `Bearer ${account!.accessToken}`
  if (mode === 'garbage') headers.authorization = garbageAuthorization(spec.auth, standing.accessToken)
  const payload = bodyText(spec.body, route, creds)
  if (payload !== undefined && spec.contentType !== undefined) headers['content-type'] = spec.contentType
  if (payload !== undefined && spec.lyingLength !== undefined) headers['content-length'] = String(spec.lyingLength)
  const attack: Attack = { method: route.method, url: urlOf(route, spec.path, account?.sessionId), headers, ...(payload !== undefined && { payload }) }
  const res = await send(attack)
  statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1)
  const problems = problemsOf(res, attack, route)
  // A live token of a fresh account must get past authentication, whatever else is wrong with the request.
  if (mode === 'valid' && route.bearer && /"code":"(invalid_token|token_revoked)"/.test(res.body)) problems.push('a valid bearer token was refused')
  if (problems.length > 0) {
    throw new Error(`${routeName(route)} [${mode}] → ${res.statusCode} ${res.body.slice(0, 300)}\n  ${problems.join('\n  ')}\n  request: ${describe(attack)}`)
  }
}

/** Statuses seen by the current generated run (printed per route and mode, to show how deep the inputs got). */
const statuses = new Map<number, number>()

async function fuzzRoute (t: Test, route: Route, mode: AuthMode): Promise<void> {
  statuses.clear()
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
  t.comment(`${routeName(route)} [${mode}] statuses: ${[...statuses].sort(([a], [b]) => a - b).map(([status, n]) => `${status}×${n}`).join(' ')}`)
}

t.test('generated requests against every route, unauthenticated, with garbage and with a valid token', async (t) => {
  for (const route of ROUTES) {
    for (const mode of ['none', 'garbage', 'valid'] as const) {
      await fuzzRoute(t, route, mode)
    }
  }
})

/** Deterministic attacks for one route and auth mode: every one is checked like the generated ones, some more strictly. */
async function fixedAttack (t: Test, route: Route, mode: 'none' | 'valid', name: string, payload: string | undefined,
  contentType = 'application/json', url?: string): Promise<LightMyRequestResponse> {
  const account = mode !== 'valid' ? undefined : DESTRUCTIVE.has(route.path) ? await freshAccount(app) : reader
  const headers: Record<string, string> = {}
  if (account) headers.authorization = `Bearer ${account.accessToken}`
  if (payload !== undefined) headers['content-type'] = contentType
  const attack: Attack = {
    method: route.method,
    url: url ?? route.path.replace(':id', account?.sessionId ?? randomUUID()),
    headers,
    ...(payload !== undefined && { payload }),
  }
  const res = await send(attack)
  const problems = problemsOf(res, attack, route)
  t.same(problems, [], `${routeName(route)} [${mode}] ${name}: ${res.statusCode}${problems.length > 0 ? ` ${res.body.slice(0, 200)} ${describe(attack)}` : ''}`)
  return res
}

/** Routes after which the caller's token may be dead: they get a fresh account each time; the others share one. */
const DESTRUCTIVE = new Set(['/auth/logout', '/auth/logout-all', '/auth/password', '/auth/sessions/revoke-others', '/auth/sessions/:id'])
const reader = await freshAccount(app)

/** Does the route parse a body (POST/DELETE) and get as far as parsing it in this mode? */
const parsesBody = (route: Route, mode: 'none' | 'valid') =>
  route.method !== 'GET' && (route.bearer ? mode === 'valid' : !(route.client === true && mode === 'valid'))

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
      await fixedAttack(t, route, mode, 'over-limit text/plain', 'x'.repeat(BODY_LIMIT + 1), 'text/plain')
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
        if (parsesBody(route, mode) && route.fields.length > 0) t.equal(res.statusCode, 400, `${routeName(route)} [${mode}] ${name} is refused`)
      }
    }
  }
})

t.test('odd session ids on DELETE /auth/sessions/:id never reach anyone else\'s session', async (t) => {
  const route = ROUTES.find((r) => r.path.includes(':id'))!
  const victim = await freshAccount(app)
  for (const id of [...SESSION_IDS, victim.sessionId, victim.sessionId.toUpperCase(), `${victim.sessionId}%00`, `${victim.sessionId}%2F..`, ` ${victim.sessionId}`]) {
    for (const mode of ['none', 'valid'] as const) {
      await fixedAttack(t, route, mode, `id ${id.slice(0, 40)}`, undefined, undefined, `/auth/sessions/${id}`)
    }
  }
  const still = await app.inject({ method: 'GET', url: '/auth/me', headers: { authorization: `Bearer ${victim.accessToken}` } })
  t.equal(still.statusCode, 200, 'the victim\'s session survived every attempt')
})

t.test('NUL bytes, lone surrogates and odd unicode in otherwise valid requests', async (t) => {
  // Each field of an otherwise valid body is replaced in turn, so the odd value gets as deep as it can.
  const odd = {
    email: (email: string) => [`nul\u0000${email}`, `${email}\u0000`, `\uD800${email}`, `\u202E${email}`, `${email.split('@')[0]}@exa\u0000mple.com`, `ｕｓｅｒ${email}`],
    password: (password: string) => [`${password}\u0000`, '\u0000'.repeat(8), '\uD800'.repeat(8), `\uFEFF${password}`, '\u0301'.repeat(8)],
    deviceName: () => ['dev\u0000ice', '\u0000', '\uD800', '\u202Eecived', '👍'.repeat(50)],
    token: (token: string) => [`${token}\u0000`, `${token.slice(0, -1)}\u0000`, token.replace('.', '\u0000'), `${token.slice(0, -1)}\uD800`],
  }
  let cases = 0
  for (const route of ROUTES.filter((r) => r.fields.length > 0)) {
    const account = await freshAccount(app)
    const base: Record<string, string> = {
      '/auth/register': { email: uniqueEmail('nul'), password: PASSWORD, deviceName: 'device' },
      '/auth/login': { email: account.email, password: account.password, deviceName: 'device' },
      '/auth/refresh': { refreshToken: account.refreshToken },
      '/auth/password': { currentPassword: account.password, newPassword: 'another long passphrase' },
      '/auth/password/forgot': { email: account.email },
      '/auth/password/reset': { token: `${randomUUID()}.${'A'.repeat(43)}`, newPassword: 'another long passphrase', deviceName: 'device' },
      '/auth/revoke': { token: account.refreshToken, token_type_hint: 'refresh_token', client_id: 'vouch' },
    }[route.path] as Record<string, string>
    for (const field of route.fields) {
      const values = field === 'email' ? odd.email(base[field]!)
        : field === 'deviceName' ? odd.deviceName()
          : field === 'refreshToken' || field === 'token' ? odd.token(base[field]!)
            : odd.password(base[field]!)
      for (const value of values) {
        cases++
        const mode = route.bearer ? 'valid' : 'none'
        const fresh = route.bearer ? await freshAccount(app) : undefined
        const body = { ...base, ...(fresh && route.path === '/auth/password' && { currentPassword: fresh.password }), [field]: value }
        const attack: Attack = {
          method: route.method, url: route.path, payload: JSON.stringify(body),
          headers: { 'content-type': 'application/json', ...(fresh && { authorization: `Bearer ${fresh.accessToken}` }) },
        }
        const res = await send(attack)
        const problems = problemsOf(res, attack, route)
        t.same(problems, [], `${routeName(route)} [${mode}] ${field} = ${JSON.stringify(value).slice(0, 60)}: ${res.statusCode}${problems.length > 0 ? ` ${res.body.slice(0, 200)}` : ''}`)
      }
    }
  }
  // The same in the path parameter and a header that reaches the database (user-agent is stored with the session).
  const route = ROUTES.find((r) => r.path.includes(':id'))!
  const account = await freshAccount(app)
  for (const id of ['%00', `${account.sessionId}%00`, `%00${account.sessionId}`, '%ED%A0%80', `${account.sessionId.slice(0, -1)}%C3%A9`]) {
    cases++
    await fixedAttack(t, route, 'valid', `id ${id}`, undefined, undefined, `/auth/sessions/${id}`)
  }
  for (const userAgent of ['ua\u00ff\u00fe', 'x'.repeat(600)]) {
    cases++
    const attack: Attack = { method: 'POST', url: '/auth/login', payload: JSON.stringify({ email: account.email, password: account.password }), headers: { 'content-type': 'application/json', 'user-agent': userAgent } }
    const res = await send(attack)
    t.same(problemsOf(res, attack, ROUTES[1]), [], `login with user-agent ${JSON.stringify(userAgent.slice(0, 20))}: ${res.statusCode}`)
  }
  t.comment(`${cases} requests with odd characters in otherwise valid requests`)
})

t.test('malformed percent-encoding and over-long path parameters get the catalogue\'s error shape', async (t) => {
  // One malformed escape after every route's path...
  for (const route of ROUTES) {
    const url = route.path.includes(':id') ? route.path.replace(':id', '%ZZ') : `${route.path}%ZZ`
    await fixedAttack(t, route, 'none', `url ${url}`, undefined, undefined, url)
  }
  // ...and several in the one path parameter, with and without a valid token.
  const route = ROUTES.find((r) => r.path.includes(':id'))!
  for (const bad of ['%', '%ZZ', '%E0%A4%A', '%C0%AE']) {
    for (const mode of ['none', 'valid'] as const) {
      await fixedAttack(t, route, mode, `id ${bad}`, undefined, undefined, `/auth/sessions/${bad}`)
    }
  }
  for (const length of [64, 65, 100, 101, 5_000]) {
    for (const mode of ['none', 'valid'] as const) {
      const res = await fixedAttack(t, route, mode, `a ${length}-character id`, undefined, undefined, `/auth/sessions/${'x'.repeat(length)}`)
      if (mode === 'valid' && length > 64) t.equal(res.statusCode, 400, `a ${length}-character id is validation_failed`)
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
  const account = await freshAccount(app)
  const res = await app.inject({ method: 'GET', url: '/auth/me', headers: { authorization: `Bearer ${account.accessToken}` } })
  t.equal(res.statusCode, 200)
  t.equal(res.json().email, account.email)
  t.notOk('polluted' in res.json(), 'no polluted property in a profile')
  t.equal((await app.inject({ method: 'GET', url: '/health/ready' })).statusCode, 200)
  t.comment(`input-fuzz: ${attacks} attack cases tried`)
})
