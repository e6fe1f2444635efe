/**
 * The cluster primary's logger: JSON lines in pino's shape
 * (`{"level":30,"time":…,"pid":…,"hostname":…,…fields,"msg":…}`), so that
 * the primary's lines and its workers' (pino, src/app.ts createLogger) are
 * read by the same tools, filtered at the same LOG_LEVEL.
 *
 * Not pino itself: the primary must stay small (src/cluster.ts), and pino
 * with its streams (sonic-boom, thread-stream, worker_threads) adds about
 * 7 MiB resident to a process that logs a dozen lines in its life
 * (measured with two workers: 45 MiB, 52 MiB with pino).
 * Lines go through process.stdout, which is synchronous for files and pipes
 * on Linux, so a line written just before process.exit is not lost.
 */
import { hostname } from 'node:os'

/** pino's level numbers. */
const LEVELS = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60 } as const

export type LogLevel = keyof typeof LEVELS
type LogMethod = (fieldsOrMessage: Record<string, unknown> | string, message?: string) => void
export type ClusterLogger = Readonly<Record<LogLevel, LogMethod>>

/** A logger writing lines at `level` and above (`silent`: none) to `write`, standard output by default. */
export function clusterLogger (level: string, write: (line: string) => void = (line) => { process.stdout.write(line) }): ClusterLogger {
  const threshold = level === 'silent' ? Infinity : LEVELS[level as LogLevel] ?? LEVELS.info
  const base = { pid: process.pid, hostname: hostname() }
  const method = (value: number): LogMethod => value < threshold
    ? () => {}
    : (fieldsOrMessage, message) => {
        const [fields, msg] = typeof fieldsOrMessage === 'string' ? [{}, fieldsOrMessage] : [fieldsOrMessage, message]
        write(`${JSON.stringify({ level: value, time: Date.now(), ...base, ...fields, ...(msg !== undefined && { msg }) })}\n`)
      }
  return Object.freeze(Object.fromEntries(Object.entries(LEVELS).map(([name, value]) => [name, method(value)])) as Record<LogLevel, LogMethod>)
}
