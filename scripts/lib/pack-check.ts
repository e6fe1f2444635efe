/**
 * What the pack checks of the published packages share (scripts/*-pack-check.ts):
 * a scratch folder and child processes cleaned up on exit, `npm pack` with a
 * check of what the tarball holds, `npm install <tarball>` into an empty
 * folder outside the repository, and starting a process until a URL answers.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'

export const root = fileURLToPath(new URL('../../', import.meta.url))

export function packCheck (name: string) {
  const children: ChildProcess[] = []
  const scratch = mkdtempSync(path.join(tmpdir(), `vouch-${name}-pack-`))
  process.on('exit', () => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    rmSync(scratch, { recursive: true, force: true })
  })
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => process.exit(1))

  function fail (message: string): never {
    console.error(`${name} pack check FAILED: ${message}`)
    process.exit(1)
  }

  const npm = (cwd: string, ...args: string[]) => execFileSync('npm', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] })

  /**
   * `npm pack` in `packageDir`: the tarball holds dist/*.js and dist/*.d.ts
   * (each of `entries` among them), README.md, LICENSE and package.json only,
   * and the package has no install script. Returns the tarball's path.
   */
  function pack (packageDir: string, entries: readonly string[]): string {
    console.log(`== npm pack (${path.relative(root, packageDir)})`)
    const packed = JSON.parse(npm(packageDir, 'pack', '--json', '--pack-destination', scratch)) as Array<{ filename: string, size: number, unpackedSize: number, files: Array<{ path: string }> }>
    const files = packed[0]!.files.map((file) => file.path).sort()
    console.log(`${packed[0]!.filename}: ${kib(packed[0]!.size)} packed, ${kib(packed[0]!.unpackedSize)} unpacked, ${files.length} files`)
    const stray = files.filter((file) => !(file === 'package.json' || file === 'README.md' || file === 'LICENSE' || /^dist\/[\w-]+\.(js|d\.ts)$/.test(file)))
    if (stray.length > 0) fail(`the tarball holds more than dist/*.js, dist/*.d.ts, README.md, LICENSE and package.json: ${stray.join(', ')}`)
    if (!files.includes('LICENSE')) fail('the tarball lacks LICENSE')
    for (const entry of entries) {
      for (const ext of ['js', 'd.ts']) if (!files.includes(`dist/${entry}.${ext}`)) fail(`the tarball lacks dist/${entry}.${ext}`)
    }
    const manifest = readManifest(packageDir)
    const installScripts = ['preinstall', 'install', 'postinstall'].filter((script) => manifest.scripts?.[script] !== undefined)
    if (installScripts.length > 0) fail(`the package has install scripts: ${installScripts.join(', ')}`)
    return path.join(scratch, packed[0]!.filename)
  }

  /** A new empty ES-module project in the scratch folder. */
  function project (folder: string): string {
    const dir = path.join(scratch, folder)
    mkdirSync(dir, { recursive: true })
    writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: folder, private: true, type: 'module' }))
    return dir
  }

  /** `npm install <specs>` in `dir`, printing what node_modules then holds; returns the top-level package names. */
  function install (dir: string, ...specs: string[]): string[] {
    console.log(`\n== npm install ${specs.map((spec) => path.basename(spec)).join(' ')} in an empty folder (${dir})`)
    npm(dir, 'install', ...specs, '--no-audit', '--no-fund', '--loglevel=error')
    const installed = installedPackages(dir)
    console.log('node_modules:')
    for (const pkg of installed) console.log(`  ${pkg.padEnd(20)} ${kib(sizeOf(path.join(dir, 'node_modules', pkg))).padStart(9)}`)
    console.log(`  ${'total'.padEnd(20)} ${kib(sizeOf(path.join(dir, 'node_modules'))).padStart(9)}`)
    return installed
  }

  /** Starts `node <args>` in `cwd`; resolves once `url` answers 2xx. */
  async function start (label: string, cwd: string, args: string[], env: Record<string, string>, url: string) {
    const child = spawn(process.execPath, args, { cwd, env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
    children.push(child)
    let output = ''
    child.stdout!.on('data', (chunk) => { output += chunk })
    child.stderr!.on('data', (chunk) => { output += chunk })
    const deadline = Date.now() + 60_000
    for (;;) {
      if (child.exitCode !== null) fail(`${label} exited with ${child.exitCode}:\n${output}`)
      if (Date.now() > deadline) fail(`${label} did not start:\n${output}`)
      if (await fetch(url).then((res) => res.ok, () => false)) return
      await sleep(50)
    }
  }

  return { scratch, fail, npm, pack, project, install, start }
}

export function readManifest (packageDir: string): { scripts?: Record<string, string>, dependencies?: Record<string, string> } {
  return JSON.parse(readFileSync(path.join(packageDir, 'package.json'), 'utf8'))
}

/** Bytes under a path (files only, symlinks not followed). */
function sizeOf (target: string): number {
  const stat = statSync(target, { throwIfNoEntry: false })
  if (stat === undefined) return 0
  if (!stat.isDirectory()) return stat.size
  return readdirSync(target).reduce((total, name) => total + sizeOf(path.join(target, name)), 0)
}

export const kib = (bytes: number) => `${(bytes / 1024).toFixed(0)} KiB`

/** Top-level packages in node_modules (scoped ones as @scope/name). */
function installedPackages (dir: string): string[] {
  const modules = path.join(dir, 'node_modules')
  return readdirSync(modules).filter((name) => !name.startsWith('.')).flatMap((name) =>
    name.startsWith('@') ? readdirSync(path.join(modules, name)).map((inner) => `${name}/${inner}`) : [name]).sort()
}
