/**
 * Reads a V8 .cpuprofile (node --cpu-prof) and summarises where the time
 * went: self time by function, self time by area (a package, node's
 * internals, vouch's own src/), and inclusive time of vouch's own functions.
 * Idle time is left out of every share.
 */
import { mkdir, readdir, readFile } from 'node:fs/promises'
import path from 'node:path'
import type { Context, Table } from './report.js'
import { root, type NodeServer } from './harness.js'

interface CallFrame { functionName: string, url: string, lineNumber: number }
interface ProfileNode { id: number, callFrame: CallFrame, children?: number[] }
interface CpuProfile { nodes: ProfileNode[], samples: number[], timeDeltas: number[], startTime: number, endTime: number }

/** Milliseconds before the end of the profile: only samples in [end - fromEndMs, end - toEndMs] count. */
export interface Window { fromEndMs: number, toEndMs: number }

export interface ProfileSummary {
  /** Milliseconds sampled, idle excluded. */
  busyMs: number
  selfByFunction: Array<{ name: string, ms: number, share: number, fn: string, where: string }>
  selfByArea: Array<{ name: string, ms: number, share: number }>
  inclusiveOwn: Array<{ name: string, ms: number, share: number }>
}

/** Checkouts whose paths are shown relative (the repository, and builds of older commits). */
const roots = [root]

/** Shows paths under `dir` (a build of another commit) relative to it, like the repository's. */
export function addRoot (dir: string): void {
  const withSlash = dir.endsWith('/') ? dir : `${dir}/`
  if (!roots.includes(withSlash)) roots.push(withSlash)
}

function shortUrl (url: string): string {
  const u = url.replace(/^file:\/\//, '')
  for (const r of roots) if (u.startsWith(r)) return u.slice(r.length)
  return u
}

/** vouch's own code: its sources (run through tsx) or its build. */
const isOwn = (u: string) => u.startsWith('src/') || u.startsWith('dist/')

function areaOf (frame: CallFrame): string {
  const u = shortUrl(frame.url)
  if (u === '') {
    if (frame.functionName === '(garbage collector)') return '(garbage collector)'
    if (frame.functionName === '(program)') return '(program: native, outside JS)'
    return '(native / builtins)'
  }
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(u)
  if (pkg) return pkg[1]!
  if (u.startsWith('node:')) return `node:${u.slice(5).split('/')[0] === 'internal' ? 'internal' : u.slice(5)}`
  if (isOwn(u)) return u.split('/').slice(0, 2).join('/')
  return u.split('/')[0]!
}

function functionOf (frame: CallFrame): string {
  return frame.functionName === '' ? '(anonymous)' : frame.functionName
}

/** url:line, shortened (node_modules/ and the checkout's path cut); '' for native frames. */
function whereOf (frame: CallFrame): string {
  const u = shortUrl(frame.url)
  if (u === '') return ''
  const file = u.replace(/^.*node_modules\//, '')
  // tsx-compiled modules report line 0 for every function: the file alone says more.
  return frame.lineNumber > 0 ? `${file}:${frame.lineNumber + 1}` : file
}

function nameOf (frame: CallFrame): string {
  const where = whereOf(frame)
  return where === '' ? functionOf(frame) : `${functionOf(frame)} ${where}`
}

export function summarise (profile: CpuProfile, window?: Window, top = 12): ProfileSummary {
  const byId = new Map<number, ProfileNode>()
  const parent = new Map<number, number>()
  for (const node of profile.nodes) {
    byId.set(node.id, node)
    for (const child of node.children ?? []) parent.set(child, node.id)
  }
  const self = new Map<number, number>()
  const from = window === undefined ? -Infinity : profile.endTime - window.fromEndMs * 1000
  const to = window === undefined ? Infinity : profile.endTime - window.toEndMs * 1000
  let at = profile.startTime
  profile.samples.forEach((id, i) => {
    const delta = profile.timeDeltas[i] ?? 0
    at += delta
    if (at >= from && at <= to) self.set(id, (self.get(id) ?? 0) + delta / 1000)
  })

  const selfFn = new Map<string, number>()
  const frameOf = new Map<string, CallFrame>()
  const selfArea = new Map<string, number>()
  const inclusive = new Map<string, number>()
  let busyMs = 0
  for (const [id, msSelf] of self) {
    const node = byId.get(id)
    if (node === undefined || node.callFrame.functionName === '(idle)') continue
    busyMs += msSelf
    const name = nameOf(node.callFrame)
    selfFn.set(name, (selfFn.get(name) ?? 0) + msSelf)
    frameOf.set(name, node.callFrame)
    const area = areaOf(node.callFrame)
    selfArea.set(area, (selfArea.get(area) ?? 0) + msSelf)
    // Inclusive time of vouch's own frames (src/), each counted once per stack.
    const seen = new Set<string>()
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const frame = byId.get(at)!.callFrame
      if (!isOwn(shortUrl(frame.url))) continue
      const key = nameOf(frame)
      if (seen.has(key)) continue
      seen.add(key)
      inclusive.set(key, (inclusive.get(key) ?? 0) + msSelf)
    }
  }
  const ranked = (map: Map<string, number>, n: number) => [...map]
    .sort((a, b) => b[1] - a[1]).slice(0, n)
    .map(([name, value]) => ({ name, ms: value, share: value / busyMs }))
  const selfByFunction = ranked(selfFn, top).map((r) => ({ ...r, fn: functionOf(frameOf.get(r.name)!), where: whereOf(frameOf.get(r.name)!) }))
  return { busyMs, selfByFunction, selfByArea: ranked(selfArea, top), inclusiveOwn: ranked(inclusive, top) }
}

/** The ten hottest functions by self time: function, url:line, self ms and share of busy time. */
export function topSelfTable (caption: string, summary: ProfileSummary, n = 10): Table {
  return {
    caption: `${caption} (${summary.busyMs.toFixed(0)} ms busy; idle left out)`,
    header: ['#', 'function', 'url:line', 'self ms', 'self %'],
    rows: summary.selfByFunction.slice(0, n).map((r, i) => [i + 1, `\`${r.fn}\``, r.where === '' ? '(native)' : `\`${r.where}\``, r.ms.toFixed(0), `${(r.share * 100).toFixed(1)} %`]),
  }
}

/** The main thread's profile in `dir` (tsx's loader thread writes one too). */
export async function readMainProfile (dir: string): Promise<CpuProfile> {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.cpuprofile'))
  const main = files.find((f) => /\.\d+\.0\.\d+\.cpuprofile$/.test(f)) ?? files[0]
  if (main === undefined) throw new Error(`no .cpuprofile in ${dir}`)
  return JSON.parse(await readFile(path.join(dir, main), 'utf8')) as CpuProfile
}

export function profileTables (label: string, summary: ProfileSummary): Table[] {
  const pct = (share: number) => `${(share * 100).toFixed(1)} %`
  return [
    {
      caption: `${label}: server CPU profile, self time by area (${summary.busyMs.toFixed(0)} ms busy)`,
      header: ['area', 'self ms', 'share of busy time'],
      rows: summary.selfByArea.map((r) => [r.name, r.ms.toFixed(0), pct(r.share)]),
    },
    {
      caption: `${label}: hottest functions (self time)`,
      header: ['function', 'self ms', 'share'],
      rows: summary.selfByFunction.map((r) => [`\`${r.name}\``, r.ms.toFixed(0), pct(r.share)]),
    },
    {
      caption: `${label}: vouch's own functions (inclusive time)`,
      header: ['function', 'inclusive ms', 'share'],
      rows: summary.inclusiveOwn.map((r) => [`\`${r.name}\``, r.ms.toFixed(0), pct(r.share)]),
    },
  ]
}

/** A fresh folder for one profile under bench/results/profiles/, and the node flags that write it there. */
export async function profileDir (ctx: Context, label: string): Promise<{ dir: string, nodeArgs: string[] }> {
  const dir = path.join(ctx.resultsDir, 'profiles', `${label.replace(/[^a-z0-9]+/gi, '-')}-${new Date().toISOString().replace(/[:.]/g, '-')}`)
  await mkdir(dir, { recursive: true })
  return { dir, nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${dir}`] }
}

/**
 * Runs `setup`, then `work`, against `server` (started earlier with
 * profileDir's flags, possibly long before: only `work` is summarised),
 * then stops it, which writes the profile.
 */
export async function profileRun<T> (
  server: NodeServer, dir: string,
  setup: (server: NodeServer) => Promise<T>, work: (server: NodeServer, state: T) => Promise<void>,
): Promise<{ summary: ProfileSummary, dir: string }> {
  let workMs: number
  let stopMs: number
  try {
    const state = await setup(server)
    const t0 = performance.now()
    await work(server, state)
    workMs = performance.now() - t0
  } finally {
    const t1 = performance.now()
    await server.stop()
    stopMs = performance.now() - t1
  }
  const summary = summarise(await readMainProfile(dir), { fromEndMs: workMs + stopMs, toEndMs: stopMs })
  return { summary, dir: path.relative(root, dir) }
}

/**
 * Like profileServer, for any server `start` launches with the given node
 * flags (`--cpu-prof --cpu-prof-dir=…`): the real build or an older one.
 * The summary covers `work` only. (A process that must join a database
 * other processes already served traffic on is better started early, with
 * profileDir, and handed to profileRun.)
 */
export async function profileProcess<T> (
  ctx: Context, label: string, start: (nodeArgs: string[]) => Promise<NodeServer>,
  setup: (server: NodeServer) => Promise<T>, work: (server: NodeServer, state: T) => Promise<void>,
): Promise<{ summary: ProfileSummary, dir: string }> {
  const { dir, nodeArgs } = await profileDir(ctx, label)
  return profileRun(await start(nodeArgs), dir, setup, work)
}
