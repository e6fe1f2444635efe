/**
 * The benchmark suite: `npm run bench` (full) or `npm run bench -- --quick`
 * (CI). Every figure that counts is a ratio against a baseline
 * measured in the same run, on the same machine: throughput against a bare
 * Fastify 5 route and bare node:http, each its own process, driven by the
 * same client; absolute times are context. vouch is measured as it runs in
 * production, `node dist/server.js` (built first when dist/ is stale), and
 * "today" is the same build of commit e478914, the tree before issue 11.
 * Targets are reported, never asserted: the exit code is 0 unless something
 * broke (a failed request, a crash, the time limit).
 *
 * Options: --quick, --only=revoke-all,throughput,resource-server,login,refresh,soak,feed-fanout,events,
 * --profile (CPU-profile the server in every HTTP benchmark; by default the
 * full mode profiles only where a target is missed), --no-write (print only).
 * Output: markdown on stdout, and bench/results/{report,results}-<mode>.{md,json}
 * plus the chart bench/results/revoke-all-<mode>.svg.
 */
import { cpus, loadavg, totalmem } from 'node:os'
import { mkdir, writeFile } from 'node:fs/promises'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import pg from 'pg'
import { DEFAULT_POSTGRES_ADMIN_URL } from '../src/db/scratch.js'
import { killChildren, root, table, waitForQuiet } from './lib/harness.js'
import { ensureCurrentBuild } from './lib/builds.js'
import { renderSection, verdict, type Context, type Section } from './lib/report.js'
import { revokeAllChart, type RevokeAllData } from './lib/svg.js'
import { revokeAllBench } from './revoke-all.js'
import { throughputBench } from './throughput.js'
import { loginBench } from './login.js'
import { refreshBench } from './refresh.js'
import { soakBench } from './soak.js'
import { feedFanoutBench } from './feed-fanout.js'
import { resourceServerBench } from './resource-server.js'
import { eventsBench } from './events.js'

const argv = process.argv.slice(2)
const quick = argv.includes('--quick')
const mode = quick ? 'quick' : 'full'
const only = argv.find((a) => a.startsWith('--only='))?.slice('--only='.length).split(',')
const write = !argv.includes('--no-write')
const resultsDir = path.join(root, 'bench/results')
/** Partial runs (--only) write their own files, never over a whole run's. */
const tag = only ? `${mode}-${only.join('+')}` : mode
const startedAt = Date.now()

const benchmarks: Array<{ id: string, run: (ctx: Context) => Promise<Section> }> = [
  { id: 'revoke-all', run: revokeAllBench },
  { id: 'throughput', run: throughputBench },
  { id: 'resource-server', run: resourceServerBench },
  { id: 'login', run: loginBench },
  { id: 'refresh', run: refreshBench },
  { id: 'soak', run: soakBench },
  { id: 'feed-fanout', run: feedFanoutBench },
  { id: 'events', run: eventsBench },
]
for (const id of only ?? []) {
  if (!benchmarks.some((b) => b.id === id)) throw new Error(`--only: unknown benchmark "${id}" (${benchmarks.map((b) => b.id).join(', ')})`)
}

const elapsed = () => `${((Date.now() - startedAt) / 1000).toFixed(0)} s`
/** Longest wait for a quiet machine before one measured section, and in the whole run (CI's quick run stays short). */
const quietMaxSeconds = quick ? 15 : 60
let quietBudgetSeconds = quick ? 30 : 600
const ctx: Context = {
  quick,
  profile: argv.includes('--profile') ? 'always' : quick ? 'never' : 'on-miss',
  resultsDir,
  log: (message) => process.stderr.write(`[bench ${elapsed()}] ${message}\n`),
  async quiet (what) {
    const { message, waitedS } = await waitForQuiet(Math.max(0, Math.min(quietMaxSeconds, quietBudgetSeconds)))
    quietBudgetSeconds -= waitedS
    ctx.log(`${what}: ${message}`)
    return `${what}: ${message}.`
  },
}

/** Drops the throw-away PostgreSQL databases this process made (left over only if a run broke). */
async function dropLeftoverDatabases (): Promise<void> {
  const admin = new pg.Client({ connectionString: DEFAULT_POSTGRES_ADMIN_URL, connectionTimeoutMillis: 3000 })
  try {
    await admin.connect()
    const { rows } = await admin.query<{ datname: string }>('SELECT datname FROM pg_database WHERE datname LIKE $1', [`vouch_scratch_${process.pid}_%`])
    for (const { datname } of rows) await admin.query(`DROP DATABASE IF EXISTS ${datname} WITH (FORCE)`)
  } catch {
    // PostgreSQL not reachable: nothing of ours to drop.
  } finally {
    await admin.end().catch(() => {})
  }
}

// Every run is bounded: past this, whatever is running is killed and the run fails.
const limitMs = (quick ? 12 : 240) * 60_000
const watchdog = setTimeout(() => {
  process.stderr.write(`bench: still running after ${limitMs / 60_000} minutes; stopping\n`)
  killChildren()
  void dropLeftoverDatabases().finally(() => process.exit(2))
}, limitMs)
watchdog.unref()
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    killChildren()
    void dropLeftoverDatabases().finally(() => process.exit(130))
  })
}

function machine (): string {
  const cpuinfo = (() => { try { return readFileSync('/proc/cpuinfo', 'utf8') } catch { return '' } })()
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1] ?? cpus()[0]?.model ?? 'unknown'
  const mhz = /^cpu MHz\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]
  return `${cpus().length} cores (nproc), ${model}${mhz ? ` @ ${Number(mhz).toFixed(0)} MHz` : ''}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB RAM, ` +
    `node ${process.version}, ${process.platform}/${process.arch}, load average at start ${loadavg().map((l) => l.toFixed(2)).join(' / ')}`
}

const header = [
  `# vouch benchmarks (${mode} mode)`,
  '',
  `${new Date(startedAt).toISOString()} — ${machine()}.`,
  'Loopback only. The machine is shared and noisy: the ratios (each against a baseline measured in the same run) are the figures that count; absolute times are context.',
  '',
].join('\n')
console.log(header)
const buildNote = await ensureCurrentBuild(ctx.log)
if (buildNote !== undefined) console.log(`${buildNote}\n`)

const sections: Section[] = []
const failures: string[] = []
for (const bench of benchmarks) {
  if (only && !only.includes(bench.id)) continue
  ctx.log(`${bench.id}: starting`)
  try {
    const section = await bench.run(ctx)
    sections.push(section)
    console.log(renderSection(section))
    ctx.log(`${bench.id}: done`)
  } catch (err) {
    const message = err instanceof Error ? err.stack ?? err.message : String(err)
    failures.push(`${bench.id}: ${message}`)
    console.log(`## ${bench.id}: FAILED\n\n\`\`\`\n${message}\n\`\`\`\n`)
    killChildren()
  }
}
await dropLeftoverDatabases()

const allTargets = sections.flatMap((s) => s.targets.map((t) => [s.title.replace(/^\d+\.\s*/, ''), t.goal, t.measured, t.today ?? '', verdict(t.met)]))
const summary = [
  `## Targets (${mode} mode)`,
  '',
  table(['benchmark', 'target', 'measured', 'today (e478914, same run)', 'verdict'], allTargets),
  '',
  `${allTargets.filter((t) => t[4] === 'met').length} met, ${allTargets.filter((t) => t[4] === 'MISSED').length} missed` +
    `${failures.length > 0 ? `, ${failures.length} benchmark(s) FAILED` : ''}; run time ${elapsed()}, load average at the end ${loadavg().map((l) => l.toFixed(2)).join(' / ')}.`,
  '',
].join('\n')
console.log(summary)

if (write) {
  await mkdir(resultsDir, { recursive: true })
  const report = [header, ...sections.map(renderSection), ...failures.map((f) => `## FAILED\n\n\`\`\`\n${f}\n\`\`\`\n`), summary].join('\n')
  await writeFile(path.join(resultsDir, `report-${tag}.md`), report)
  await writeFile(path.join(resultsDir, `results-${tag}.json`), JSON.stringify({
    mode, startedAt: new Date(startedAt).toISOString(), machine: machine(), failures,
    sections: sections.map(({ id, title, tables, targets, notes, data }) => ({ id, title, tables, targets, notes, data })),
  }, null, 2) + '\n')
  const revoke = sections.find((s) => s.id === 'revoke-all')
  if (revoke) {
    const svg = revokeAllChart(revoke.data as RevokeAllData, `median ms, log-log; ${mode} mode, ${new Date(startedAt).toISOString().slice(0, 10)}, ${cpus().length} cores`)
    await writeFile(path.join(resultsDir, `revoke-all-${tag}.svg`), svg)
  }
  ctx.log(`wrote bench/results/report-${tag}.md, results-${tag}.json${revoke ? `, revoke-all-${tag}.svg` : ''}`)
}

clearTimeout(watchdog)
process.exit(failures.length > 0 ? 1 : 0)
