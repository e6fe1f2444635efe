/**
 * loadConfig (src/config.ts): defaults that let a fresh checkout run, a
 * deeply frozen result, a ConfigError naming the variable for every bad
 * value, and every variable it reads documented in .env.example.
 */
import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { ConfigError, OWASP_ARGON2_MINIMUM, configWarnings, loadConfig } from '../src/config.js'
import { defaultMaxConnections, openFileLimit } from '../src/http/connections.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))

function thrownBy (fn: () => unknown): unknown {
  try {
    fn()
  } catch (err) {
    return err
  }
  return undefined
}

t.test('with no configuration at all, the defaults are those of a fresh local checkout', async (t) => {
  const config = loadConfig({})
  t.equal(config.port, 3000)
  t.equal(config.host, '127.0.0.1')
  t.equal(config.logLevel, 'info')
  t.equal(config.trustProxy, false)
  t.equal(config.databaseUrl, 'file:./data/vouch.db')
  t.equal(config.dataDir, './data')
  t.equal(config.tokens.algorithm, 'EdDSA')
  t.equal(config.tokens.accessTokenTtl, 900, '15 minutes')
  t.equal(config.tokens.clockSkew, 5)
  t.equal(config.tokens.signingKeys, undefined, 'a key is generated')
  t.equal(config.tokens.refreshTokenSecret, undefined, 'a secret is generated')
  t.equal(config.tokens.issuer, 'http://127.0.0.1:3000', 'where vouch serves (HOST:PORT)')
  t.equal(config.publicUrl, 'http://127.0.0.1:3000')
  t.equal(config.mail.resetUrl, 'http://127.0.0.1:3000/account/reset-password')
  t.equal(config.tokens.audience, 'vouch')
  t.equal(config.tokens.clientId, 'vouch')
  t.equal(config.sessions.lifetime, 1_209_600, '14 days')
  t.equal(config.sessions.reuseGraceWindow, 10)
  t.same(config.passwords.argon2, OWASP_ARGON2_MINIMUM)
  t.same(OWASP_ARGON2_MINIMUM, { memoryCost: 19_456, timeCost: 2, parallelism: 1 }, 'm = 19 MiB, t = 2, p = 1')
  t.equal(config.passwords.minLength, 8)
  t.equal(config.passwords.maxLength, 256)
  t.equal(config.redisCommandTimeout, 50, 'a hung Redis costs a request at most 50 ms')
  t.same(config.connections, {
    headersTimeout: 10_000, requestTimeout: 10_000, keepAliveTimeout: 5000, idleTimeout: 30_000, maxConnections: defaultMaxConnections(openFileLimit()),
  }, 'slow clients are timed out, and connections capped below the open-file limit')
  t.same(config.rateLimits.clients, { perClientAndIp: 10, perClient: 100, window: 900 }, 'client secrets: 10 failures per client and IP, 100 per client, per 15 min')
  t.equal(config.resourceClients.size, 0)
})

t.test('empty and blank values count as unset', async (t) => {
  const config = loadConfig({ PORT: '', HOST: '   ', SIGNING_ALG: '', ACCESS_TOKEN_TTL: ' ' })
  t.equal(config.port, 3000)
  t.equal(config.host, '127.0.0.1')
  t.equal(config.tokens.algorithm, 'EdDSA')
  t.equal(config.tokens.accessTokenTtl, 900)
})

t.test('valid values are taken', async (t) => {
  const secret = Buffer.alloc(32, 1).toString('base64url')
  const config = loadConfig({
    PORT: '8080', HOST: '0.0.0.0', SIGNING_ALG: 'ES256', ACCESS_TOKEN_TTL: '300', SESSION_LIFETIME: '86400',
    REFRESH_REUSE_GRACE: '0', ARGON2_MEMORY_KIB: '65536', ARGON2_TIME_COST: '3', LOG_LEVEL: 'warn',
    DATABASE_URL: 'file:/var/lib/vouch/db.sqlite', JWT_ISSUER: 'https://auth.example.com', JWT_AUDIENCE: 'api',
    REFRESH_TOKEN_SECRET: secret, TRUST_PROXY: '10.0.0.0/8, 127.0.0.1',
  })
  t.match(config, {
    port: 8080, host: '0.0.0.0', logLevel: 'warn', databaseUrl: 'file:/var/lib/vouch/db.sqlite',
    trustProxy: '10.0.0.0/8, 127.0.0.1',
    tokens: { algorithm: 'ES256', accessTokenTtl: 300, issuer: 'https://auth.example.com', audience: 'api', refreshTokenSecret: secret },
    sessions: { lifetime: 86_400, reuseGraceWindow: 0 },
    passwords: { argon2: { memoryCost: 65_536, timeCost: 3, parallelism: 1 } },
  })
  t.equal(loadConfig({ TRUST_PROXY: 'true' }).trustProxy, true)
  t.equal(loadConfig({ TRUST_PROXY: '2' }).trustProxy, 2)
})

t.test("the revocation feed's overlap covers the longest a write can wait, unless set", async (t) => {
  t.equal(loadConfig({}).feedOverlap, 5000 + 5000 + 2000, 'connection wait + statement timeout + clock skew')
  t.equal(loadConfig({ DB_CONNECT_TIMEOUT_MS: '1000', DB_STATEMENT_TIMEOUT_MS: '30000' }).feedOverlap, 33_000)
  t.equal(loadConfig({ REVOCATION_FEED_OVERLAP_MS: '60000' }).feedOverlap, 60_000)
})

t.test('revocation-feed streams are capped at half the connection cap, unless set below it', async (t) => {
  const config = loadConfig({})
  t.equal(config.feedMaxStreams, Math.floor(config.connections.maxConnections / 2), 'half the connections: the rest stay for sign-ins')
  t.equal(loadConfig({ HTTP_MAX_CONNECTIONS: '101' }).feedMaxStreams, 50)
  t.equal(loadConfig({ HTTP_MAX_CONNECTIONS: '1' }).feedMaxStreams, 1, 'at least one')
  t.equal(loadConfig({ HTTP_MAX_CONNECTIONS: '2000', REVOCATION_FEED_MAX_STREAMS: '1500' }).feedMaxStreams, 1500)
  const err = thrownBy(() => loadConfig({ HTTP_MAX_CONNECTIONS: '100', REVOCATION_FEED_MAX_STREAMS: '100' })) as ConfigError
  t.type(err, ConfigError)
  t.equal(err.variable, 'REVOCATION_FEED_MAX_STREAMS')
  t.match(err.message, /must be below HTTP_MAX_CONNECTIONS \(100\)/)
})

t.test('session-watch streams are capped at a quarter of the connection cap, apart from the feed, unless set below it', async (t) => {
  t.equal(loadConfig({ HTTP_MAX_CONNECTIONS: '101' }).sessionWatchMaxStreams, 25)
  t.equal(loadConfig({ HTTP_MAX_CONNECTIONS: '1' }).sessionWatchMaxStreams, 1, 'at least one')
  t.equal(loadConfig({ HTTP_MAX_CONNECTIONS: '2000', SESSION_WATCH_MAX_STREAMS: '1500' }).sessionWatchMaxStreams, 1500)
  const err = thrownBy(() => loadConfig({ HTTP_MAX_CONNECTIONS: '100', SESSION_WATCH_MAX_STREAMS: '100' })) as ConfigError
  t.equal(err.variable, 'SESSION_WATCH_MAX_STREAMS')
  t.match(err.message, /must be below HTTP_MAX_CONNECTIONS \(100\)/)
})

t.test('with JWT_ISSUER unset, the issuer is PUBLIC_URL, or where vouch listens (localhost for a wildcard address)', async (t) => {
  const issuer = (env: Record<string, string>) => loadConfig(env).tokens.issuer
  t.equal(issuer({ PUBLIC_URL: 'https://auth.example.com/' }), 'https://auth.example.com', 'without the trailing slash')
  t.equal(issuer({ PUBLIC_URL: 'https://Example.com:443/auth/' }), 'https://example.com/auth', 'normalised, with a path prefix')
  t.equal(issuer({ HOST: '10.1.2.3', PORT: '8080' }), 'http://10.1.2.3:8080')
  t.equal(issuer({ HOST: '0.0.0.0', PORT: '8080' }), 'http://localhost:8080', '0.0.0.0 is no address a client can use')
  t.equal(issuer({ HOST: '::', PORT: '8080' }), 'http://localhost:8080', 'nor is ::')
  t.equal(issuer({ HOST: '::1', PORT: '8080' }), 'http://[::1]:8080')
  t.equal(issuer({ HOST: 'auth.internal', PORT: '80' }), 'http://auth.internal', 'the default port left out')
  t.equal(issuer({ JWT_ISSUER: 'https://id.example.com/', PUBLIC_URL: 'https://auth.example.com' }), 'https://id.example.com/', 'JWT_ISSUER is taken as it is')

  const both = loadConfig({ PUBLIC_URL: 'https://auth.example.com', RESET_URL: 'https://app.example.com/reset' })
  t.equal(both.mail.resetUrl, 'https://app.example.com/reset', 'RESET_URL still wins')
  t.equal(loadConfig({ PUBLIC_URL: 'https://auth.example.com' }).mail.resetUrl, 'https://auth.example.com/account/reset-password')
  t.equal(loadConfig({ JWT_ISSUER: 'https://id.example.com' }).publicUrl, 'https://id.example.com', 'the URLs follow an http(s) JWT_ISSUER')
  t.equal(loadConfig({ JWT_ISSUER: 'urn:example:vouch', PORT: '4000' }).publicUrl, 'http://127.0.0.1:4000', 'but not a URN')
  t.equal(loadConfig({ JWT_CLIENT_ID: 'acme-web' }).tokens.clientId, 'acme-web')

  const err = thrownBy(() => loadConfig({ PORT: '0' })) as ConfigError
  t.type(err, ConfigError, 'PORT=0 alone gives no issuer to derive')
  t.equal(err.variable, 'PUBLIC_URL')
  t.match(err.message, /^PUBLIC_URL: PORT=0 .*set PUBLIC_URL/)
  t.equal(loadConfig({ PORT: '0', PUBLIC_URL: 'http://127.0.0.1:4000' }).tokens.issuer, 'http://127.0.0.1:4000')
})

t.test('an issuer derived from a non-loopback HOST is warned about at start-up: production must set PUBLIC_URL', async (t) => {
  for (const host of ['0.0.0.0', '::', '10.1.2.3']) {
    const warnings = configWarnings(loadConfig({ HOST: host }))
    t.equal(warnings.length, 1, `HOST=${host}: one warning`)
    t.match(warnings[0], /^Neither PUBLIC_URL nor JWT_ISSUER is set: vouch signs tokens as issuer http:\/\/.*a production deployment must set PUBLIC_URL/)
  }
  for (const env of [{ HOST: '0.0.0.0', PUBLIC_URL: 'https://auth.example.com' }, { HOST: '0.0.0.0', JWT_ISSUER: 'https://auth.example.com' }, { HOST: 'localhost' }, { HOST: '::1' }]) {
    t.same(configWarnings(loadConfig(env)), [], `${JSON.stringify(env)}: no warning`)
  }
})

t.test('cookie mode over plain http on another host, and the reset page turned off under the default RESET_URL, are warned about', async (t) => {
  for (const env of [{ PUBLIC_URL: 'http://auth.internal:3000' }, { PUBLIC_URL: 'http://10.1.2.3', ACCOUNT_PAGE: 'false', COOKIE_ORIGINS: 'http://app.internal' }]) {
    const warnings = configWarnings(loadConfig({ ...env, RESET_URL: 'https://app.example.com/reset' }))
    t.equal(warnings.length, 1, `${JSON.stringify(env)}: one warning`)
    t.match(warnings[0], /^PUBLIC_URL=http:\/\/\S+ is plain http .*browsers drop the Secure refresh cookie/)
  }
  for (const env of [
    { PUBLIC_URL: 'https://auth.example.com' }, { PUBLIC_URL: 'http://127.0.0.1:3000' }, { PUBLIC_URL: 'http://localhost:3000' },
    { PUBLIC_URL: 'http://auth.internal:3000', COOKIE_SECURE: 'false' }, { PUBLIC_URL: 'http://auth.internal:3000', ACCOUNT_PAGE: 'false' },
  ]) {
    t.same(configWarnings(loadConfig({ ...env, RESET_URL: 'https://app.example.com/reset' })), [], `${JSON.stringify(env)}: no warning`)
  }

  const warnings = configWarnings(loadConfig({ ACCOUNT_PAGE: 'false' }))
  t.equal(warnings.length, 1, 'ACCOUNT_PAGE=false with the default RESET_URL: one warning')
  t.match(warnings[0], /^ACCOUNT_PAGE=false turns off the reset page that RESET_URL points to by default/)
  t.same(configWarnings(loadConfig({ ACCOUNT_PAGE: 'false', RESET_URL: 'https://app.example.com/reset' })), [], 'with a RESET_URL of its own: none')
})

t.test('the connection cap defaults to the open-file limit less 256 (half of a small one), at most 4096', async (t) => {
  t.equal(defaultMaxConnections(1024), 768)
  t.equal(defaultMaxConnections(256), 128)
  t.equal(defaultMaxConnections(1_048_576), 4096)
  t.equal(defaultMaxConnections(undefined), 4096, 'where the limit cannot be read')
  if (process.platform === 'linux') {
    const limit = openFileLimit()
    t.type(limit, 'number', 'read from /proc/self/limits')
    t.ok(loadConfig({}).connections.maxConnections < limit!, 'below this process\'s limit')
  }
  t.equal(loadConfig({ HTTP_MAX_CONNECTIONS: '100' }).connections.maxConnections, 100)
})

t.test('TRUST_PROXY=true (or a proxy list of every address) is warned about at start-up; a hop count or proxy addresses are not', async (t) => {
  for (const value of ['true', '0.0.0.0/0', '10.0.0.1, ::/0']) {
    const warnings = configWarnings(loadConfig({ TRUST_PROXY: value }))
    t.equal(warnings.length, 1, `TRUST_PROXY=${value}: one warning`)
    t.match(warnings[0], /^TRUST_PROXY=.* trusts any X-Forwarded-For header/)
  }
  for (const value of ['false', '1', '2', '10.0.0.0/8, 127.0.0.1', '::1']) {
    t.same(configWarnings(loadConfig({ TRUST_PROXY: value })), [], `TRUST_PROXY=${value}: no warning`)
  }
  t.same(configWarnings(loadConfig({})), [], 'the defaults warrant no warning')
})

t.test('the configuration is deeply frozen', async (t) => {
  const config = loadConfig({})
  const unfrozen: string[] = []
  const walk = (value: unknown, where: string): void => {
    if (value === null || typeof value !== 'object') return
    if (!Object.isFrozen(value)) unfrozen.push(where)
    for (const [name, child] of Object.entries(value)) walk(child, `${where}.${name}`)
  }
  walk(config, 'config')
  t.same(unfrozen, [], 'every object in the tree is frozen')
  t.throws(() => { (config as { port: number }).port = 1 }, TypeError)
  t.throws(() => { (config.passwords.argon2 as { memoryCost: number }).memoryCost = 1 }, TypeError)
  t.throws(() => { (config.tokens as { algorithm: string }).algorithm = 'none' }, TypeError)
  t.equal(config.passwords.argon2.memoryCost, OWASP_ARGON2_MINIMUM.memoryCost)
  t.ok(Object.isFrozen(OWASP_ARGON2_MINIMUM))
})

t.test('each bad value stops start-up with a ConfigError naming the variable', async (t) => {
  const bad: Array<[string, string]> = [
    ['PORT', 'abc'],
    ['PORT', '70000'],
    ['PORT', '-1'],
    ['PORT', '3000.5'],
    ['SIGNING_ALG', 'HS256'],
    ['SIGNING_ALG', 'none'],
    ['SIGNING_ALG', 'RS256'],
    ['ARGON2_MEMORY_KIB', String(OWASP_ARGON2_MINIMUM.memoryCost - 1)],
    ['ARGON2_MEMORY_KIB', '1024'],
    ['ARGON2_TIME_COST', '1'],
    ['ARGON2_PARALLELISM', '0'],
    ['ACCESS_TOKEN_TTL', '0'],
    ['ACCESS_TOKEN_TTL', '15m'],
    ['CLOCK_SKEW', '3600'],
    ['SESSION_LIFETIME', '10'],
    ['REFRESH_REUSE_GRACE', 'soon'],
    ['PASSWORD_MIN_LENGTH', '4'],
    ['LOG_LEVEL', 'loud'],
    ['DATABASE_URL', 'mysql://x'],
    ['DATABASE_URL', 'file:'],
    ['JWT_ISSUER', 'not a url'],
    ['PUBLIC_URL', 'auth.example.com'],
    ['PUBLIC_URL', 'ftp://auth.example.com'],
    ['PUBLIC_URL', 'https://auth.example.com/?tenant=1'],
    ['PUBLIC_URL', 'https://auth.example.com/#top'],
    ['PUBLIC_URL', 'https://user:pass@auth.example.com'],
    ['JWT_CLIENT_ID', 'caf\u00e9'],
    ['JWT_CLIENT_ID', 'x'.repeat(256)],
    ['REFRESH_TOKEN_SECRET', 'short'],
    ['REFRESH_TOKEN_SECRET', `${Buffer.alloc(32, 1).toString('base64')}+/`],
    ['TRUST_PROXY', 'bogus'],
    ['REDIS_COMMAND_TIMEOUT_MS', '10'],
    ['REDIS_COMMAND_TIMEOUT_MS', '0.5s'],
    ['RESOURCE_CLIENTS', 'orders:orders-secret-0123456789'],
    ['RESOURCE_CLIENTS', `orders:${'a'.repeat(64)}`],
    ['RESOURCE_CLIENTS', `orders:${'abcd'.repeat(16)}`],
    ['RESOURCE_CLIENTS', `orders:${'1234567890'.repeat(3)}98`],
    ['RESOURCE_CLIENTS', 'no-secret'],
    ['RESOURCE_CLIENTS', `bad id:${'x'.repeat(32)}`],
    ['CLIENT_AUTH_MAX_FAILURES', '0'],
    ['CLIENT_AUTH_MAX_CLIENT_FAILURES', 'many'],
    ['CLIENT_AUTH_FAILURE_WINDOW', '90000'],
    ['HTTP_REQUEST_TIMEOUT_MS', '0'],
    ['HTTP_HEADERS_TIMEOUT_MS', '20000'],
    ['HTTP_KEEP_ALIVE_TIMEOUT_MS', 'five'],
    ['HTTP_IDLE_TIMEOUT_MS', '5000'],
    ['HTTP_MAX_CONNECTIONS', '0'],
    ['REVOCATION_FEED_OVERLAP_MS', '-1'],
    ['REVOCATION_FEED_MAX_STREAMS', '0'],
    ['REVOCATION_FEED_MAX_STREAMS', 'lots'],
    ['REVOCATION_FEED_MAX_STREAMS', '5000'],
  ]
  for (const [variable, value] of bad) {
    const err = thrownBy(() => loadConfig({ [variable]: value }))
    t.type(err, ConfigError, `${variable}=${value} throws a ConfigError`)
    t.equal((err as ConfigError | undefined)?.variable, variable, `${variable}=${value}: the error is about ${variable}`)
    t.match((err as Error | undefined)?.message, new RegExp(`^${variable}\\b`), `${variable}=${value}: the message names ${variable}`)
  }
})

t.test('resource-server client secrets must be long and random-looking; the refusal names the client, never the secret', async (t) => {
  const hex = '3f9a6c0e8b2d4f17a5c3e9b0d6f2a8c4'
  const base64 = 'Qyc49k2XzTupJFeqVpsMEwiwldwH1m8tSUFhab5T7wQ='
  const config = loadConfig({ RESOURCE_CLIENTS: `orders:${hex}, billing:${base64}`, CLIENT_AUTH_MAX_FAILURES: '3', CLIENT_AUTH_MAX_CLIENT_FAILURES: '30', CLIENT_AUTH_FAILURE_WINDOW: '60' })
  t.same([...config.resourceClients], [['orders', hex], ['billing', base64]], 'openssl rand -hex 16 (128 bits) and -base64 32 (256 bits) are accepted')
  t.same(config.rateLimits.clients, { perClientAndIp: 3, perClient: 30, window: 60 })
  t.ok(loadConfig({ RESOURCE_CLIENTS: `orders:${'1234567890'.repeat(4)}` }), '40 random-looking digits (133 bits) pass')

  const weak = 'hunter2hunter2hunter2hunter2hunter2'
  const err = thrownBy(() => loadConfig({ RESOURCE_CLIENTS: `orders:${hex},billing:${weak}` })) as Error
  t.type(err, ConfigError)
  t.match(err.message, /^RESOURCE_CLIENTS: the secret of client "billing" is too weak \(fewer than 8 distinct characters\).*openssl rand/)
  t.notOk(err.message.includes(weak), 'the message does not repeat the secret')
  t.match((thrownBy(() => loadConfig({ RESOURCE_CLIENTS: 'orders:short-secret' })) as Error).message, /12 characters, fewer than 32/)
  t.match((thrownBy(() => loadConfig({ RESOURCE_CLIENTS: `orders:${'1234567890'.repeat(3)}98` })) as Error).message, /about 106 bits, fewer than 128/)
})

t.test('every variable loadConfig reads is documented in .env.example', async (t) => {
  const source = await readFile(`${ROOT}src/config.ts`, 'utf8')
  // read('X'), int('X', ...), oneOf('X', ...), oneOf<T>('X', ...), url('X', ...), secret('X')
  const names = [...new Set([...source.matchAll(/\b(?:read|int|oneOf|url|secret)(?:<[^>(]*>)?\('([A-Z][A-Z0-9_]*)'/g)].map((match) => match[1]!))]
  t.ok(names.length >= 15, `found the variables in src/config.ts (${names.length})`)
  for (const known of ['PORT', 'HOST', 'DATABASE_URL', 'SIGNING_ALG', 'SIGNING_KEYS', 'TRUST_PROXY', 'REFRESH_TOKEN_SECRET']) {
    t.ok(names.includes(known), `the extraction finds ${known}`)
  }

  let example: string
  try {
    example = await readFile(`${ROOT}.env.example`, 'utf8')
  } catch (err) {
    t.fail(`.env.example cannot be read: ${(err as Error).message}`)
    return
  }
  for (const name of names) {
    // Documented as an assignment, commented out or not: `NAME=...` or `# NAME=...`.
    t.match(example, new RegExp(`^[#\\s]*${name}=`, 'm'), `${name} is in .env.example`)
  }
})

t.test('VOUCH_MASTER_KEY: a short or non-base64url value stops the start; PostgreSQL without it warns, naming the variable', async (t) => {
  for (const bad of ['short', 'not base64url!'.repeat(4)]) {
    const err = thrownBy(() => loadConfig({ VOUCH_MASTER_KEY: bad })) as Error
    t.type(err, ConfigError)
    t.match(err.message, /^VOUCH_MASTER_KEY: /)
  }
  const postgres = { DATABASE_URL: 'postgresql://vouch@127.0.0.1:5432/vouch' }
  t.match(configWarnings(loadConfig(postgres)).join('\n'), /VOUCH_MASTER_KEY is not set/)
  t.notMatch(configWarnings(loadConfig({ ...postgres, VOUCH_MASTER_KEY: 'a'.repeat(43) })).join('\n'), /VOUCH_MASTER_KEY/)
  t.notMatch(configWarnings(loadConfig({})).join('\n'), /VOUCH_MASTER_KEY/, 'the embedded default needs no master key')
})
