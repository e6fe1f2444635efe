/**
 * Cookie mode for browsers. STUB: being written (issue 12).
 */
import fp from 'fastify-plugin'
import type { Config } from '../../config.js'

export const refreshCookie = fp<{ cookies: Config['cookies'] }>(async () => {}, { name: 'vouch-refresh-cookie' })
