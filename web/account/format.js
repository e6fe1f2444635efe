// @ts-check
/**
 * Times in the device list: relative while recent ("5 minutes ago"), a date
 * after that, always inside <time datetime="…"> with the full local time as
 * its title, so both people and tests can read it.
 */

const relative = new Intl.RelativeTimeFormat('en', { numeric: 'auto' })
const dateOnly = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium' })
const full = new Intl.DateTimeFormat(undefined, { dateStyle: 'full', timeStyle: 'short' })

/** [unit, seconds in it, use it below this many seconds] */
const UNITS = /** @type {const} */ ([
  ['minute', 60, 3600],
  ['hour', 3600, 86400],
  ['day', 86400, 86400 * 30],
])

/**
 * @param {Date} date
 * @param {number} [now] ms
 * @returns {string}
 */
export function relativeTime (date, now = Date.now()) {
  const seconds = (date.getTime() - now) / 1000
  const abs = Math.abs(seconds)
  if (abs < 60) return 'just now'
  for (const [unit, size, below] of UNITS) {
    if (abs < below) return relative.format(Math.round(seconds / size), unit)
  }
  return dateOnly.format(date)
}

/**
 * @param {string | Date} value an ISO timestamp, or a Date
 * @returns {HTMLTimeElement}
 */
export function timeElement (value) {
  const date = new Date(value)
  const element = document.createElement('time')
  if (Number.isNaN(date.getTime())) {
    element.textContent = 'unknown'
    return element
  }
  element.dateTime = date.toISOString()
  element.title = full.format(date)
  element.textContent = relativeTime(date)
  return element
}

/**
 * Brings every relative time under `root` up to date (the list stays open
 * for a while).
 *
 * @param {ParentNode} root
 */
export function refreshTimes (root) {
  for (const element of root.querySelectorAll('time[datetime]')) {
    element.textContent = relativeTime(new Date(/** @type {HTMLTimeElement} */ (element).dateTime))
  }
}
