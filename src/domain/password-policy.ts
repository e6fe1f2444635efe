import { DomainError } from '../errors.js'

export interface PasswordPolicy {
  readonly minLength: number
  readonly maxLength: number
}

/** A new password's length, counted in code points: too long is invalid input, too short is weak. */
export function checkNewPassword (policy: PasswordPolicy, password: string): void {
  const length = [...password].length
  if (length > policy.maxLength) {
    throw new DomainError('validation_failed', `password must be at most ${policy.maxLength} characters`)
  }
  if (length < policy.minLength) {
    throw new DomainError('weak_password', `password must be at least ${policy.minLength} characters`)
  }
}
