/** The account page at /account. STUB: being written (issue 12). */
import type { FastifyPluginAsync } from 'fastify'

export const accountPageRoutes: FastifyPluginAsync = async () => {}
