/**
 * The cluster primary's logger (src/cluster-log.ts) writes the lines pino
 * writes for the workers, key for key, and honours LOG_LEVEL.
 */
import { pino } from 'pino'
import t from 'tap'
import { clusterLogger } from '../src/cluster-log.js'

function both (level: string) {
  const ours: string[] = []
  const theirs: string[] = []
  return {
    ours, theirs,
    cluster: clusterLogger(level, (line) => { ours.push(line) }),
    pino: pino({ level }, { write: (line: string) => { theirs.push(line) } }),
  }
}

t.test('a line with fields and a message has pino\'s keys, in pino\'s order, with the same values', async (t) => {
  const { ours, theirs, cluster, pino } = both('info')
  cluster.info({ workers: 2, pids: [11, 12] }, 'started 2 workers')
  pino.info({ workers: 2, pids: [11, 12] }, 'started 2 workers')
  cluster.error({ worker: 11, code: null, signal: 'SIGKILL' }, 'worker 11 exited (SIGKILL); starting another')
  pino.error({ worker: 11, code: null, signal: 'SIGKILL' }, 'worker 11 exited (SIGKILL); starting another')
  cluster.info('every worker stopped; exiting')
  pino.info('every worker stopped; exiting')
  t.equal(ours.length, 3)
  t.ok(ours.every((line) => line.endsWith('\n') && !line.slice(0, -1).includes('\n')), 'one line each')
  const withoutTime = (line: string) => { const { time, ...rest } = JSON.parse(line) as { time: number }; return { time: typeof time, rest } }
  t.same(ours.map((line) => Object.keys(JSON.parse(line))), theirs.map((line) => Object.keys(JSON.parse(line))), 'the same keys in the same order')
  t.same(ours.map(withoutTime), theirs.map(withoutTime), 'the same values (the time aside)')
})

t.test('lines below the level are left out; silent writes none', async (t) => {
  const warn = both('warn')
  for (const logger of [warn.cluster, warn.pino]) {
    logger.debug('d')
    logger.info('i')
    logger.warn('w')
    logger.fatal('f')
  }
  t.same(warn.ours.map((line) => JSON.parse(line).msg), ['w', 'f'])
  t.same(warn.ours.map((line) => JSON.parse(line).level), warn.theirs.map((line) => JSON.parse(line).level), 'pino\'s level numbers')
  const silent = both('silent')
  silent.cluster.fatal('f')
  t.same(silent.ours, [])
})

t.test('a message that would break a line is escaped, not split', async (t) => {
  const { ours, cluster } = both('info')
  cluster.info({ detail: 'a\nb' }, 'first\n{"level":60,"msg":"forged"}')
  t.equal(ours.length, 1)
  t.equal(ours[0]!.split('\n').length, 2, 'one line and its newline')
  t.equal(JSON.parse(ours[0]!).msg, 'first\n{"level":60,"msg":"forged"}')
})
