/**
 * What the tabs of one origin share, for one vouch (one baseUrl): a lock, a
 * generation stamp and a message channel. These are the primitives of the
 * cross-tab guarantees (refresh.ts, state.ts, watch.ts):
 *
 * - the lock `vouch:refresh:<baseUrl>` (Web Locks) is held around every
 *   request that changes the browser's tokens (refresh, sign-in, sign-out,
 *   password change, revoke-others) and around adopting another tab's tokens
 *   into storage, so those never interleave between tabs;
 * - the generation `vouch:gen:<baseUrl>` (localStorage; `<n>.<random>`, no
 *   secret) is rewritten, with the lock held, each time a tab changes the
 *   tokens: a tab that finds it different from the generation of the tokens
 *   it holds knows another tab changed them;
 * - the channel `vouch:<baseUrl>` (BroadcastChannel) carries the change
 *   itself (the new tokens, or the sign-out), posted before the lock is
 *   released;
 * - the lock `vouch:watch:<baseUrl>`, held for a tab's whole life, elects the
 *   one tab that keeps the session-watch stream.
 *
 * Without cross-tab coordination (Node, workers, `crossTab: false`) the same
 * interface is served in-process: a mutex, a counter, no channel, and the
 * client is its own watch leader.
 *
 * @module
 */
import type { StoredTokens } from './storage.js'
import type { SignOutReason } from './types.js'

/** A message between tabs; `v` lets a later version ignore what it does not understand. */
export type TabMessage =
  | { v: 1, type: 'tokens', gen: string, tokens: StoredTokens, why: 'signedIn' | 'refreshed' }
  | { v: 1, type: 'signedOut', gen: string, sessionId: string, reason: SignOutReason }
  /** A tab whose tokens are behind the generation asks the others for the current ones. */
  | { v: 1, type: 'sync' }

export interface TabSync {
  /** True when tabs are coordinated (a channel exists). */
  readonly crossTab: boolean
  /** Runs `fn` holding the refresh lock (across tabs where Web Locks exist, else in this client). */
  withLock<T> (fn: () => Promise<T>): Promise<T>
  /** The current generation ('' until a change). */
  readGen (): string
  /** Writes and returns a new generation: call with the lock held. */
  nextGen (): string
  /** Notes a generation seen in a message (where localStorage cannot hold it). */
  sawGen (gen: string): void
  /**
   * Whether this origin's tabs last held a session: true/false from
   * localStorage (`vouch:signed-in:<baseUrl>`, no secret), undefined where it
   * cannot be kept. Lets cookie mode's restore skip a refresh that can only
   * be refused (an HttpOnly cookie cannot be seen from script).
   */
  signedInMark (): boolean | undefined
  mark (signedIn: boolean): void
  post (message: TabMessage): void
  onMessage (handler: (message: TabMessage) => void): void
  /** Calls `onLeader` once this client holds the watch lock (at once without cross-tab coordination). */
  lead (onLeader: () => void): void
  close (): void
}

/** The order of two generations: by their counter (`<n>.…`); 0 when equal or incomparable. */
export function compareGen (a: string, b: string): number {
  const n = (gen: string) => {
    const value = Number.parseInt(gen.split('.')[0] ?? '', 10)
    return Number.isSafeInteger(value) ? value : 0
  }
  return n(a) - n(b)
}

function randomSuffix (): string {
  const bytes = new Uint8Array(6)
  if (globalThis.crypto?.getRandomValues) globalThis.crypto.getRandomValues(bytes)
  else for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(Math.random() * 256)
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')
}

interface LockManagerLike {
  request<T> (name: string, callback: () => Promise<T>): Promise<T>
}

function webLocks (): LockManagerLike | undefined {
  const nav = (globalThis as { navigator?: { locks?: LockManagerLike } }).navigator
  return typeof nav?.locks?.request === 'function' ? nav.locks : undefined
}

function localStorageArea (): Storage | undefined {
  try {
    const area = (globalThis as { localStorage?: Storage }).localStorage
    return area ?? undefined
  } catch {
    // Access itself can throw (storage disabled by the user).
    return undefined
  }
}

/** Runs functions one after another, in call order. */
function createMutex () {
  let tail: Promise<unknown> = Promise.resolve()
  return <T>(fn: () => Promise<T>): Promise<T> => {
    const result = tail.then(fn)
    tail = result.catch(() => {})
    return result
  }
}

/**
 * Whether cross-tab coordination is available by default: in a page (a
 * document exists) with BroadcastChannel. Not in Node, where clients in one
 * process are separate users, nor in workers.
 */
export function crossTabByDefault (): boolean {
  return typeof (globalThis as { document?: unknown }).document !== 'undefined' && typeof BroadcastChannel === 'function'
}

export function createTabSync (baseUrl: string, crossTab: boolean): TabSync {
  const mutex = createMutex()
  const channel = crossTab && typeof BroadcastChannel === 'function' ? new BroadcastChannel(`vouch:${baseUrl}`) : undefined
  const locks = channel ? webLocks() : undefined
  const genKey = `vouch:gen:${baseUrl}`
  const markKey = `vouch:signed-in:${baseUrl}`
  /** The generation when localStorage cannot hold it (and always without cross-tab coordination). */
  let memoryGen = ''
  const releases: Array<() => void> = []
  let closed = false

  const readGen = (): string => {
    if (!channel) return memoryGen
    try {
      const stored = localStorageArea()?.getItem(genKey)
      if (stored !== null && stored !== undefined) return compareGen(stored, memoryGen) >= 0 ? stored : memoryGen
    } catch {
      // Unreadable storage: the messages' generations stand in.
    }
    return memoryGen
  }

  return {
    crossTab: channel !== undefined,
    withLock: (fn) => locks ? locks.request(`vouch:refresh:${baseUrl}`, fn) : mutex(fn),
    readGen,
    nextGen () {
      const next = `${Math.max(0, Number.parseInt(readGen().split('.')[0] ?? '', 10) || 0) + 1}.${randomSuffix()}`
      memoryGen = next
      if (channel) {
        try {
          localStorageArea()?.setItem(genKey, next)
        } catch {
          // Quota or disabled storage: the generation travels in the messages only.
        }
      }
      return next
    },
    sawGen (gen) {
      if (compareGen(gen, memoryGen) >= 0) memoryGen = gen
    },
    signedInMark () {
      if (!channel) return undefined
      try {
        const area = localStorageArea()
        return area === undefined ? undefined : area.getItem(markKey) === '1'
      } catch {
        return undefined
      }
    },
    mark (signedIn) {
      if (!channel) return
      try {
        if (signedIn) localStorageArea()?.setItem(markKey, '1')
        else localStorageArea()?.removeItem(markKey)
      } catch {
        // Unwritable storage: restore then always asks vouch.
      }
    },
    post (message) {
      if (!closed) channel?.postMessage(message)
    },
    onMessage (handler) {
      if (!channel) return
      channel.onmessage = (event: MessageEvent) => {
        const message = event.data as TabMessage | undefined
        if (typeof message === 'object' && message !== null && message.v === 1) handler(message)
      }
    },
    lead (onLeader) {
      if (!locks) {
        onLeader()
        return
      }
      locks.request(`vouch:watch:${baseUrl}`, () => new Promise<void>((release) => {
        if (closed) return release()
        releases.push(release)
        onLeader()
      })).catch(() => {})
    },
    close () {
      closed = true
      for (const release of releases.splice(0)) release()
      if (channel) {
        channel.onmessage = null
        channel.close()
      }
    },
  }
}
