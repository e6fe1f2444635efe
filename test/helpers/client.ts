/** Small helpers for talking to the app through `inject`, so tests read as scenarios. */
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'

import type { TokenPair } from '../../src/domain/sessions.js'

export type { TokenPair }

export const PASSWORD = 'correct horse battery staple'

export function bearer (accessToken: string): { authorization: string } {
  return { authorization: `Bearer ${accessToken}` }
}

let counter = 0
/** A fresh, unique email for each call. */
export function uniqueEmail (prefix = 'user'): string {
  counter += 1
  return `${prefix}-${process.pid}-${counter}@example.com`
}

export function post (app: FastifyInstance, url: string, payload?: object, headers: Record<string, string> = {}) {
  return app.inject({ method: 'POST', url, ...(payload !== undefined && { payload }), headers })
}

export async function register (app: FastifyInstance, email = uniqueEmail(), password = PASSWORD, deviceName?: string) {
  const res = await post(app, '/auth/register', { email, password, ...(deviceName && { deviceName }) })
  if (res.statusCode !== 201) throw new Error(`register failed: ${res.statusCode} ${res.body}`)
  const body = res.json() as TokenPair & { user: { id: string, email: string, createdAt: string } }
  return { ...body, email, password }
}

export async function login (app: FastifyInstance, email: string, password = PASSWORD, deviceName?: string): Promise<TokenPair> {
  const res = await post(app, '/auth/login', { email, password, ...(deviceName && { deviceName }) })
  if (res.statusCode !== 200) throw new Error(`login failed: ${res.statusCode} ${res.body}`)
  return res.json()
}

export function me (app: FastifyInstance, accessToken: string) {
  return app.inject({ method: 'GET', url: '/auth/me', headers: bearer(accessToken) })
}

export function refresh (app: FastifyInstance, refreshToken: string) {
  return post(app, '/auth/refresh', { refreshToken })
}

/** The `code` of an error response. */
export function codeOf (res: LightMyRequestResponse): string | undefined {
  try {
    return (res.json() as { code?: string }).code
  } catch {
    return undefined
  }
}
