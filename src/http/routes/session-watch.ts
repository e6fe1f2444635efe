/** GET /auth/session/watch. STUB: being written (issue 12). */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { Services } from '../services.js'

export const sessionWatchRoutes: FastifyPluginAsyncTypebox<{ services: Services }> = async () => {}
