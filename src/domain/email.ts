import { DomainError } from '../errors.js'

export const EMAIL_MAX_LENGTH = 254

// local@domain: no whitespace, exactly one "@", a non-empty local part of at
// most 64 characters, and a domain of dot-separated, non-empty labels.
const EMAIL = /^[^\s@]{1,64}@[^\s@.]+(\.[^\s@.]+)*$/u

/**
 * Emails are compared and stored trimmed, in Unicode's composed form (NFC:
 * "é" typed as one character or as "e" and an accent is one address) and
 * lower-cased.
 */
export function normalizeEmail (raw: string): string {
  const email = raw.trim().normalize('NFC').toLowerCase()
  if (email.length > EMAIL_MAX_LENGTH || !EMAIL.test(email)) {
    throw new DomainError('validation_failed', 'email must be of the form local@domain, at most 254 characters')
  }
  return email
}
