/**
 * TRUST_PROXY as Fastify's `trustProxy`: which X-Forwarded-For entries name
 * the client, and so which address the per-IP limits count and the device
 * list shows.
 *
 * - Proxy addresses (CIDRs): only a hop from one of them is believed. The
 *   safest setting, whenever the proxies' addresses are known.
 * - A hop count: the nearest `hops` addresses are believed to be proxies,
 *   whoever they are. Fastify 5 refuses bare counts (it would ignore the
 *   header and see every client as the proxy), so vouch passes a function.
 *   Right only when vouch cannot be reached except through exactly that many
 *   proxies (cloud load balancers whose addresses change): a client that
 *   reaches it directly can forge one hop.
 * - `true`: every entry is believed, so any client chooses its address.
 *   src/config.ts (configWarnings) warns at start-up.
 */
export type TrustProxyOption = boolean | string | ((address: string, hop: number) => boolean)

export function trustProxyOption (setting: boolean | number | string): TrustProxyOption {
  if (typeof setting !== 'number') return setting
  return (_address, hop) => hop < setting
}
