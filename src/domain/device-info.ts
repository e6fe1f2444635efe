/**
 * What a session remembers of its device is shown back to people (the
 * device list, the account page, logs), so it must display as what it is.
 * Device names come from the request body and user agents from a header,
 * both chosen by whoever signs in; before they are stored (and again when
 * listed, for rows stored before this rule) they are cleaned:
 *
 * 1. NFC-normalised;
 * 2. control characters (Unicode Cc: C0 and C1 controls, so ANSI escapes lose
 *    their ESC, and CR/LF/TAB), line and paragraph separators (Zl, Zp) and
 *    lone surrogates become a space;
 * 3. format characters (Cf: bidirectional overrides and isolates U+202A–E,
 *    U+2066–9, marks U+200E/F and U+061C, zero-width spaces and joiners, soft
 *    hyphens, BOM, tag characters) are removed, except a zero-width joiner
 *    between two pictographs, which is part of an emoji ("👩‍💻");
 * 4. runs of whitespace become one space, and the ends are trimmed;
 * 5. what is left is cut to the length limit, counted in code points after
 *    cleaning, never splitting a surrogate pair; nothing left is null.
 *
 * So "laptop\u202Egnp.exe\u202C" is stored and shown as "laptopgnp.exe".
 */

/** Most code points of a device name (the request schema's limit too). */
export const DEVICE_NAME_MAX_LENGTH = 100
/** Most code points of a stored user agent. */
export const USER_AGENT_MAX_LENGTH = 512

const BREAKING = /[\p{Cc}\p{Zl}\p{Zp}\p{Cs}]/gu
const FORMAT = /\p{Cf}/gu
const ZERO_WIDTH_JOINER = '\u200D'
/** A pictograph, maybe with a skin tone or a presentation selector, right before a joiner. */
const PICTOGRAPH_BEFORE = /\p{Extended_Pictographic}[\u{1F3FB}-\u{1F3FF}\uFE0E\uFE0F]?$/u // eslint-disable-line no-misleading-character-class -- a modifier or selector alone is what the class matches
const PICTOGRAPH_AFTER = /^\p{Extended_Pictographic}/u
const SPACES = /\s+/gu

function keepEmojiJoiner (char: string, offset: number, text: string): string {
  const joinsPictographs = char === ZERO_WIDTH_JOINER &&
    PICTOGRAPH_BEFORE.test(text.slice(Math.max(0, offset - 4), offset)) &&
    PICTOGRAPH_AFTER.test(text.slice(offset + 1, offset + 3))
  return joinsPictographs ? char : ''
}

/** The displayable form of `raw`, at most `maxLength` code points, or null when nothing displayable is left. */
export function displayText (raw: string | null | undefined, maxLength: number): string | null {
  if (raw === null || raw === undefined) return null
  // Bound the work on hostile input before anything else (the limit counts code points, up to two units each).
  const cleaned = raw.slice(0, maxLength * 4).normalize('NFC')
    .replace(BREAKING, ' ')
    .replace(FORMAT, keepEmojiJoiner)
    .replace(SPACES, ' ')
    .trim()
  const limited = [...cleaned].slice(0, maxLength).join('').trim()
  return limited === '' ? null : limited
}

export function deviceName (raw: string | null | undefined): string | null {
  return displayText(raw, DEVICE_NAME_MAX_LENGTH)
}

export function userAgent (raw: string | null | undefined): string | null {
  return displayText(raw, USER_AGENT_MAX_LENGTH)
}
