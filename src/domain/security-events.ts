/**
 * Security events: the one seam through which domain code reports what an
 * incident responder needs (which user, which session, from where), without
 * knowing who listens. The composition root subscribes the logger; an audit
 * store or metrics can subscribe the same way. Listeners run synchronously
 * after the change committed and must not throw (a throwing listener is
 * isolated: the others still run and the request is unaffected).
 */

export interface ClientInfo {
  readonly ip?: string | null | undefined
  readonly userAgent?: string | null | undefined
}

export type SecurityEvent =
  /** A superseded refresh token came back after the grace window (or from another client): the session was revoked. */
  | { type: 'refresh_token_reused', userId: string, sessionId: string, generationsBehind: number | undefined, client: ClientInfo }
  /** A duplicate of the last rotation inside the grace window, from the same client: answered with the live successor. */
  | { type: 'refresh_duplicate_in_grace', userId: string, sessionId: string, client: ClientInfo }
  /** A session was revoked by the system: `session_limit` when a sign-in (from `client`) went past MAX_SESSIONS_PER_USER. */
  | { type: 'session_revoked', reason: 'session_limit', userId: string, sessionId: string, client: ClientInfo }

export type SecurityEventListener = (event: SecurityEvent) => void

export interface SecurityEvents {
  publish (event: SecurityEvent): void
  /** Returns the unsubscribe. */
  subscribe (listener: SecurityEventListener): () => void
}

export function createSecurityEvents (onListenerError: (err: unknown) => void = () => {}): SecurityEvents {
  const listeners = new Set<SecurityEventListener>()
  return {
    publish (event) {
      for (const listener of listeners) {
        try {
          listener(event)
        } catch (err) {
          onListenerError(err)
        }
      }
    },
    subscribe (listener) {
      listeners.add(listener)
      return () => { listeners.delete(listener) }
    },
  }
}
