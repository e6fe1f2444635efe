/**
 * Where a request comes from, as security events and sessions record it:
 * its IP (as trust-proxy resolved it, when that is an IP address: under
 * TRUST_PROXY=true the client writes X-Forwarded-For itself, and anything
 * else there falls back to the connection's address) and its user agent and
 * device name, cleaned for display (src/domain/device-info.ts).
 */
import { isIP } from 'node:net'
import type { FastifyRequest } from 'fastify'
import { deviceName, userAgent } from '../domain/device-info.js'
import type { ClientInfo } from '../domain/security-events.js'
import type { DeviceInfo } from '../domain/sessions.js'

export function clientOf (request: FastifyRequest): ClientInfo & { ip: string } {
  const ip = isIP(request.ip) !== 0 ? request.ip : request.socket.remoteAddress ?? ''
  return { ip, userAgent: userAgent(request.headers['user-agent']) }
}

/** The device a request comes from, named `name` by the client. */
export function deviceOf (request: FastifyRequest, name: string | undefined): DeviceInfo {
  return { ...clientOf(request), deviceName: deviceName(name) }
}
