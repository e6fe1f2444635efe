/**
 * Runs the built `vouch` command line (dist/cli/main.js, made by
 * `npm run build`) as an operator would: a process of its own, configured by
 * its environment alone.
 */
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import path from 'node:path'
import { root } from './process.js'

export const CLI = path.join(root, 'dist/cli/main.js')

export interface CliRun {
  code: number
  stdout: string
  stderr: string
}

export function cliBuilt (): boolean {
  return existsSync(CLI)
}

export function runCli (args: readonly string[], env: Record<string, string>): Promise<CliRun> {
  return new Promise((resolve) => {
    // Only what the test names: no DATABASE_URL or DATA_DIR of the machine running the tests leaks in.
    const childEnv = { PATH: process.env.PATH ?? '', ...env }
    execFile(process.execPath, [CLI, ...args], { env: childEnv, timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1
      resolve({ code, stdout, stderr })
    })
  })
}
