// Generates the Prisma clients (src/db/generated/<provider>) without network access.
//
// Every prisma CLI command first tries to download the native schema engine.
// Pointing PRISMA_SCHEMA_ENGINE_BINARY at a local stub skips that download;
// `prisma generate` itself only needs Prisma's bundled WebAssembly.
// The PostgreSQL schema is derived from prisma/schema.prisma (src/db/schema.ts)
// and written beside it as schema.postgresql.prisma (not committed).
import { spawnSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { PROVIDERS, prismaDir, schemaFor, sourceSchemaPath } from '../src/db/schema.js'

const stub = fileURLToPath(new URL('./schema-engine-stub.sh', import.meta.url))

for (const provider of PROVIDERS) {
  let schemaPath = sourceSchemaPath
  if (provider !== 'sqlite') {
    schemaPath = path.join(prismaDir, `schema.${provider}.prisma`)
    writeFileSync(schemaPath, `// Generated from schema.prisma by scripts/prisma-generate.ts: do not edit.\n${schemaFor(provider)}`)
  }
  const result = spawnSync('prisma', ['generate', '--no-hints', '--schema', schemaPath], {
    stdio: 'inherit',
    shell: process.platform === 'win32',
    env: { ...process.env, PRISMA_SCHEMA_ENGINE_BINARY: stub, PRISMA_HIDE_UPDATE_MESSAGE: '1' },
  })
  if (result.status !== 0) process.exit(result.status ?? 1)
}
