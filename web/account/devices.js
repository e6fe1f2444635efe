// @ts-check
/**
 * The device list: one <li data-session-id data-current> per session, this
 * device first, then by last use. Built with DOM calls and textContent only:
 * device names and user agents come from whoever signed in, and must never
 * be parsed as HTML.
 */
import { describeUserAgent } from './sdk.js'
import { timeElement } from './format.js'

/**
 * A session as the SDK lists it (GET /auth/sessions).
 *
 * @typedef {object} Device
 * @property {string} id
 * @property {string | null} deviceName
 * @property {string | null} userAgent
 * @property {string | null} ip
 * @property {string | Date} createdAt
 * @property {string | Date} lastUsedAt
 * @property {boolean} current
 */

/**
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {string} [className]
 * @param {string} [text]
 * @returns {HTMLElementTagNameMap[K]}
 */
function el (tag, className, text) {
  const element = document.createElement(tag)
  if (className) element.className = className
  if (text !== undefined) element.textContent = text
  return element
}

/**
 * @param {string} label
 * @param {Node} value
 */
function meta (label, value) {
  const row = el('div')
  const dd = el('dd')
  dd.append(value)
  row.append(el('dt', undefined, label), dd)
  return row
}

/**
 * How messages name a device: "Ana's laptop (Firefox 128 on Windows 10 or 11)", "Safari 17 on iOS 17".
 *
 * @param {Device} device
 */
export function deviceLabel (device) {
  const agent = describeUserAgent(device.userAgent)
  return device.deviceName ? `${device.deviceName} (${agent})` : agent
}

/**
 * @param {Device[]} devices
 * @returns {Device[]}
 */
function ordered (devices) {
  return [...devices].sort((a, b) =>
    Number(b.current) - Number(a.current) || new Date(b.lastUsedAt).getTime() - new Date(a.lastUsedAt).getTime())
}

/**
 * Replaces the list's content.
 *
 * @param {HTMLUListElement} list
 * @param {Device[]} devices
 * @param {(device: Device, button: HTMLButtonElement) => void} onSignOut
 */
export function renderDevices (list, devices, onSignOut) {
  const items = ordered(devices).map((device, index) => {
    const item = el('li', 'device')
    item.dataset.sessionId = device.id
    item.dataset.current = String(device.current)

    // The name leads when the device has one; otherwise its browser and system do, marked "Unnamed device".
    const titleId = `device-${index}-title`
    const subtitleId = `device-${index}-subtitle`
    const agent = describeUserAgent(device.userAgent)
    const info = el('div', 'device-info')
    const head = el('div', 'device-head')
    const title = el('h3', 'device-title', device.deviceName || agent)
    title.id = titleId
    head.append(title)
    if (device.current) head.append(el('span', 'badge', 'This device'))
    const subtitle = el('p', device.deviceName ? 'device-agent' : 'device-agent unnamed', device.deviceName ? agent : 'Unnamed device')
    subtitle.id = subtitleId

    const details = el('dl', 'device-meta')
    details.append(
      meta('IP address', document.createTextNode(device.ip ?? 'unknown')),
      meta('Last used', timeElement(device.lastUsedAt)),
      meta('Signed in', timeElement(device.createdAt)),
    )
    info.append(head, subtitle, details)
    item.append(info)

    if (!device.current) {
      const button = el('button', 'secondary', 'Sign out')
      button.type = 'button'
      // The visible name stays "Sign out"; which device it is comes from the description.
      button.setAttribute('aria-describedby', `${titleId} ${subtitleId}`)
      button.addEventListener('click', () => onSignOut(device, button))
      item.append(button)
    }
    return item
  })
  list.replaceChildren(...items)
}
