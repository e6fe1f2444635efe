/**
 * Brute-force protection for sign-in. Failed attempts are counted per
 * account and IP, and per account from every IP, in fixed windows:
 *
 * - past `perAccountAndIp` failures, that IP gets 429 for that account until
 *   its window ends (a successful sign-in from it clears its count);
 * - past `perAccount` failures from anywhere (a distributed guess), the
 *   account answers 429 to every IP that has never signed in to it, so an
 *   attacker elsewhere cannot lock the owner out on a network they have used,
 *   and even then only until the window ends, never indefinitely.
 *
 * Unknown emails are counted like known ones, so a 429 reveals nothing.
 */
import { DomainError } from '../errors.js'
import type { Counters } from './counters.js'

export interface LoginThrottleSettings {
  readonly perAccountAndIp: number
  readonly perAccount: number
  /** Seconds. */
  readonly window: number
}

export interface LoginThrottle {
  /** Throws `rate_limited` (with retryAfter) when this attempt must not even be tried. */
  check (email: string, ip: string, hasSignedInFrom: () => Promise<boolean>): Promise<void>
  failed (email: string, ip: string): Promise<void>
  succeeded (email: string, ip: string): Promise<void>
}

export function createLoginThrottle (counters: Counters, settings: LoginThrottleSettings): LoginThrottle {
  const windowMs = settings.window * 1000
  const pairKey = (email: string, ip: string) => `${email}|${ip}`
  const accountKey = (email: string) => email
  const limited = (resetInMs: number) =>
    new DomainError('rate_limited', 'Too many failed sign-in attempts; retry later.', { retryAfter: Math.max(1, Math.ceil(resetInMs / 1000)) })

  return {
    async check (email, ip, hasSignedInFrom) {
      // Both counts in one round trip to Redis (the second is rarely needed, but cheap).
      const [pair, account] = await Promise.all([counters.peek(pairKey(email, ip)), counters.peek(accountKey(email))])
      if (pair.count >= settings.perAccountAndIp) throw limited(pair.resetInMs)
      if (account.count >= settings.perAccount && !await hasSignedInFrom()) throw limited(account.resetInMs)
    },
    async failed (email, ip) {
      await Promise.all([counters.increment(pairKey(email, ip), windowMs), counters.increment(accountKey(email), windowMs)])
    },
    async succeeded (email, ip) {
      await counters.reset(pairKey(email, ip))
    },
  }
}
