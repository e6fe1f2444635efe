/**
 * `vouch clients add|list|remove`: the API clients stored in the database
 * (domain/api-clients.ts): admin clients, for the admin API, and resource
 * servers, beside those configured in ADMIN_CLIENTS and RESOURCE_CLIENTS.
 *
 * Invariant: a client's secret is printed once, by the `add` that generated
 * it, and never again: vouch stores only its SHA-256, so `list` has nothing
 * secret to show (and shows id, kind and createdAt only). A lost secret is
 * replaced by removing the client and adding it again.
 *
 * Running servers look a stored client up at most every few seconds
 * (http/plugins/admin-auth.ts caches a lookup, found or not, for 5 s): an
 * added client works, and a removed one stops working, within that.
 */
import { Option, type Command } from 'commander'
import type { ClientKind, StoredClient } from '../domain/api-clients.js'
import type { CliContext } from './context.js'
import { domainOf } from './domain.js'
import { CliError, EXIT, print, type OutputOptions } from './output.js'

const KINDS: readonly ClientKind[] = ['admin', 'resource']

export interface ClientListing {
  id: string
  kind: ClientKind
  createdAt: string
}

const listing = (client: StoredClient): ClientListing => ({ id: client.id, kind: client.kind, createdAt: client.createdAt.toISOString() })

export function registerClients (program: Command, context: CliContext): void {
  const clients = program.command('clients')
    .description('add, list and remove the API clients stored in the database: admin clients (the admin API) and resource servers')

  clients.command('add')
    .description('add a client with a generated secret (256 random bits), printed this once: only its SHA-256 is stored. ' +
      'The id must be free, not in ADMIN_CLIENTS or RESOURCE_CLIENTS, and 1 to 128 letters, digits, "_", "." or "-"')
    .argument('<id>', 'the client id, as the client sends it (HTTP Basic user name)')
    .addOption(new Option('--kind <kind>', 'admin: calls the admin API; resource: a resource server (introspection, revocation feed)')
      .choices(KINDS).makeOptionMandatory())
    .option('--json', 'print {"id", "kind", "createdAt", "secret"} as JSON')
    .action(async (id: string, options: OutputOptions & { kind: ClientKind }) => {
      // validation_failed (taken, configured, malformed id) exits EXIT.usage (output.ts).
      const added = await (await domainOf(context)).apiClients.add(id, options.kind)
      print(options, { ...listing(added), secret: added.secret }, () => [
        `added ${added.kind} client ${added.id}`,
        `secret: ${added.secret}`,
        'Store this secret now: it is shown only this once (vouch keeps only its hash). ' +
          `The client authenticates with HTTP Basic ${added.id}:<secret>.`,
      ].join('\n'))
    })

  clients.command('list')
    .description('list the stored clients: id, kind, createdAt (never a secret; clients configured in the environment are not listed)')
    .option('--json', 'print {"clients": [{"id", "kind", "createdAt"}]} as JSON')
    .action(async (options: OutputOptions) => {
      const stored = (await (await domainOf(context)).apiClients.list()).map(listing)
      print(options, { clients: stored }, () => stored.length === 0
        ? 'no stored clients'
        : stored.map((client) => [client.id, client.kind, client.createdAt].join('  ')).join('\n'))
    })

  clients.command('remove')
    .description(`remove a stored client: its secret stops working within seconds. Exits ${EXIT.unknownClient} when no client has that id`)
    .argument('<id>', 'the client id')
    .option('--json', 'print {"id", "removed": true} as JSON')
    .action(async (id: string, options: OutputOptions) => {
      if (!await (await domainOf(context)).apiClients.remove(id)) {
        const config = context.config()
        const configured = config.adminClients.has(id) ? 'ADMIN_CLIENTS' : config.resourceClients.has(id) ? 'RESOURCE_CLIENTS' : undefined
        throw new CliError('unknown_client', configured === undefined
          ? `no stored client ${id}`
          : `client ${id} is configured in ${configured}, not stored: remove it from the environment`, EXIT.unknownClient)
      }
      print(options, { id, removed: true }, () => `removed client ${id}`)
    })
}
