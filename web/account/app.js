// @ts-check
/**
 * The account page (/account): sign in, create an account or ask for a reset
 * link; once signed in, the account's email, its devices (sign one out, or
 * all the others), a password change that keeps this device, sign out here
 * or everywhere.
 *
 * Built on the SDK in cookie mode: the refresh token lives in an HttpOnly
 * cookie that script cannot read, the access token in the SDK's memory. The
 * page keeps no token and no account data anywhere but the DOM, and clears
 * the DOM when it is signed out, whatever signed it out: this page, another
 * tab, another device (the SDK's signedOut event).
 */
import { createVouchClient } from './sdk.js'
import { errorMessage, isSessionError, isVouchError, signedOutMessage } from './messages.js'
import { createStatus } from './status.js'
import { deviceLabel, renderDevices } from './devices.js'
import { refreshTimes } from './format.js'

/** @typedef {import('./devices.js').Device} Device */
/** @typedef {{ text: string, tone: import('./status.js').Tone }} Message */
/** @typedef {'signin' | 'signup' | 'forgot'} FormName */

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

const ui = {
  main: byId('main'),
  loading: byId('loading'),
  signedOut: byId('signed-out'),
  signedOutTitle: byId('signed-out-title'),
  forms: {
    signin: /** @type {HTMLFormElement} */ (byId('signin-form')),
    signup: /** @type {HTMLFormElement} */ (byId('signup-form')),
    forgot: /** @type {HTMLFormElement} */ (byId('forgot-form')),
  },
  signinEmail: /** @type {HTMLInputElement} */ (byId('signin-email')),
  signinPassword: /** @type {HTMLInputElement} */ (byId('signin-password')),
  signupEmail: /** @type {HTMLInputElement} */ (byId('signup-email')),
  signupPassword: /** @type {HTMLInputElement} */ (byId('signup-password')),
  forgotEmail: /** @type {HTMLInputElement} */ (byId('forgot-email')),
  account: byId('account'),
  accountTitle: byId('account-title'),
  accountEmail: byId('account-email'),
  devices: /** @type {HTMLUListElement} */ (byId('devices')),
  devicesTitle: byId('devices-title'),
  refreshDevices: /** @type {HTMLButtonElement} */ (byId('refresh-devices')),
  revokeOthers: /** @type {HTMLButtonElement} */ (byId('revoke-others')),
  passwordForm: /** @type {HTMLFormElement} */ (byId('password-form')),
  currentPassword: /** @type {HTMLInputElement} */ (byId('current-password')),
  newPassword: /** @type {HTMLInputElement} */ (byId('new-password')),
  logoutAll: /** @type {HTMLButtonElement} */ (byId('logout-all')),
  logout: /** @type {HTMLButtonElement} */ (byId('logout')),
}

const TITLES = /** @type {Record<FormName, string>} */ ({
  signin: 'Sign in',
  signup: 'Create an account',
  forgot: 'Reset your password',
})

const status = createStatus(byId('status'))
const vouch = createVouchClient({ baseUrl: location.origin, mode: 'cookie' })

/** @type {'loading' | 'signed-out' | 'account'} */
let view = 'loading'
/** True until restore() has answered: a sign-out reported meanwhile is about a stale cookie, no news to the reader. */
let restoring = true
/**
 * What to say when the sign-out this page asked for arrives as a signedOut event.
 *
 * @type {Message | null}
 */
let ownSignOut = null
/** When the device list was last loaded (ms), to refresh it when the tab comes back. */
let devicesLoadedAt = 0

// ---------------------------------------------------------------- views

/** @param {'loading' | 'signed-out' | 'account'} next */
function showView (next) {
  view = next
  ui.main.dataset.view = next
  ui.loading.hidden = next !== 'loading'
  ui.signedOut.hidden = next !== 'signed-out'
  ui.account.hidden = next !== 'account'
}

/**
 * @param {FormName} name
 * @param {{ focus?: 'field' | 'title' }} [options]
 */
function showForm (name, { focus } = {}) {
  const typed = [ui.signinEmail, ui.signupEmail, ui.forgotEmail].find((input) => input.value.trim() !== '')?.value ?? ''
  for (const [key, form] of Object.entries(ui.forms)) form.hidden = key !== name
  ui.signedOutTitle.textContent = TITLES[name]
  const email = { signin: ui.signinEmail, signup: ui.signupEmail, forgot: ui.forgotEmail }[name]
  if (email.value === '') email.value = typed
  if (focus === 'title') ui.signedOutTitle.focus()
  if (focus === 'field') (firstEmpty(ui.forms[name]) ?? email).focus()
}

/**
 * @param {HTMLFormElement} form
 * @returns {HTMLInputElement | undefined}
 */
function firstEmpty (form) {
  return [...form.querySelectorAll('input')].find((input) => input.value === '')
}

/** Forgets everything shown about the account (a signed-out page must not show it). */
function clearAccount () {
  ui.accountEmail.textContent = ''
  ui.devices.replaceChildren()
  for (const input of document.querySelectorAll('input[type="password"]')) /** @type {HTMLInputElement} */ (input).value = ''
  devicesLoadedAt = 0
}

/**
 * @param {Message | null} message
 * @param {{ focus?: boolean }} [options]
 */
function enterSignedOut (message, { focus = false } = {}) {
  clearAccount()
  showView('signed-out')
  showForm('signin', focus ? { focus: 'title' } : {})
  if (message) status.show(message.text, message.tone)
}

/** @type {Promise<boolean> | null} */
let accountLoading = null

/**
 * Loads the profile and the devices, then shows them. Calls made at the
 * same time (the signedIn event and the sign-in that caused it) share one load.
 *
 * @param {{ focus?: boolean }} [options]
 */
async function enterAccount ({ focus = false } = {}) {
  accountLoading ??= loadAccount().finally(() => { accountLoading = null })
  if (await accountLoading && focus) ui.accountTitle.focus()
}

/** @returns {Promise<boolean>} whether the account is shown */
async function loadAccount () {
  try {
    const [profile, devices] = await Promise.all([vouch.me(), vouch.sessions()])
    ui.accountEmail.textContent = profile.email
    showDevices(devices)
    showView('account')
    return true
  } catch (err) {
    failed(err)
    if (view === 'loading') ui.loading.textContent = 'Your account could not be loaded. Reload the page to try again.'
    return false
  }
}

/** @param {Device[]} devices */
function showDevices (devices) {
  renderDevices(ui.devices, devices, signOutDevice)
  devicesLoadedAt = Date.now()
}

/**
 * @param {{ quiet?: boolean }} [options] quiet: a background refresh says nothing when it fails
 * @returns {Promise<boolean>} whether the list was reloaded
 */
async function reloadDevices ({ quiet = false } = {}) {
  try {
    const devices = await vouch.sessions()
    if (view !== 'account') return false
    showDevices(devices)
    return true
  } catch (err) {
    if (!quiet || isSessionError(err)) failed(err)
    return false
  }
}

// ---------------------------------------------------------------- helpers

/**
 * Runs `action` unless it is already running for this control. The control
 * is marked busy rather than disabled, so that keyboard focus stays on it.
 *
 * @param {HTMLElement} control a form or a button
 * @param {() => Promise<void>} action
 */
async function once (control, action) {
  if (control.getAttribute('aria-busy') === 'true') return
  const buttons = control instanceof HTMLFormElement ? [...control.querySelectorAll('button[type="submit"]')] : [control]
  control.setAttribute('aria-busy', 'true')
  for (const button of buttons) button.setAttribute('aria-disabled', 'true')
  try {
    await action()
  } finally {
    control.removeAttribute('aria-busy')
    for (const button of buttons) button.removeAttribute('aria-disabled')
  }
}

/**
 * Checks the fields in order; the first one that fails gets the message and focus.
 *
 * @param {Array<[HTMLInputElement, string]>} checks field, and what to say when it is empty
 * @returns {boolean}
 */
function filledIn (checks) {
  for (const [input] of checks) input.removeAttribute('aria-invalid')
  for (const [input, whenEmpty] of checks) {
    const empty = input.type === 'password' ? input.value === '' : input.value.trim() === ''
    const message = empty ? whenEmpty : input.type === 'email' && !/^[^@\s]+@[^@\s]+$/.test(input.value.trim()) ? 'Enter an email address such as name@example.com.' : null
    if (message) {
      invalid(input, message)
      return false
    }
  }
  return true
}

/**
 * @param {HTMLInputElement} input
 * @param {string} message
 */
function invalid (input, message) {
  input.setAttribute('aria-invalid', 'true')
  status.show(message, 'error')
  input.focus()
  if (input.type === 'password') input.select()
}

/**
 * A failed call: its sentence, and focus on the field it concerns.
 *
 * @param {unknown} err
 * @param {{ field?: HTMLInputElement, overrides?: import('./messages.js').Overrides }} [options]
 */
function failed (err, { field, overrides } = {}) {
  if (isSessionError(err)) {
    // The SDK signs the page out on these and its signedOut event says why; if it has not (yet), sign out here.
    if (view !== 'signed-out') enterSignedOut({ text: errorMessage(err), tone: 'warning' }, { focus: view === 'account' })
    return
  }
  const message = errorMessage(err, overrides)
  if (field && !field.closest('[hidden]')) invalid(field, message)
  else status.show(message, 'error')
}

// ---------------------------------------------------------------- signed out

// The toggles between the three forms name the form they show (aria-controls="signup-form").
for (const button of ui.signedOut.querySelectorAll('button[aria-controls]')) {
  button.addEventListener('click', () => {
    status.clear()
    const name = /** @type {FormName} */ (button.getAttribute('aria-controls')?.replace(/-form$/, ''))
    showForm(name, { focus: 'field' })
  })
}

ui.forms.signin.addEventListener('submit', (event) => {
  event.preventDefault()
  void once(ui.forms.signin, async () => {
    if (!filledIn([[ui.signinEmail, 'Enter your email.'], [ui.signinPassword, 'Enter your password.']])) return
    status.clear()
    try {
      await vouch.login({ email: ui.signinEmail.value.trim(), password: ui.signinPassword.value })
    } catch (err) {
      failed(err, { field: ui.signinPassword })
      return
    }
    ui.signinPassword.value = ''
    await enterAccount({ focus: true })
  })
})

ui.forms.signup.addEventListener('submit', (event) => {
  event.preventDefault()
  void once(ui.forms.signup, async () => {
    if (!filledIn([[ui.signupEmail, 'Enter your email.'], [ui.signupPassword, 'Choose a password.']])) return
    status.clear()
    try {
      await vouch.register({ email: ui.signupEmail.value.trim(), password: ui.signupPassword.value })
    } catch (err) {
      const field = isVouchError(err) && err.code === 'email_taken' ? ui.signupEmail : ui.signupPassword
      failed(err, { field })
      return
    }
    ui.signupPassword.value = ''
    status.show('Your account is ready.', 'success')
    await enterAccount({ focus: true })
  })
})

ui.forms.forgot.addEventListener('submit', (event) => {
  event.preventDefault()
  void once(ui.forms.forgot, async () => {
    if (!filledIn([[ui.forgotEmail, 'Enter the email of your account.']])) return
    const email = ui.forgotEmail.value.trim()
    try {
      await vouch.forgotPassword(email)
    } catch (err) {
      failed(err, { field: ui.forgotEmail })
      return
    }
    ui.signinEmail.value = email
    showForm('signin', { focus: 'title' })
    status.show(`If an account exists for ${email}, we have sent it a reset link. Check your inbox.`, 'success')
  })
})

// ---------------------------------------------------------------- signed in

/**
 * @param {Device} device
 * @param {HTMLButtonElement} button
 */
function signOutDevice (device, button) {
  void once(button, async () => {
    const name = deviceLabel(device)
    try {
      await vouch.revokeSession(device.id)
      status.show(`${name} is signed out.`, 'success')
    } catch (err) {
      if (!(isVouchError(err) && err.code === 'not_found')) {
        failed(err)
        return
      }
      status.show(`${name} was already signed out.`, 'info')
    }
    await reloadDevices()
    // The button is gone with its device: keep keyboard focus in the list.
    ui.devicesTitle.focus()
  })
}

ui.refreshDevices.addEventListener('click', () => {
  void once(ui.refreshDevices, async () => {
    if (await reloadDevices()) status.show('The device list is up to date.', 'info')
  })
})

ui.revokeOthers.addEventListener('click', () => {
  void once(ui.revokeOthers, async () => {
    try {
      await vouch.revokeOtherSessions()
    } catch (err) {
      failed(err)
      return
    }
    status.show('All other devices are signed out. This device stays signed in.', 'success')
    await reloadDevices()
  })
})

ui.passwordForm.addEventListener('submit', (event) => {
  event.preventDefault()
  void once(ui.passwordForm, async () => {
    if (!filledIn([[ui.currentPassword, 'Enter your current password.'], [ui.newPassword, 'Choose a new password.']])) return
    try {
      await vouch.changePassword({ currentPassword: ui.currentPassword.value, newPassword: ui.newPassword.value })
    } catch (err) {
      const wrongCurrent = isVouchError(err) && err.code === 'invalid_credentials'
      failed(err, {
        field: wrongCurrent ? ui.currentPassword : ui.newPassword,
        overrides: { invalid_credentials: 'The current password is incorrect.' },
      })
      return
    }
    ui.currentPassword.value = ''
    ui.newPassword.value = ''
    status.show('Your password has been changed. Every other device has been signed out; this one stays signed in.', 'success')
    await reloadDevices()
  })
})

/**
 * Signs out through `call`, then shows `message` (through the signedOut
 * event the SDK emits, or directly if it emitted none).
 *
 * @param {HTMLButtonElement} button
 * @param {() => Promise<unknown>} call
 * @param {Message} message
 */
function signOutWith (button, call, message) {
  void once(button, async () => {
    ownSignOut = message
    try {
      await call()
    } catch (err) {
      ownSignOut = null
      failed(err)
      return
    }
    if (view === 'account') {
      ownSignOut = null
      enterSignedOut(message, { focus: true })
    }
  })
}

ui.logout.addEventListener('click', () =>
  signOutWith(ui.logout, () => vouch.logout(), { text: 'You are signed out on this device.', tone: 'info' }))

ui.logoutAll.addEventListener('click', () =>
  signOutWith(ui.logoutAll, () => vouch.logoutAll(), { text: 'You are signed out on every device.', tone: 'info' }))

// ---------------------------------------------------------------- events

vouch.on('signedOut', (detail) => {
  const reason = /** @type {{ reason?: string } | undefined} */ (detail)?.reason ?? 'logout'
  const own = ownSignOut
  ownSignOut = null
  if (restoring) {
    // A stale cookie found on arrival is no news; a replayed one is.
    if (reason === 'reuse_detected') status.show(signedOutMessage(reason).text, 'warning')
    return
  }
  const wasAccount = view === 'account'
  enterSignedOut(own ?? signedOutMessage(reason), { focus: wasAccount })
})

vouch.on('signedIn', () => {
  // Another tab signed in (this page's own sign-in loads the account itself).
  if (view === 'signed-out') void enterAccount()
})

document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible' && view === 'account' && Date.now() - devicesLoadedAt > 30_000) {
    void reloadDevices({ quiet: true })
  }
})

setInterval(() => { if (view === 'account') refreshTimes(ui.devices) }, 30_000)

// ---------------------------------------------------------------- start

async function start () {
  let signedIn = false
  try {
    signedIn = await vouch.restore()
  } catch (err) {
    status.show(errorMessage(err), 'error')
  }
  restoring = false
  if (view !== 'loading') return // an event got there first
  if (signedIn) {
    await enterAccount()
  } else {
    enterSignedOut(null)
    // The reset page's "Ask for a new link" leads here.
    if (location.hash === '#forgot') showForm('forgot', { focus: 'field' })
  }
}

void start()
