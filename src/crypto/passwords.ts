/**
 * Password hashing with argon2id. Hashing runs on libuv's thread pool, never
 * on the event loop. `verify` of an unknown account still pays for one full
 * verification (against a dummy hash made with the same parameters), so an
 * unknown email and a wrong password take the same time.
 */
import argon2 from 'argon2'
import type { Argon2Params } from '../config.js'

export interface PasswordHasher {
  hash (password: string): Promise<string>
  /** Verifies `password` against `hash`, or against a dummy hash when `hash` is undefined (always false then). */
  verify (hash: string | undefined, password: string): Promise<boolean>
  /** True when `hash` was made with weaker parameters than the current ones. */
  needsRehash (hash: string): boolean
}

export function createPasswordHasher (params: Argon2Params): PasswordHasher {
  const options = { type: argon2.argon2id, ...params } as const
  // Made up front, so that even the first unknown-email sign-in costs one verification, not a hash and a verification.
  const dummy = argon2.hash('vouch-dummy-password', options)
  dummy.catch(() => {}) // a failure resurfaces where it is awaited

  const verifyAgainst = async (hash: string, password: string): Promise<boolean> => {
    try {
      return await argon2.verify(hash, password)
    } catch {
      return false // a malformed stored hash never verifies
    }
  }

  return {
    hash: (password) => argon2.hash(password, options),
    async verify (hash, password) {
      if (hash !== undefined) return verifyAgainst(hash, password)
      await verifyAgainst(await dummy, password)
      return false
    },
    needsRehash: (hash) => {
      // argon2's own check compares version and cost, not the variant.
      if (!hash.startsWith('$argon2id$')) return true
      try {
        return argon2.needsRehash(hash, params)
      } catch {
        return true
      }
    },
  }
}
