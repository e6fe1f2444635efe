// Generates the Prisma client (src/db/generated) without network access.
//
// Every prisma CLI command first tries to download the native schema engine.
// Pointing PRISMA_SCHEMA_ENGINE_BINARY at a local stub skips that download;
// `prisma generate` itself only needs Prisma's bundled WebAssembly.
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const stub = fileURLToPath(new URL('./schema-engine-stub.sh', import.meta.url))
const result = spawnSync('prisma', ['generate', '--no-hints'], {
  stdio: 'inherit',
  shell: process.platform === 'win32',
  env: { ...process.env, PRISMA_SCHEMA_ENGINE_BINARY: stub, PRISMA_HIDE_UPDATE_MESSAGE: '1' },
})
process.exit(result.status ?? 1)
