/**
 * The two servers a run compares: the current tree's build (dist/, rebuilt
 * when older than its sources) and "today", the tree before issue 11
 * (commit e478914), built once into a cache folder outside the repository
 * and started exactly like the current one (`node dist/server.js`).
 */
import { spawn } from 'node:child_process'
import { existsSync, readdirSync, statSync } from 'node:fs'
import { cp, mkdir, readdir, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { root } from './harness.js'

/** The last commit before the work of issue 11: the "today" of its targets. */
export const TODAY_COMMIT = 'e478914'

/** Builds of older commits, kept between runs (one folder per full commit hash). */
const cacheRoot = path.join(tmpdir(), 'vouch-bench-builds')
const tsc = path.join(root, 'node_modules/typescript/bin/tsc')

function run (command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] })
    let output = ''
    child.stdout.on('data', (c: Buffer) => { output = (output + c.toString()).slice(-4000) })
    child.stderr.on('data', (c: Buffer) => { output = (output + c.toString()).slice(-4000) })
    child.on('error', reject)
    child.on('exit', (code) => code === 0 ? resolve(output) : reject(new Error(`${command} ${args.join(' ')} (in ${cwd}) exited with ${code}: ${output.trim()}`)))
  })
}

/** Newest modification time of the sources under `dir` (generated code and dependencies left out). */
function newestSource (dir: string): number {
  let newest = 0
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name)
    if (entry.isDirectory()) {
      if (entry.name !== 'generated' && entry.name !== 'node_modules') newest = Math.max(newest, newestSource(p))
    } else if (/\.[cm]?ts$/.test(entry.name)) {
      newest = Math.max(newest, statSync(p).mtimeMs)
    }
  }
  return newest
}

const mtime = (file: string) => existsSync(file) ? statSync(file).mtimeMs : 0

/**
 * Makes sure dist/ holds the current sources' build: `npm run build` when
 * dist/server.js (or the verifier package's dist) is older than a source
 * file. Returns a note for the report when it built, or when the build
 * failed and an older dist/ is measured instead (throws if there is none).
 */
export async function ensureCurrentBuild (log: (message: string) => void): Promise<string | undefined> {
  const server = path.join(root, 'dist/server.js')
  const verifier = path.join(root, 'packages/verifier/dist/index.js')
  const stale = mtime(server) < newestSource(path.join(root, 'src')) || mtime(verifier) < newestSource(path.join(root, 'packages/verifier/src'))
  if (!stale) return undefined
  log('dist/ is older than src/: npm run build')
  const t0 = performance.now()
  try {
    // Others may be building the same tree at the same moment (the verifier's build empties its
    // dist/ first): a failed build is tried once more before giving up.
    await run('npm', ['run', 'build', '--silent'], root).catch(async () => {
      log('npm run build failed; trying once more in 5 s')
      await new Promise((resolve) => setTimeout(resolve, 5000))
      await run('npm', ['run', 'build', '--silent'], root)
    })
    return `dist/ was older than its sources: built it (npm run build, ${((performance.now() - t0) / 1000).toFixed(0)} s).`
  } catch (err) {
    if (!existsSync(server)) throw err
    const message = `npm run build FAILED (${(err as Error).message.split('\n').slice(-3).join(' ').slice(0, 300)}); measuring the dist/ already there, which is older than src/`
    log(message)
    return message
  }
}

export interface TodayBuild {
  /** A checkout of TODAY_COMMIT with dist/ built, node_modules linked. */
  dir: string
  commit: string
  /** How it was obtained, for the report. */
  note: string
}

let todayBuild: Promise<TodayBuild> | undefined

/** The dependencies `dir`'s package.json names that its node_modules lacks, or holds at another version. */
async function missingDependencies (dir: string): Promise<string[]> {
  const pkg = JSON.parse(await readFile(path.join(dir, 'package.json'), 'utf8')) as { dependencies?: Record<string, string>, devDependencies?: Record<string, string> }
  const wanted = { ...pkg.devDependencies, ...pkg.dependencies }
  const missing: string[] = []
  for (const [name, version] of Object.entries(wanted)) {
    try {
      const installed = JSON.parse(await readFile(path.join(dir, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }
      if (/^\d/.test(version) && installed.version !== version) missing.push(`${name}@${version} (have ${installed.version})`)
    } catch {
      missing.push(`${name}@${version}`)
    }
  }
  return missing
}

/**
 * The build of TODAY_COMMIT, made once per commit and cached in
 * $TMPDIR/vouch-bench-builds/<hash>: `git archive | tar -x`; dependencies
 * hard-linked from the repository's node_modules (so later installs there
 * do not change them), except @vouch/verifier, that commit's own package,
 * built too; if the repository's node_modules no longer holds that
 * commit's dependencies, `npm ci --offline` from its lock file instead
 * (minutes; not in quick mode). The generated Prisma clients are copied
 * from src/db/generated when the schema is unchanged (generated afresh
 * otherwise), then `tsc -p tsconfig.build.json`. Rejects if any step fails;
 * callers fall back to recorded figures and say so.
 */
export function buildToday (log: (message: string) => void, { allowInstall = true } = {}): Promise<TodayBuild> {
  todayBuild ??= (async () => {
    const commit = (await run('git', ['rev-parse', `${TODAY_COMMIT}^{commit}`], root)).trim()
    const dir = path.join(cacheRoot, commit)
    if (existsSync(path.join(dir, '.complete'))) return { dir, commit, note: `today = ${TODAY_COMMIT}, built earlier (cached in ${dir})` }
    const t0 = performance.now()
    log(`building ${TODAY_COMMIT} (the "today" baseline) into ${dir}`)
    const work = `${dir}.tmp-${process.pid}`
    await rm(work, { recursive: true, force: true })
    await mkdir(work, { recursive: true })
    try {
      await run('sh', ['-c', `git -C "${root}" archive ${commit} | tar -x -C "${work}"`], root)
      await mkdir(path.join(work, 'node_modules/@vouch'), { recursive: true })
      for (const entry of await readdir(path.join(root, 'node_modules'))) {
        if (entry === '@vouch') continue
        await run('cp', ['-al', path.join(root, 'node_modules', entry), path.join(work, 'node_modules', entry)], root)
      }
      await symlink('../../packages/verifier', path.join(work, 'node_modules/@vouch/verifier'))
      const missing = await missingDependencies(work)
      let installed = false
      if (missing.length > 0) {
        if (!allowInstall) throw new Error(`the repository's node_modules lacks ${missing.join(', ')}, which ${TODAY_COMMIT} needs (npm ci --offline would take minutes: run the full mode once to cache the build)`)
        log(`${TODAY_COMMIT} needs ${missing.join(', ')}: npm ci --offline in ${work} (minutes)`)
        await rm(path.join(work, 'node_modules'), { recursive: true, force: true })
        await run('npm', ['ci', '--offline', '--no-audit', '--no-fund'], work) // postinstall generates the Prisma clients, prepare builds
        installed = true
      }
      if (!installed) {
        // Prisma clients (not committed): the schema decides whether the current ones fit.
        const sameSchema = await run('git', ['diff', '--quiet', commit, '--', 'prisma/schema.prisma'], root).then(() => true, () => false)
        if (sameSchema && existsSync(path.join(root, 'src/db/generated'))) {
          await cp(path.join(root, 'src/db/generated'), path.join(work, 'src/db/generated'), { recursive: true })
        } else {
          await run(process.execPath, ['--import', 'tsx', 'scripts/prisma-generate.ts'], work,
            { ...process.env, PATH: `${path.join(work, 'node_modules/.bin')}:${process.env.PATH ?? ''}` })
        }
        await run(process.execPath, [tsc, '-p', 'tsconfig.json'], path.join(work, 'packages/verifier'))
        await run(process.execPath, [tsc, '-p', 'tsconfig.build.json'], work)
      }
      await writeFile(path.join(work, '.complete'), `${commit}\n`)
      await rm(dir, { recursive: true, force: true })
      await rename(work, dir)
    } catch (err) {
      await rm(work, { recursive: true, force: true })
      throw err
    }
    return { dir, commit, note: `today = ${TODAY_COMMIT}, built for this run in ${((performance.now() - t0) / 1000).toFixed(0)} s (cached in ${dir})` }
  })()
  return todayBuild
}
