/**
 * Applies the committed migrations in prisma/migrations with Prisma's own
 * schema engine, compiled to WebAssembly (@prisma/schema-engine-wasm).
 *
 * The prisma CLI cannot run here (it downloads a native engine first), but the
 * WebAssembly engine is the same code: it records applied migrations in
 * `_prisma_migrations` exactly like `prisma migrate deploy`, so a connected
 * machine sees the same history. Applying is idempotent.
 */
import { readFile, readdir } from 'node:fs/promises'
import path from 'node:path'
import { PrismaPg } from '@prisma/adapter-pg'
import {
  bindMigrationAwareSqlAdapterFactory, type SqlDriverAdapter, type SqlMigrationAwareDriverAdapterFactory,
} from '@prisma/driver-adapter-utils'
import pg from 'pg'
import { adapterFor } from './adapter.js'
import { migrationsDirOf, prismaDir, providerOf, schemaFor, sourceSchemaPath } from './schema.js'

type SchemaEngineModule = typeof import('@prisma/schema-engine-wasm')
type SchemaEngine = Awaited<ReturnType<SchemaEngineModule['SchemaEngine']['new']>>

const noFilters = { externalTables: [], externalEnums: [] }

/** The slice of the WebAssembly global used here (TypeScript's ES libs leave it out). */
interface WasmApi {
  instantiate (bytes: Uint8Array, imports: object): Promise<{ instance: { exports: Record<string, unknown> } }>
}

let engineModule: Promise<SchemaEngineModule> | undefined

/** Node 20 cannot import a .wasm module directly, so instantiate it by hand. */
function loadEngineModule (): Promise<SchemaEngineModule> {
  engineModule ??= (async () => {
    const bindingsUrl = import.meta.resolve('@prisma/schema-engine-wasm/schema_engine_bg')
    const bindings = await import(bindingsUrl)
    const wasm = await readFile(new URL('schema_engine_bg.wasm', bindingsUrl))
    const { instance } = await (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly
      .instantiate(wasm, { './schema_engine_bg.js': bindings })
    bindings.__wbg_set_wasm(instance.exports)
    ;(instance.exports as { __wbindgen_start: () => void }).__wbindgen_start()
    return bindings as SchemaEngineModule
  })()
  return engineModule
}

async function withEngine<T> (databaseUrl: string, run: (engine: SchemaEngine, schema: string) => Promise<T>): Promise<T> {
  const { SchemaEngine } = await loadEngineModule()
  const schema = schemaFor(providerOf(databaseUrl))
  // The engine never closes the connections it opens, and an open SQLite
  // connection keeps its lock: track them and close them when done.
  const factory = engineAdapterFor(databaseUrl)
  const opened: SqlDriverAdapter[] = []
  const track = async (connect: () => Promise<SqlDriverAdapter>) => {
    const connection = await connect()
    opened.push(connection)
    return connection
  }
  const adapter = bindMigrationAwareSqlAdapterFactory({
    provider: factory.provider,
    adapterName: factory.adapterName,
    connect: () => track(() => factory.connect()),
    connectToShadowDb: () => track(() => factory.connectToShadowDb()),
  })
  const engine = await SchemaEngine.new({ datamodels: [[sourceSchemaPath, schema]] }, () => {}, adapter)
  try {
    return await run(engine, schema)
  } finally {
    engine.free()
    await Promise.all(opened.map((connection) => connection.dispose()))
  }
}

/**
 * PostgreSQL's catalogs use the internal one-byte `"char"` type (OID 18),
 * which the pg driver adapter does not map, so the engine could not
 * introspect a database (needed to diff one). Reported as text it reads fine.
 */
class IntrospectablePool extends pg.Pool {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  override query (...args: any[]): any {
    const pending = (super.query as (...a: unknown[]) => Promise<pg.QueryResult>)(...args)
    return pending.then((result) => {
      for (const field of result.fields ?? []) if (field.dataTypeID === 18) field.dataTypeID = 25
      return result
    })
  }
}

function engineAdapterFor (databaseUrl: string): SqlMigrationAwareDriverAdapterFactory {
  if (providerOf(databaseUrl) === 'sqlite') return adapterFor(databaseUrl)
  return new PrismaPg(new IntrospectablePool({ connectionString: databaseUrl, max: 2 }), { disposeExternalPool: true })
}

async function readIfExists (file: string): Promise<string | null> {
  return readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return null
    throw err
  })
}

async function readMigrations (migrationsDir: string) {
  const entries = await readdir(migrationsDir, { withFileTypes: true }).catch(() => [])
  const names = entries.filter((e) => e.isDirectory()).map((e) => e.name).sort()
  return {
    baseDir: migrationsDir,
    lockfile: { path: 'migration_lock.toml', content: await readIfExists(path.join(migrationsDir, 'migration_lock.toml')) },
    shadowDbInitScript: '',
    migrationDirectories: await Promise.all(names.map(async (name) => ({
      path: name,
      migrationFile: {
        path: 'migration.sql',
        content: { tag: 'ok' as const, value: await readFile(path.join(migrationsDir, name, 'migration.sql'), 'utf8') },
      },
    }))),
  }
}

/**
 * The names of the migrations the database records as applied (finished,
 * not rolled back), read with one query; undefined when that cannot be told
 * (no database file yet, no `_prisma_migrations` table, any error), and the
 * engine must look.
 */
async function appliedMigrationNames (databaseUrl: string): Promise<Set<string> | undefined> {
  const sql = 'SELECT migration_name FROM _prisma_migrations WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL'
  try {
    if (providerOf(databaseUrl) === 'sqlite') {
      const { default: Database } = await import('better-sqlite3')
      const sqlite = new Database(databaseUrl.slice('file:'.length), { readonly: true, fileMustExist: true })
      try {
        return new Set((sqlite.prepare(sql).all() as Array<{ migration_name: string }>).map((row) => row.migration_name))
      } finally {
        sqlite.close()
      }
    }
    const client = new pg.Client({ connectionString: databaseUrl, connectionTimeoutMillis: 5000 })
    await client.connect()
    try {
      return new Set((await client.query<{ migration_name: string }>(sql)).rows.map((row) => row.migration_name))
    } finally {
      await client.end()
    }
  } catch {
    return undefined
  }
}

/**
 * Applies every pending migration; returns the names of those applied now.
 * When the database already records every committed migration as applied
 * (the usual start), that is read with one query and the schema engine is
 * not started at all: it costs a WebAssembly compilation and, on SQLite,
 * cannot open a database another process has open (so a second instance
 * on one file could not start while the first was serving).
 */
export async function applyMigrations (databaseUrl: string): Promise<string[]> {
  const migrationsList = await readMigrations(migrationsDirOf(providerOf(databaseUrl)))
  const applied = await appliedMigrationNames(databaseUrl)
  if (applied !== undefined && migrationsList.migrationDirectories.every(({ path: name }) => applied.has(name))) return []
  return withEngine(databaseUrl, async (engine) => {
    const { appliedMigrationNames } = await engine.applyMigrations({ migrationsList, filters: noFilters })
    return appliedMigrationNames
  })
}

/**
 * The SQL that takes a database migrated to `databaseUrl`'s current state to
 * the data model (src/db/schema.ts) for its provider: empty when they agree.
 */
export async function diffAgainstSchema (databaseUrl: string): Promise<string> {
  return withEngine(databaseUrl, async (engine, schema) => {
    const { stdout } = await engine.diff({
      from: { tag: 'schemaDatasource', files: [{ path: sourceSchemaPath, content: schema }], configDir: prismaDir },
      to: { tag: 'schemaDatamodel', files: [{ path: sourceSchemaPath, content: schema }] },
      script: true,
      exitCode: null,
      filters: noFilters,
    })
    return stdout ?? ''
  })
}
