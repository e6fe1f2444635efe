/**
 * The session this client holds, and the only code that changes it. Every
 * change goes the same way, with the refresh lock held (tabs.ts): new
 * generation, memory, storage, message to the other tabs, event. So:
 *
 * - storage never goes back in time: a tab writes another tab's tokens into
 *   its storage only if they are still the current generation, checked with
 *   the lock held, so a late writer cannot put back a superseded refresh
 *   token (which, used after the grace window, would end the session as a
 *   replay);
 * - a tab adopts a message only if it is not older than what it holds;
 * - tokens restored from storage that another tab has since replaced are
 *   not used: the current ones are asked from the open tabs, and if none
 *   answers, the stale ones are dropped rather than replayed.
 *
 * In cookie mode nothing is stored: the refresh token is the browser's
 * HttpOnly cookie, and the tokens passed around carry none.
 *
 * @module
 */
import type { Emitter, VouchEvents } from './events.js'
import { parseStoredTokens, type StoredTokens, type TokenStorage } from './storage.js'
import { compareGen, type TabMessage, type TabSync } from './tabs.js'
import type { SignOutReason, VouchSession } from './types.js'

/** What the claims of an access token tell the client (read, not verified: vouch verifies). */
export interface TokenClaims {
  sub?: string
  ver?: number
}

/** The payload of a JWT, or {} if it cannot be read. */
export function readClaims (jwt: string): TokenClaims {
  try {
    const part = jwt.split('.')[1] ?? ''
    const binary = atob(part.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(part.length / 4) * 4, '='))
    const json = new TextDecoder().decode(Uint8Array.from(binary, (c) => c.charCodeAt(0)))
    const payload = JSON.parse(json) as Record<string, unknown>
    return {
      ...(typeof payload.sub === 'string' && { sub: payload.sub }),
      ...(typeof payload.ver === 'number' && { ver: payload.ver }),
    }
  } catch {
    return {}
  }
}

export type ChangeKind = 'signedIn' | 'refreshed' | 'restored' | 'signedOut'

export interface SessionStateDeps {
  /** Bearer mode's storage; undefined in cookie mode. */
  storage: TokenStorage | undefined
  sync: TabSync
  events: Emitter<VouchEvents>
  /** Told of every change, events or not (the watch follows it). */
  onChange (kind: ChangeKind): void
}

export interface SessionState {
  tokens (): StoredTokens | null
  view (): VouchSession | null
  /** The generation of what is held. */
  gen (): string
  /** Lock held: takes new tokens obtained by this client. `restored` emits no event. */
  commit (tokens: StoredTokens, why: 'signedIn' | 'refreshed' | 'restored'): Promise<void>
  /** Lock held: ends the session held (no-op when none). */
  end (reason: SignOutReason): Promise<void>
  /** Lock held: loads bearer storage; true if signed in. */
  load (): Promise<boolean>
  /**
   * Lock held: the generation moved past the tokens held; waits for the
   * other tab's message (asking the tabs if it is late). True once held.
   */
  catchUp (gen: string): Promise<boolean>
  close (): void
}

/** How long a tab waits for another tab's message before asking, and then for the answer. */
const MESSAGE_WAIT_MS = 500
const SYNC_WAIT_MS = 1000

export function createSessionState ({ storage, sync, events, onChange }: SessionStateDeps): SessionState {
  let held: StoredTokens | null = null
  // A new client is level with the tabs' generation: it holds nothing that another tab could have replaced.
  let heldGen = sync.readGen()
  const waiters = new Set<() => void>()

  const view = (): VouchSession | null => {
    if (held === null) return null
    const { sub } = readClaims(held.accessToken)
    return { sessionId: held.sessionId, accessToken: held.accessToken, expiresAt: held.expiresAt, ...(sub !== undefined && { userId: sub }) }
  }

  const settle = () => {
    for (const wake of waiters) wake()
  }

  const waitForGen = (gen: string, ms: number): Promise<boolean> => new Promise((resolve) => {
    if (heldGen === gen || compareGen(heldGen, gen) > 0) return resolve(true)
    const wake = () => {
      if (heldGen === gen || compareGen(heldGen, gen) > 0) done(true)
    }
    const done = (value: boolean) => {
      clearTimeout(timer)
      waiters.delete(wake)
      resolve(value)
    }
    const timer = setTimeout(() => done(false), ms)
    waiters.add(wake)
  })

  const persist = async (tokens: StoredTokens | null, gen: string) => {
    if (storage === undefined) return
    try {
      if (tokens === null) await storage.clear()
      else await storage.set({ ...tokens, gen })
    } catch (err) {
      // A storage that refuses (quota, private mode) must not undo a change already made at vouch.
      const reportError = (globalThis as { reportError?: (err: unknown) => void }).reportError
      reportError?.(err)
    }
  }

  /**
   * What goes to the other tabs: the tokens without this tab's generation
   * mark. In bearer mode that includes the refresh token (the tabs share one
   * session, so they must share its current refresh token); in cookie mode
   * there is none to include.
   */
  const shareable = (tokens: StoredTokens): StoredTokens => {
    const { gen: _gen, ...rest } = tokens
    return rest
  }

  const adopt = (message: Extract<TabMessage, { type: 'tokens' | 'signedOut' }>) => {
    if (message.gen === heldGen || compareGen(message.gen, heldGen) < 0) return
    sync.sawGen(message.gen)
    heldGen = message.gen
    if (message.type === 'tokens') {
      const before = held
      held = { ...message.tokens }
      // Another tab's tokens into this tab's storage, unless superseded by then (checked with the lock held).
      void sync.withLock(async () => { if (sync.readGen() === message.gen) await persist(held, message.gen) })
      const kind = before === null || before.sessionId !== held.sessionId ? 'signedIn' : 'refreshed'
      onChange(kind)
      events.emit(kind, { session: view()! })
    } else if (held !== null && held.sessionId === message.sessionId) {
      held = null
      void sync.withLock(async () => { if (sync.readGen() === message.gen) await persist(null, message.gen) })
      onChange('signedOut')
      events.emit('signedOut', { reason: message.reason })
    }
    settle()
  }

  sync.onMessage((message) => {
    if (message.type === 'sync') {
      // Answer only with tokens of the current generation.
      if (held !== null && heldGen === sync.readGen()) sync.post({ v: 1, type: 'tokens', gen: heldGen, tokens: shareable(held), why: 'refreshed' })
      return
    }
    adopt(message)
  })

  return {
    tokens: () => held,
    view,
    gen: () => heldGen,

    async commit (tokens, why) {
      const before = held
      const gen = sync.nextGen()
      held = { ...tokens }
      heldGen = gen
      await persist(held, gen)
      sync.mark(true)
      sync.post({ v: 1, type: 'tokens', gen, tokens: shareable(held), why: why === 'signedIn' ? 'signedIn' : 'refreshed' })
      const kind = why === 'restored' ? 'restored' : before !== null && before.sessionId === tokens.sessionId ? 'refreshed' : 'signedIn'
      onChange(kind)
      if (kind !== 'restored') events.emit(kind, { session: view()! })
      settle()
    },

    async end (reason) {
      if (held === null) return
      const sessionId = held.sessionId
      const gen = sync.nextGen()
      held = null
      heldGen = gen
      await persist(null, gen)
      sync.mark(false)
      sync.post({ v: 1, type: 'signedOut', gen, sessionId, reason })
      onChange('signedOut')
      events.emit('signedOut', { reason })
      settle()
    },

    async load () {
      if (storage === undefined) return held !== null
      // Checked whatever the adapter: a custom one may hand back anything.
      const stored = parseStoredTokens(await storage.get())
      if (stored === null) return held !== null
      const current = sync.readGen()
      if (!sync.crossTab || stored.gen === undefined || stored.gen === current) {
        held = { ...stored }
        delete held.gen
        heldGen = current
        onChange('restored')
        return true
      }
      // Another tab has changed the tokens since these were stored (this tab was closed or
      // frozen meanwhile): using them could replay a superseded refresh token.
      heldGen = stored.gen
      held = { ...stored }
      if (await this.catchUp(current)) return held !== null
      held = null
      heldGen = current
      await persist(null, current)
      return false
    },

    async catchUp (gen) {
      if (await waitForGen(gen, MESSAGE_WAIT_MS)) return true
      if (storage !== undefined) {
        const stored = parseStoredTokens(await storage.get())
        if (stored !== null && stored.gen === gen) {
          const before = held
          held = { ...stored }
          delete held.gen
          heldGen = gen
          const kind = before === null || before.sessionId !== held.sessionId ? 'signedIn' : 'refreshed'
          onChange(kind)
          events.emit(kind, { session: view()! })
          settle()
          return true
        }
      }
      sync.post({ v: 1, type: 'sync' })
      return waitForGen(gen, SYNC_WAIT_MS)
    },

    close () {
      waiters.clear()
    },
  }
}
