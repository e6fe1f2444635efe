// @ts-check
/**
 * The pages' one message area (#status: role="status", aria-live="polite").
 * A message repeated word for word is cleared first and set a moment later,
 * so that screen readers announce it again.
 */

/** @typedef {'info' | 'success' | 'warning' | 'error'} Tone */

/**
 * @param {HTMLElement} element
 */
export function createStatus (element) {
  let pending = 0
  return {
    /**
     * @param {string} text
     * @param {Tone} [tone]
     */
    show (text, tone = 'info') {
      clearTimeout(pending)
      element.dataset.tone = tone
      if (element.textContent === text) {
        element.textContent = ''
        pending = window.setTimeout(() => { element.textContent = text }, 100)
      } else {
        element.textContent = text
      }
    },
    clear () {
      clearTimeout(pending)
      element.textContent = ''
      delete element.dataset.tone
    },
  }
}
