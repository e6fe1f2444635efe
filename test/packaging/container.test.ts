/**
 * The container recipe (Dockerfile, .dockerignore, compose.yaml) without a
 * container engine, which CI does not have: the files are parsed and held to
 * what the image needs (pinned bases, a non-root user, no dev dependencies,
 * the health check, the entry point), every path they name is checked
 * against the repository and against the paths the server reads at run time
 * (so that a renamed folder fails here, not in someone's docker build), and
 * the image's CMD and HEALTHCHECK are run against the built dist/.
 */
import { execFile, spawn } from 'node:child_process'
import { existsSync, realpathSync, statSync } from 'node:fs'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { parse as parseYaml } from 'yaml'
import { prismaDir } from '../../src/db/schema.js'
import { PAGE_ROOT, SDK_ROOT } from '../../src/http/routes/account-page.js'
import { DEFAULT_RESET_TEMPLATE } from '../../src/mail/reset-mail.js'
import { DEFAULT_NEW_DEVICE_TEMPLATE } from '../../src/mail/new-device-mail.js'
import { freePort, root } from '../helpers/process.js'

interface Instruction { keyword: string, args: string, line: number }
interface Stage { image: string, name: string | undefined, instructions: Instruction[] }

/** Dockerfile instructions by stage: comments dropped, continuation lines joined. */
function parseDockerfile (text: string): Stage[] {
  const stages: Stage[] = []
  let pending = ''
  let startLine = 0
  const lines = text.split('\n')
  for (const [index, raw] of lines.entries()) {
    const line = raw.trim()
    if (line.startsWith('#') || (line === '' && pending === '')) continue
    if (pending === '') startLine = index + 1
    const continued = line.endsWith('\\')
    pending += (pending === '' ? '' : ' ') + (continued ? line.slice(0, -1).trim() : line)
    if (continued && index < lines.length - 1) continue
    const [keyword = '', ...rest] = pending.split(/\s+/)
    const instruction = { keyword: keyword.toUpperCase(), args: rest.join(' '), line: startLine }
    pending = ''
    if (instruction.keyword === 'FROM') {
      const [image = '', as, name] = rest.filter((word) => !word.startsWith('--'))
      stages.push({ image, name: as?.toUpperCase() === 'AS' ? name : undefined, instructions: [] })
    } else if (stages.length === 0) {
      if (instruction.keyword !== 'ARG') throw new Error(`line ${startLine}: ${instruction.keyword} before the first FROM`)
    } else {
      stages.at(-1)!.instructions.push(instruction)
    }
  }
  return stages
}

/** The `--flag=value` options and the remaining words of a COPY, RUN or HEALTHCHECK. */
function options (args: string): { flags: Map<string, string>, rest: string } {
  const flags = new Map<string, string>()
  let rest = args
  for (let match = /^--([\w-]+)=(\S+)\s*/.exec(rest); match; match = /^--([\w-]+)=(\S+)\s*/.exec(rest)) {
    flags.set(match[1]!, match[2]!)
    rest = rest.slice(match[0].length)
  }
  return { flags, rest }
}

/** An exec-form array (JSON), or undefined for the shell form. */
function execForm (args: string): string[] | undefined {
  return args.startsWith('[') ? JSON.parse(args) as string[] : undefined
}

/** ENV key=value pairs (the only form the recipe uses). */
function envOf (stage: Stage): Record<string, string> {
  const env: Record<string, string> = {}
  for (const { keyword, args } of stage.instructions) {
    if (keyword !== 'ENV') continue
    for (const pair of args.split(/\s+/)) {
      const equals = pair.indexOf('=')
      if (equals <= 0) throw new Error(`ENV ${args}: expected key=value pairs`)
      env[pair.slice(0, equals)] = pair.slice(equals + 1)
    }
  }
  return env
}

/** A COPY's sources and destination, relative to the context (or the stage's WORKDIR) and to WORKDIR. */
function copiesOf (stage: Stage, workdir: string): Array<{ from: string | undefined, sources: string[], dest: string, intoFolder: boolean, line: number }> {
  return stage.instructions.filter((i) => i.keyword === 'COPY').map(({ args, line }) => {
    const { flags, rest } = options(args)
    const words = execForm(rest) ?? rest.split(/\s+/)
    const from = flags.get('from')
    const strip = (word: string): string => {
      let relative = from === undefined ? word : path.posix.relative(workdir, word)
      if (relative.startsWith('..')) throw new Error(`line ${line}: ${word} is outside ${workdir}`)
      relative = relative.replace(/^\.\/?/, '').replace(/\/$/, '')
      return relative === '' ? '.' : relative
    }
    const dest = words.at(-1)!
    return {
      from,
      sources: words.slice(0, -1).map(strip),
      dest: path.posix.relative(workdir, path.posix.resolve(workdir, dest)) || '.',
      intoFolder: dest.endsWith('/') || words.length > 2,
      line,
    }
  })
}

/** A version tag, not `latest` nor a bare major: `node:20.20.2-bookworm-slim`, `redis:7.4.5`. */
function pinned (image: string): boolean {
  const tag = /^[^@]+?:([^:@/]+)(@sha256:[0-9a-f]{64})?$/.exec(image)?.[1]
  return tag !== undefined && /^\d+\.\d+/.test(tag)
}

function versionAtLeast (version: string, minimum: string): boolean {
  const a = version.split('.').map(Number)
  const b = minimum.split('.').map(Number)
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if ((a[i] ?? 0) !== (b[i] ?? 0)) return (a[i] ?? 0) > (b[i] ?? 0)
  }
  return true
}

/** Docker's .dockerignore matching: a pattern excludes a path when it matches the path or one of its parent folders. */
function ignoredBy (patterns: string[], relative: string): string | undefined {
  const toRegExp = (pattern: string): RegExp => new RegExp('^' + pattern.replace(/^\//, '').replace(/\/$/, '')
    .split(/(\*\*\/|\*\*|\*|\?)/)
    .map((part) => ({ '**/': '(?:.*/)?', '**': '.*', '*': '[^/]*', '?': '[^/]' })[part] ?? part.replace(/[.+^${}()|[\]\\]/g, '\\$&'))
    .join('') + '$')
  const parts = relative.split('/')
  const prefixes = parts.map((_, i) => parts.slice(0, i + 1).join('/'))
  return patterns.find((pattern) => prefixes.some((prefix) => toRegExp(pattern).test(prefix)))
}

const read = (file: string): Promise<string> => readFile(path.join(root, file), 'utf8')
const dockerfile = await read('Dockerfile')
const stages = parseDockerfile(dockerfile)
const final = stages.at(-1)!
const finalEnv = envOf(final)
const workdirOf = (stage: Stage): string => stage.instructions.filter((i) => i.keyword === 'WORKDIR').at(-1)?.args ?? '/'
const pkg = JSON.parse(await read('package.json')) as { engines: { node: string }, scripts: Record<string, string>, version: string }
const ignorePatterns = (await read('.dockerignore')).split('\n').map((line) => line.trim()).filter((line) => line !== '' && !line.startsWith('#'))
const envExample = await read('.env.example')
const documented = (name: string): boolean => new RegExp(`^[#\\s]*${name}=`, 'm').test(envExample)
const healthcheck = final.instructions.find((i) => i.keyword === 'HEALTHCHECK')
const healthcheckCommand = healthcheck === undefined ? undefined : execForm(options(healthcheck.args).rest.replace(/^CMD\s+/, ''))
const cmd = execForm(final.instructions.filter((i) => i.keyword === 'CMD').at(-1)?.args ?? '')

t.test('the Dockerfile builds in one stage and runs in another', async (t) => {
  t.ok(stages.length >= 2, `multi-stage (${stages.length} stages)`)
  for (const stage of stages) {
    if (stages.some((other) => other.name === stage.image)) continue
    t.ok(pinned(stage.image), `${stage.image} is pinned to a version tag (not latest, not a bare major)`)
  }
  const nodeImages = new Set(stages.map((stage) => stage.image).filter((image) => image.startsWith('node:')))
  t.equal(nodeImages.size, 1, 'the build and runtime stages share one Node image, so the native addons built in one run in the other')
  const nodeVersion = /^node:(\d+\.\d+\.\d+)/.exec([...nodeImages][0] ?? '')?.[1]
  const minimum = /^>=\s*([\d.]+)$/.exec(pkg.engines.node)?.[1]
  t.ok(nodeVersion !== undefined && minimum !== undefined && versionAtLeast(nodeVersion, minimum),
    `the image's Node ${nodeVersion} satisfies package.json's engines (${pkg.engines.node})`)
})

t.test('the runtime stage runs as an unprivileged user and holds no dev dependencies', async (t) => {
  const user = final.instructions.filter((i) => i.keyword === 'USER').at(-1)?.args
  t.ok(user !== undefined && !/^(root|0)(:|$)/.test(user), `the final stage runs as a non-root user (${user})`)
  const userAt = final.instructions.findIndex((i) => i.keyword === 'USER')
  const cmdAt = final.instructions.findIndex((i) => i.keyword === 'CMD')
  t.ok(userAt >= 0 && userAt < cmdAt, 'USER comes before CMD')

  const install = /\bnpm\s+(ci|install|i|prune)\b/
  for (const run of final.instructions.filter((i) => i.keyword === 'RUN' && install.test(i.args))) {
    t.match(run.args, /--omit=dev\b/, `line ${run.line}: npm in the final stage omits dev dependencies`)
  }
  const nodeModules = copiesOf(final, workdirOf(final)).filter((copy) => copy.sources.some((source) => source === 'node_modules'))
  t.equal(nodeModules.length, 1, 'node_modules comes from one COPY')
  for (const copy of nodeModules) {
    t.not(copy.from, undefined, 'node_modules is copied from a build stage, never from the context')
    const from = stages.find((stage) => stage.name === copy.from)
    const lastNpm = from?.instructions.filter((i) => i.keyword === 'RUN' && install.test(i.args)).at(-1)
    t.match(lastNpm?.args ?? '', /--omit=dev\b/, `the last npm install or prune of stage ${copy.from} omits dev dependencies`)
  }
})

t.test('the image listens on 3000 on every interface and keeps its data in the /data volume', async (t) => {
  t.ok(final.instructions.some((i) => i.keyword === 'EXPOSE' && i.args.split(/\s+/).includes('3000')), 'EXPOSE 3000')
  t.equal(finalEnv.PORT ?? '3000', '3000', 'PORT matches EXPOSE')
  t.equal(finalEnv.HOST, '0.0.0.0', 'HOST=0.0.0.0: reachable from outside the container')
  t.equal(finalEnv.DATA_DIR, '/data', 'DATA_DIR=/data')
  t.ok(final.instructions.some((i) => i.keyword === 'VOLUME' && i.args.replace(/[[\]"]/g, '').split(/[\s,]+/).includes('/data')), 'VOLUME /data')
  t.match(finalEnv.DATABASE_URL ?? '', /^file:\/data\//, 'the default SQLite database is in the volume (its own default, ./data, is relative to WORKDIR)')
  for (const name of Object.keys(finalEnv).filter((name) => name !== 'NODE_ENV')) {
    t.ok(documented(name), `ENV ${name} is a variable vouch reads (.env.example)`)
  }
})

t.test('the entry point is dist/server.js with the node flags of npm start', async (t) => {
  t.ok(cmd !== undefined, 'CMD in exec form (node is PID 1 and gets SIGTERM itself)')
  const start = pkg.scripts.start!.split(/\s+/)
  t.same(cmd, start, `CMD is npm start's command (${pkg.scripts.start}), without npm in between`)
  t.equal(cmd?.at(-1), 'dist/server.js', 'it runs dist/server.js')
  t.notOk(final.instructions.some((i) => i.keyword === 'ENTRYPOINT'), 'no ENTRYPOINT wraps it')
})

t.test('the health check asks /health/ready, with Node (the slim image has no curl)', async (t) => {
  t.ok(healthcheckCommand, 'HEALTHCHECK CMD in exec form')
  t.equal(healthcheckCommand?.[0], 'node', 'run by node')
  t.match(healthcheckCommand?.join(' ') ?? '', /\/health\/ready\b/, 'on /health/ready')
})

t.test('every COPY source exists, reaches the build context, and the layout mirrors the repository', async (t) => {
  for (const stage of stages) {
    for (const copy of copiesOf(stage, workdirOf(stage))) {
      for (const source of copy.sources) {
        // A stage's outputs (dist/, node_modules/) exist here too once npm ci and the build have run.
        t.ok(existsSync(path.join(root, source)), `line ${copy.line}: ${source} exists`)
        if (copy.from === undefined) {
          t.equal(ignoredBy(ignorePatterns, source), undefined, `line ${copy.line}: ${source} is not left out by .dockerignore`)
        }
        // The server finds prisma/, web/, templates/ and its packages relative to dist/, as in the repository.
        const folder = existsSync(path.join(root, source)) && statSync(path.join(root, source)).isDirectory()
        const landed = folder || !copy.intoFolder ? copy.dest : path.posix.join(copy.dest, path.posix.basename(source))
        t.equal(landed, source, `line ${copy.line}: ${source} lands at the same path under WORKDIR`)
      }
    }
  }
})

t.test('the runtime stage has every file the server reads from disk', async (t) => {
  const copied = copiesOf(final, workdirOf(final)).flatMap((copy) => copy.sources)
  const needed = {
    'the entry point': path.join(root, cmd?.at(-1) ?? 'dist/server.js'),
    'the schema and migrations (src/db/schema.ts)': prismaDir,
    'the account page (src/http/routes/account-page.ts)': PAGE_ROOT,
    "the account page's SDK, @vouch/client's dist (src/http/routes/account-page.ts)": realpathSync(SDK_ROOT),
    'the reset mail template (src/mail/reset-mail.ts)': DEFAULT_RESET_TEMPLATE,
    'the new-device mail template (src/mail/new-device-mail.ts)': DEFAULT_NEW_DEVICE_TEMPLATE,
    "@vouch/client's package.json (node_modules/@vouch/client links to it)": path.join(root, 'packages/client/package.json'),
    "@vouch/verifier's package.json": path.join(root, 'packages/verifier/package.json'),
    "@vouch/verifier's dist": path.join(root, 'packages/verifier/dist'),
  }
  for (const [what, absolute] of Object.entries(needed)) {
    const relative = path.relative(root, absolute).split(path.sep).join('/').replace(/\/$/, '')
    t.ok(copied.some((source) => relative === source || relative.startsWith(`${source}/`)), `${what}: ${relative} is copied`)
  }
})

t.test('the build context leaves out local data, secrets and installed or built files', async (t) => {
  for (const file of ['data/master-key', 'data/vouch.db', '.env', 'node_modules/jose/package.json', 'dist/server.js', 'packages/client/dist/index.js', 'src/db/generated/sqlite/client.ts', '.git/HEAD']) {
    t.not(ignoredBy(ignorePatterns, file), undefined, `${file} is not sent to the builder`)
  }
  for (const file of ['src/server.ts', 'prisma/schema.prisma', 'web/account/index.html', 'templates/password-reset.txt', 'packages/client/src/index.ts']) {
    t.equal(ignoredBy(ignorePatterns, file), undefined, `${file} is sent`)
  }
})

t.test("the image's CMD starts the built server and its HEALTHCHECK follows readiness", async (t) => {
  if (!existsSync(path.join(root, 'dist/server.js'))) return t.fail('dist/server.js is missing: npm run build first')
  const dataDir = await mkdtemp(path.join(tmpdir(), 'vouch-container-'))
  t.teardown(() => rm(dataDir, { recursive: true, force: true }))
  const port = String(await freePort())
  const probe = (): Promise<number> => new Promise((resolve) => {
    const [command, ...args] = healthcheckCommand!
    execFile(command === 'node' ? process.execPath : command!, args, { env: { PORT: port }, timeout: 3000 }, (err) => {
      resolve(err === null ? 0 : typeof err.code === 'number' ? err.code : -1)
    })
  })
  t.equal(await probe(), 1, 'unhealthy while nothing listens')

  const [command, ...args] = cmd!
  const env = {
    ...finalEnv,
    PATH: process.env.PATH ?? '',
    // On loopback here, where the image says 0.0.0.0, and in a scratch folder instead of /data.
    HOST: '127.0.0.1',
    PORT: port,
    DATA_DIR: dataDir,
    DATABASE_URL: `file:${path.join(dataDir, 'vouch.db')}`,
    PUBLIC_URL: `http://127.0.0.1:${port}`,
    LOG_LEVEL: 'warn',
  }
  const child = spawn(command === 'node' ? process.execPath : command!, args, { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  let output = ''
  child.stdout.on('data', (chunk) => { output += chunk })
  child.stderr.on('data', (chunk) => { output += chunk })

  const deadline = Date.now() + 60_000
  let healthy = false
  while (!healthy && Date.now() < deadline && child.exitCode === null) {
    healthy = await probe() === 0
    if (!healthy) await sleep(200)
  }
  t.ok(healthy, `healthy once started${healthy ? '' : `:\n${output}`}`)

  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  child.kill('SIGTERM')
  t.equal(await exited, 0, 'SIGTERM (docker stop) ends it cleanly')
  t.equal(await probe(), 1, 'unhealthy once stopped')
})

t.test('compose.yaml: vouch on PostgreSQL and Redis, started once both are healthy', async (t) => {
  const compose = parseYaml(await read('compose.yaml')) as {
    services: Record<string, {
      image?: string
      build?: string | { context?: string, dockerfile?: string }
      environment?: Record<string, string>
      healthcheck?: { test?: string[] | string, disable?: boolean }
      depends_on?: Record<string, { condition?: string }>
      volumes?: string[]
    }>
    volumes?: Record<string, unknown>
  }
  const { vouch, postgres, redis } = compose.services
  t.ok(vouch && postgres && redis, 'three services: vouch, postgres, redis')
  if (!vouch || !postgres || !redis) return

  const context = typeof vouch.build === 'string' ? vouch.build : vouch.build?.context
  t.equal(path.normalize(context ?? ''), '.', 'vouch is built from this repository')
  t.equal(typeof vouch.build === 'object' ? vouch.build.dockerfile ?? 'Dockerfile' : 'Dockerfile', 'Dockerfile', '…with its Dockerfile')
  t.ok(vouch.healthcheck?.test ?? (healthcheckCommand !== undefined && vouch.healthcheck?.disable !== true),
    "vouch's health check: its own, or the image's HEALTHCHECK")
  for (const [name, service] of Object.entries({ postgres, redis })) {
    t.ok(service.image !== undefined && pinned(service.image), `${name}'s image is pinned (${service.image})`)
    t.ok(service.healthcheck?.test, `${name} has a health check`)
    t.equal(vouch.depends_on?.[name]?.condition, 'service_healthy', `vouch waits for ${name} to be healthy`)
  }

  const env = vouch.environment ?? {}
  t.match(env.VOUCH_MASTER_KEY ?? '', /^\$\{VOUCH_MASTER_KEY:\?/, 'VOUCH_MASTER_KEY comes from the environment, required')
  t.match(env.PUBLIC_URL ?? '', /^\$\{PUBLIC_URL\b/, 'PUBLIC_URL comes from the environment')
  const database = new URL((env.DATABASE_URL ?? '').replace(/\$\{(\w+):-([^}]*)\}/g, '$2'))
  t.equal(database.protocol, 'postgresql:', 'DATABASE_URL is PostgreSQL')
  t.equal(database.hostname, 'postgres', '…the postgres service')
  const pgEnv = postgres.environment ?? {}
  t.equal(database.username, pgEnv.POSTGRES_USER, '…as the user it creates')
  t.equal(database.pathname, `/${pgEnv.POSTGRES_DB}`, '…in the database it creates')
  t.equal(new URL(env.REDIS_URL ?? '').hostname, 'redis', 'REDIS_URL is the redis service')
  for (const name of Object.keys(env)) t.ok(documented(name), `${name} is a variable vouch reads (.env.example)`)

  const pgVolume = (postgres.volumes ?? []).find((volume) => volume.endsWith(':/var/lib/postgresql/data'))
  const volumeName = pgVolume?.split(':')[0]
  t.ok(volumeName !== undefined && compose.volumes !== undefined && volumeName in compose.volumes, `PostgreSQL's data is in a named volume (${volumeName})`)
})
