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

/** Applies every pending migration; returns the names of those applied now. */
export async function applyMigrations (databaseUrl: string): Promise<string[]> {
  const migrationsList = await readMigrations(migrationsDirOf(providerOf(databaseUrl)))
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
