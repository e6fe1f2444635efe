/**
 * Every route an app registers, as the app itself announces them: Fastify
 * publishes each new instance on the `fastify.initialization` diagnostics
 * channel, and an onRoute hook added there sees every route from the
 * instance's creation on (including the plugins' own, and HEAD twins of GET
 * routes). Tables that must cover every route (the OpenAPI check, the input
 * fuzz) are built from this, so a new route cannot be forgotten.
 *
 * An onRequest hook added there too (the first of all, recording only) tells
 * which route answered a response: a URL that the router normalises or does
 * not match is answered by another route, or by none (the 404 handler).
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import type { ServerResponse } from 'node:http'
import type { FastifyInstance, RouteOptions } from 'fastify'

export interface RegisteredRoute {
  /** One method per entry (a route registered for several is listed once for each). */
  method: string
  url: string
  config: RouteOptions['config']
  schema: RouteOptions['schema']
}

export interface RegisteredRoutes {
  routes: RegisteredRoute[]
  /** `METHOD url` of the route that took the request `response` answers (as Fastify's `request.routeOptions` say); undefined for none. */
  answeredBy (response: ServerResponse): string | undefined
}

/** Runs `build` (which creates an app), waits until the app is ready, and returns what `build` returned with the app's routes. */
export async function withRegisteredRoutes<T extends { app: FastifyInstance }> (build: () => Promise<T>): Promise<T & RegisteredRoutes> {
  const routes: RegisteredRoute[] = []
  const answered = new WeakMap<ServerResponse, string>()
  const listen = (message: unknown) => {
    const { fastify } = message as { fastify: FastifyInstance }
    fastify.addHook('onRoute', (route) => {
      for (const method of [route.method].flat()) routes.push({ method, url: route.url, config: route.config, schema: route.schema })
    })
    fastify.addHook('onRequest', (request, reply, done) => {
      const { url } = request.routeOptions
      if (url !== undefined) answered.set(reply.raw, `${request.method} ${url}`)
      done()
    })
  }
  subscribe('fastify.initialization', listen)
  try {
    const built = await build()
    await built.app.ready()
    return { ...built, routes, answeredBy: (response) => answered.get(response) }
  } finally {
    unsubscribe('fastify.initialization', listen)
  }
}
