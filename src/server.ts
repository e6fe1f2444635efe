// Entry point: one vouch process (`npm start`, which gives it the Node flags of
// src/runtime.ts). See src/cluster.ts for one per core.
import { loadConfig } from './config.js'
import { exitOnStartupError, serve } from './start.js'

try {
  await serve(loadConfig(process.env))
} catch (err) {
  exitOnStartupError(err)
}
