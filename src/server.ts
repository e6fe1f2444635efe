// Entry point: one vouch process (`npm start`). See src/cluster.ts for one per core.
import { loadConfig } from './config.js'
import { exitOnStartupError, serve } from './start.js'

try {
  await serve(loadConfig(process.env))
} catch (err) {
  exitOnStartupError(err)
}
