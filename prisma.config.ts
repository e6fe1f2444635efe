import { defineConfig } from 'prisma/config'

// Used by the prisma CLI (client generation). The application itself reads
// DATABASE_URL through src/config.ts and migrates with src/db/migrate.ts.
export default defineConfig({
  schema: 'prisma/schema.prisma',
  migrations: { path: 'prisma/migrations' },
})
