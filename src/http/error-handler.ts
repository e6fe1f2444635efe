/**
 * The one place where failures become responses. Every error, the domain's
 * and Fastify's own (validation, unknown route, body too large, wrong media
 * type, malformed JSON), is answered as `{statusCode, error, code, message}`
 * with a code from the catalogue in src/errors.ts. Internal details (stack
 * traces, SQL, hashes) are logged, never sent.
 */
import { randomUUID } from 'node:crypto'
import { STATUS_CODES } from 'node:http'
import type { Socket } from 'node:net'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { DomainError, errorCatalogue, type ErrorCode, type ErrorDetail } from '../errors.js'
import { isDatabaseUnavailable } from '../db/errors.js'
import { REQUEST_ID_HEADER } from './request-id.js'

/** Fastify's own errors that need more than their status to classify. */
const FASTIFY_CODES: Readonly<Record<string, { code: ErrorCode, message?: string }>> = {
  FST_ERR_CTP_INVALID_JSON_BODY: { code: 'validation_failed', message: 'The request body is not valid JSON.' },
  FST_ERR_CTP_EMPTY_JSON_BODY: { code: 'validation_failed', message: 'The request body is empty.' },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { code: 'validation_failed', message: 'Content-Length does not match the body.' },
  FST_ERR_CTP_BODY_TOO_LARGE: { code: 'payload_too_large' },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: { code: 'unsupported_media_type' },
}

const BY_STATUS: Readonly<Record<number, ErrorCode>> = {
  404: 'not_found',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
  429: 'rate_limited',
  503: 'service_unavailable',
}

function classify (err: FastifyError): { code: ErrorCode, message?: string, retryAfter?: number } {
  if (err instanceof DomainError) return { code: err.code, message: err.message, ...(err.retryAfter !== undefined && { retryAfter: err.retryAfter }) }
  if (err.validation) return { code: 'validation_failed', message: err.message }
  const known = FASTIFY_CODES[err.code]
  if (known) return known
  if (isDatabaseUnavailable(err)) return { code: 'service_unavailable' }
  const status = err.statusCode ?? 500
  if (err instanceof SyntaxError && status === 400) return FASTIFY_CODES.FST_ERR_CTP_INVALID_JSON_BODY!
  const byStatus = BY_STATUS[status]
  if (byStatus) return { code: byStatus }
  if (status >= 400 && status < 500) return { code: 'validation_failed' }
  return { code: 'internal_error' }
}

export function sendError (reply: FastifyReply, code: ErrorCode, message: string = errorCatalogue[code].message, retryAfter?: number): FastifyReply {
  const statusCode = errorCatalogue[code].status
  const config = reply.request.routeOptions.config as { auth?: string, client?: true | 'optional', admin?: true } | undefined
  if (statusCode === 401 && config?.auth === 'bearer') {
    reply.header('www-authenticate', 'Bearer error="invalid_token"')
  } else if (statusCode === 401 && (config?.client !== undefined || config?.admin === true)) {
    reply.header('www-authenticate', 'Basic realm="vouch"')
  }
  if (retryAfter !== undefined) reply.header('retry-after', String(retryAfter))
  return reply.code(statusCode).send({ statusCode, error: STATUS_CODES[statusCode] ?? 'Error', code, message })
}

/**
 * For Fastify's `frameworkErrors` option: a URL that cannot be decoded, or a
 * path parameter over the router's length limit, is answered before any
 * route or hook runs; give it the same shape (and no-store) as every error.
 */
export function frameworkError (err: FastifyError, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  reply.header('cache-control', 'no-store').header(REQUEST_ID_HEADER, request.id) // no hook runs before this answer
  const message = err.code === 'FST_ERR_BAD_URL' ? 'The URL is not valid.' : 'A path parameter is too long.'
  return sendError(reply, 'validation_failed', message)
}

/** Node's errors on a connection that have a code of their own; any other (not HTTP, headers too large) is a bad request. */
const CLIENT_ERROR_CODES: Readonly<Record<string, ErrorCode>> = {
  ERR_HTTP_REQUEST_TIMEOUT: 'request_timeout',
  HPE_CHUNK_EXTENSIONS_OVERFLOW: 'payload_too_large',
}

/**
 * For Fastify's `clientErrorHandler`: what Node reports on a connection
 * rather than a request (a request that did not arrive within its headers
 * or request timeout, bytes that are not HTTP) is answered in the same
 * shape, when the connection can still take an answer, and the connection
 * is closed.
 */
export function clientError (this: FastifyInstance, err: NodeJS.ErrnoException, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return
  const code: ErrorCode = CLIENT_ERROR_CODES[err.code ?? ''] ?? 'validation_failed'
  // No request was parsed, so no id was read: a fresh one ties the answer to this line.
  const reqId = randomUUID()
  this.log.debug({ err, code, reqId }, 'client error; closing the connection')
  if (socket.writable) {
    const { status, message } = errorCatalogue[code]
    const body = JSON.stringify({ statusCode: status, error: STATUS_CODES[status], code, message })
    socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nCache-Control: no-store\r\nX-Request-Id: ${reqId}\r\nConnection: close\r\n\r\n${body}`)
  }
  socket.destroy(err)
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The code and internal detail of a refusal, logged with the request (app.ts, AccessLog), never sent. */
    refusal: { code: ErrorCode, detail: ErrorDetail } | null
  }
}

export function registerErrorHandling (app: FastifyInstance): void {
  app.decorateRequest('refusal', null)
  app.setErrorHandler((err: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    const { code, message, retryAfter } = classify(err)
    const status = errorCatalogue[code].status
    if (status >= 500) request.log.error({ err }, 'request failed')
    // Which user, session or client a refusal concerned: for the access log's line only (the body has code and message).
    else if (err instanceof DomainError && err.detail !== undefined) request.refusal = { code, detail: err.detail }
    return sendError(reply, code, message, retryAfter)
  })

  app.setNotFoundHandler((request, reply) =>
    sendError(reply, 'not_found', `Route ${request.method} ${request.url.split('?')[0]} not found.`))
}
