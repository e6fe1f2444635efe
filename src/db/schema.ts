/**
 * One data model, two databases. prisma/schema.prisma is written for SQLite;
 * the PostgreSQL schema is derived from it here by swapping the datasource
 * provider and the client's output folder, nothing else, so the two cannot
 * describe different models. Client generation, migrations and the drift
 * test all take their schema from `schemaFor`.
 */
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

export type Provider = 'sqlite' | 'postgresql'
export const PROVIDERS: readonly Provider[] = ['sqlite', 'postgresql']

export const prismaDir = fileURLToPath(new URL('../../prisma/', import.meta.url))
export const sourceSchemaPath = path.join(prismaDir, 'schema.prisma')

export function providerOf (databaseUrl: string): Provider {
  if (databaseUrl.startsWith('file:')) return 'sqlite'
  if (/^postgres(ql)?:\/\//.test(databaseUrl)) return 'postgresql'
  throw new TypeError(`unsupported database URL scheme: ${databaseUrl.split(':')[0]}`)
}

export function migrationsDirOf (provider: Provider): string {
  return path.join(prismaDir, 'migrations', provider)
}

/** The schema text for `provider`. */
export function schemaFor (provider: Provider): string {
  const source = readFileSync(sourceSchemaPath, 'utf8')
  if (provider === 'sqlite') return source
  const derived = source
    .replace(/(datasource db \{\s*provider\s*=\s*)"sqlite"/, `$1"${provider}"`)
    .replace(/(output\s*=\s*"[^"]*\/generated\/)sqlite"/, `$1${provider}"`)
  if (!derived.includes(`provider = "${provider}"`) || !derived.includes(`/generated/${provider}"`)) {
    throw new Error('prisma/schema.prisma no longer has the datasource/output lines src/db/schema.ts rewrites')
  }
  return derived
}
