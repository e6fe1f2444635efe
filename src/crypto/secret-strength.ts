/**
 * Whether a configured client secret is strong enough to face online
 * guessing. No test can prove a string random; this one refuses what is
 * visibly not: fewer than 32 characters, fewer than 128 bits by the size of
 * the alphabet it uses (hex counts 4 bits a character, digits 3.3, mixed
 * printable text up to 6.6), or fewer than 8 distinct characters ("aaaa…",
 * "abab…", a word repeated). `openssl rand -base64 32` (256 bits) and
 * `openssl rand -hex 16` (128 bits) pass.
 */

export const MIN_SECRET_LENGTH = 32
export const MIN_SECRET_BITS = 128
const MIN_DISTINCT_CHARACTERS = 8

/** Bits of a secret of this length drawn at random from the alphabet it appears to use. */
export function estimatedBits (secret: string): number {
  const characters = [...secret]
  let alphabet: number
  if (/^[0-9]+$/.test(secret)) alphabet = 10
  else if (/^[0-9a-f]+$/.test(secret) || /^[0-9A-F]+$/.test(secret)) alphabet = 16
  else {
    alphabet = 0
    if (/[a-z]/.test(secret)) alphabet += 26
    if (/[A-Z]/.test(secret)) alphabet += 26
    if (/[0-9]/.test(secret)) alphabet += 10
    if (/[^a-zA-Z0-9]/.test(secret)) alphabet += 33
  }
  return characters.length * Math.log2(alphabet)
}

/** Why `secret` is too weak, or undefined when it is not. */
export function weakSecretReason (secret: string): string | undefined {
  const length = [...secret].length
  if (length < MIN_SECRET_LENGTH) return `${length} characters, fewer than ${MIN_SECRET_LENGTH}`
  if (new Set(secret).size < MIN_DISTINCT_CHARACTERS) return `fewer than ${MIN_DISTINCT_CHARACTERS} distinct characters`
  const bits = estimatedBits(secret)
  if (bits < MIN_SECRET_BITS) return `about ${Math.floor(bits)} bits, fewer than ${MIN_SECRET_BITS}`
  return undefined
}
