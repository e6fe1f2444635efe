// @ts-check
/**
 * The reset page (/account/reset-password?token=…), where the mailed link
 * leads. The token is read once and removed from the address bar at once
 * (history.replaceState), so it does not stay in the history, in a
 * bookmark, or on the screen; the page sends no Referer (Referrer-Policy:
 * no-referrer). It is sent once, with the new password.
 */
import { createVouchClient } from './sdk.js'
import { errorMessage, isVouchError } from './messages.js'
import { createStatus } from './status.js'

/**
 * @template {HTMLElement} T
 * @param {string} id
 * @returns {T}
 */
function byId (id) {
  const element = document.getElementById(id)
  if (!element) throw new Error(`#${id} is missing from the page`)
  return /** @type {T} */ (element)
}

const form = /** @type {HTMLFormElement} */ (byId('reset-form'))
const password = /** @type {HTMLInputElement} */ (byId('reset-password'))
const confirm = /** @type {HTMLInputElement} */ (byId('reset-password-confirm'))
const title = byId('reset-title')
const next = byId('reset-next')
const nextLink = /** @type {HTMLAnchorElement} */ (next.querySelector('a'))
const status = createStatus(byId('status'))

/** @type {string | null} */
let token = new URLSearchParams(location.search).get('token')
if (location.search !== '') history.replaceState(history.state, '', location.pathname)

/**
 * Ends the page on a link: to the account after a reset, or to ask for a new link.
 *
 * @param {string} heading
 * @param {string} linkText
 * @param {string} href
 */
function finish (heading, linkText, href) {
  token = null
  form.hidden = true
  password.value = ''
  confirm.value = ''
  title.textContent = heading
  nextLink.textContent = linkText
  nextLink.href = href
  next.hidden = false
  title.focus()
}

/**
 * @param {HTMLInputElement} input
 * @param {string} message
 */
function invalid (input, message) {
  input.setAttribute('aria-invalid', 'true')
  status.show(message, 'error')
  input.focus()
}

if (!token) {
  status.show('This reset link is incomplete. Copy the whole link from the mail, or ask for a new one.', 'error')
  finish('This link does not work', 'Ask for a new link', '/account#forgot')
} else {
  form.hidden = false
}

let busy = false
form.addEventListener('submit', (event) => {
  event.preventDefault()
  if (busy || token === null) return
  password.removeAttribute('aria-invalid')
  confirm.removeAttribute('aria-invalid')
  if (password.value === '') return invalid(password, 'Choose a new password.')
  if (confirm.value !== password.value) return invalid(confirm, 'The two passwords do not match.')
  void submit(token, password.value)
})

/**
 * @param {string} resetToken
 * @param {string} newPassword
 */
async function submit (resetToken, newPassword) {
  busy = true
  form.setAttribute('aria-busy', 'true')
  // No stream or cross-tab watch for this one call; other tabs learn of the reset from vouch.
  const vouch = createVouchClient({ baseUrl: location.origin, mode: 'cookie', watch: false })
  try {
    // With RESET_SIGNS_IN, vouch also signs this browser in (the refresh cookie is set).
    const { signedIn } = await vouch.resetPassword({ token: resetToken, newPassword })
    if (signedIn) {
      status.show('Your password has been changed, and this device is signed in. Every other device has been signed out.', 'success')
      finish('Your password is changed', 'Go to your account', '/account')
    } else {
      status.show('Your password has been changed. Every device that was signed in has been signed out.', 'success')
      finish('Your password is changed', 'Sign in with your new password', '/account')
    }
  } catch (err) {
    if (isVouchError(err) && err.code === 'reset_token_invalid') {
      status.show(errorMessage(err), 'error')
      finish('This link does not work', 'Ask for a new link', '/account#forgot')
    } else {
      invalid(password, errorMessage(err))
    }
  } finally {
    vouch.close()
    busy = false
    form.removeAttribute('aria-busy')
  }
}
