import type { Clock } from '../../src/domain/clock.js'

/** A clock that only moves when told to. */
export interface TestClock extends Clock {
  advance (seconds: number): void
  set (date: Date): void
}

export function createTestClock (start = new Date()): TestClock {
  let now = start.getTime()
  return {
    now: () => new Date(now),
    advance: (seconds) => { now += seconds * 1000 },
    set: (date) => { now = date.getTime() },
  }
}
