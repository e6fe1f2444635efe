/**
 * @vouch/verifier/express: Express (4 and 5) and Connect middleware for
 * resource servers. It checks the request's bearer token with the verifier
 * and puts the claims on `req.user`, or answers in vouch's error shape: 401
 * with a Bearer challenge for a verdict on the token, 503 with Retry-After
 * when the verifier cannot decide. No dependency on express: the few request
 * and response members it uses are declared here, and it answers with the
 * plain `statusCode`/`setHeader`/`end` of Node's ServerResponse.
 *
 * @module
 */
import { VerifierError } from './errors.js'
import type { VerifierOptions } from './options.js'
import { createVerifier, type VerifiedToken, type Verifier } from './verifier.js'

/**
 * What the middleware reads from a request (Express's and Connect's requests have it).
 *
 * @example
 * app.get('/orders', (req: AuthenticatedRequest, res) => res.json({ owner: req.user!.sub }))
 */
export interface AuthenticatedRequest {
  headers: { authorization?: string | undefined }
  /** Set by the middleware once the token is verified. */
  user?: VerifiedToken | undefined
}

/**
 * What the middleware writes to when it refuses a request (Node's ServerResponse has it).
 *
 * @example
 * const res: ResponseLike = { statusCode: 200, setHeader: () => {}, end: () => {} }
 */
export interface ResponseLike {
  statusCode: number
  setHeader (name: string, value: string): unknown
  end (body?: string): unknown
}

/**
 * The `next` of Express and Connect.
 *
 * @example
 * const next: NextFunction = (err) => { if (err) console.error(err) }
 */
export type NextFunction = (err?: unknown) => void

/**
 * The middleware, with the verifier it uses (for `ready()` and `close()`).
 *
 * @example
 * const auth = vouchExpress({ vouchUrl, issuer, audience: 'vouch', clientId, clientSecret })
 * await auth.verifier.ready()
 */
export interface VouchMiddleware {
  (req: AuthenticatedRequest, res: ResponseLike, next: NextFunction): void
  readonly verifier: Verifier
}

/**
 * Creates the middleware from the verifier's options, or around a verifier
 * already made. Mount it before the routes it protects.
 *
 * @example
 * import express from 'express'
 * import { vouchExpress } from '@vouch/verifier/express'
 *
 * const auth = vouchExpress({ vouchUrl, issuer, audience: 'vouch', clientId: 'orders', clientSecret })
 * const app = express()
 * app.get('/health', (req, res) => res.json({ ok: true }))     // before: public
 * app.use(auth)
 * app.get('/orders', (req, res) => res.json({ owner: req.user!.sub }))
 * await auth.verifier.ready()
 * app.listen(4000)
 */
export function vouchExpress (options: VerifierOptions | { verifier: Verifier }): VouchMiddleware {
  const verifier = 'verifier' in options ? options.verifier : createVerifier(options)
  const middleware = (req: AuthenticatedRequest, res: ResponseLike, next: NextFunction) => {
    verifier.verifyAuthorization(req.headers.authorization).then((claims) => {
      req.user = claims
      next()
    }, (err: unknown) => {
      if (!(err instanceof VerifierError)) return next(err)
      res.statusCode = err.status
      for (const [name, value] of Object.entries(err.headers)) res.setHeader(name, value)
      res.end(JSON.stringify(err.body))
    })
  }
  return Object.assign(middleware, { verifier })
}

export default vouchExpress
