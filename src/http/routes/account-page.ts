/**
 * The account page at /account and the reset page that RESET_URL points to
 * by default, as static files: web/account/ (HTML, CSS, ES modules) and the
 * client SDK's build (packages/client/dist) at /account/sdk/. No templating,
 * so nothing a request carries ever lands in a page.
 *
 * Invariants:
 * - Only these URLs answer: /account, /account/, /account/reset-password,
 *   /account/assets/<name>.{js,css,svg} (one level, web/account/) and
 *   /account/sdk/<path>.js (the SDK's modules). Everything else under
 *   /account, including every traversal (`..`, encoded or not, `//`, `.`
 *   segments), is the catalogue's `not_found`, like any unknown route:
 *   @fastify/static refuses non-canonical paths with a 403 error, which this
 *   context turns into the ordinary 404.
 * - Page responses carry PAGE_CSP (scripts, styles, fetches and images from
 *   vouch's own origin only; no inline script or style, no framing, no
 *   <base>, forms post only to vouch). The API keeps its deny-all CSP; so do
 *   error answers under /account, which are JSON.
 * - `cache-control: no-store` (set for every response by the security
 *   headers) is kept: a signed-in page is then never restored from the
 *   back/forward cache after signing out, and the files are small.
 */
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import fastifyStatic from '@fastify/static'
import type { FastifyError, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'

/** The page CSP, exactly as documented (README "Account page"). */
export const PAGE_CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; " +
  "img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

/** web/account, from src/http/routes and from dist/http/routes alike. */
export const PAGE_ROOT = fileURLToPath(new URL('../../../web/account/', import.meta.url))

/** The SDK's build, found through the workspace package (not a path into packages/). */
export const SDK_ROOT = path.join(path.dirname(fileURLToPath(import.meta.resolve('@vouch/client/package.json'))), 'dist')

/** Page URL → its file in PAGE_ROOT. */
const PAGES: Readonly<Record<string, string>> = {
  '/account': 'index.html',
  '/account/': 'index.html',
  '/account/reset-password': 'reset-password.html',
}

/** What /account/assets/ serves: flat, lower-case names, three kinds. */
const ASSET = /^\/[a-z0-9][a-z0-9-]*\.(?:js|css|svg)$/
/** What /account/sdk/ serves: the SDK's modules only (no .d.ts, no source maps). */
const SDK_MODULE = /^\/(?:[A-Za-z0-9_-]+\/)*[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*\.js$/

const STATIC_OPTIONS = {
  wildcard: true,
  index: false,
  list: false,
  dotfiles: 'ignore',
  // Keep the no-store set for every response (see the header comment).
  cacheControl: false,
  acceptRanges: false,
} as const

export const accountPageRoutes: FastifyPluginAsync = async (app) => {
  // Encapsulated: this context's hook and error handler apply to the page routes only.
  app.addHook('onSend', async (_request, reply) => {
    if (reply.statusCode < 400) reply.header('content-security-policy', PAGE_CSP)
  })

  const apiErrorHandler = app.errorHandler
  app.setErrorHandler(function (this: typeof app, err: FastifyError, request: FastifyRequest, reply: FastifyReply) {
    // @fastify/static's answer to a path it will not resolve ("..", "//", an alias).
    if (err.code === 'FST_STATIC_FORBIDDEN_PATH' || err.statusCode === 403) return reply.callNotFound()
    return apiErrorHandler.call(this, err, request, reply)
  })

  await app.register(fastifyStatic, {
    ...STATIC_OPTIONS,
    root: PAGE_ROOT,
    prefix: '/account/assets/',
    // reply.sendFile(file) of a page route arrives here too, with the bare file name.
    allowedPath: (pathName, _root, request) =>
      ASSET.test(pathName) || PAGES[request.routeOptions.url ?? ''] === pathName.replace(/^\//, ''),
  })
  await app.register(fastifyStatic, {
    ...STATIC_OPTIONS,
    root: SDK_ROOT,
    prefix: '/account/sdk/',
    decorateReply: false,
    allowedPath: (pathName) => SDK_MODULE.test(pathName),
  })

  // No schemas: these routes take no input (a query such as the reset link's ?token= is read by the page's script,
  // never by the server) and answer files, not JSON.
  for (const [url, file] of Object.entries(PAGES)) {
    app.get(url, (_request, reply) => reply.sendFile(file))
  }
}
