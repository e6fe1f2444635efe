/**
 * The client's event emitter: typed listeners in the order added, an `off`
 * per `on`, a snapshot per emit, and a listener that throws neither breaks
 * the emit nor the other listeners (its error is reported afterwards, as an
 * uncaught error would be).
 */
import t from 'tap'
import { createEmitter, type VouchEvents } from '../src/events.js'

t.test('listeners run in the order added, with the detail', async (t) => {
  const events = createEmitter<VouchEvents>()
  const calls: string[] = []
  events.on('signedOut', ({ reason }) => calls.push(`a:${reason}`))
  events.on('signedOut', ({ reason }) => calls.push(`b:${reason}`))
  events.on('refreshed', () => calls.push('refreshed'))
  events.emit('signedOut', { reason: 'revoked' })
  t.same(calls, ['a:revoked', 'b:revoked'])
})

t.test('off removes that listener only, even when the same function was added twice', async (t) => {
  const events = createEmitter<VouchEvents>()
  let count = 0
  const listener = () => { count += 1 }
  const off1 = events.on('signedOut', listener)
  events.on('signedOut', listener)
  events.emit('signedOut', { reason: 'logout' })
  t.equal(count, 2)
  off1()
  off1()
  events.emit('signedOut', { reason: 'logout' })
  t.equal(count, 3, 'one registration left')
})

t.test('a listener added or removed during an emit takes effect at the next emit', async (t) => {
  const events = createEmitter<VouchEvents>()
  const calls: string[] = []
  let offB = () => {}
  events.on('signedOut', () => {
    calls.push('a')
    offB()
    events.on('signedOut', () => calls.push('late'))
  })
  offB = events.on('signedOut', () => calls.push('b'))
  events.emit('signedOut', { reason: 'expired' })
  t.same(calls, ['a', 'b'], 'this emit ran the listeners registered when it began')
  calls.length = 0
  events.emit('signedOut', { reason: 'expired' })
  t.same(calls, ['a', 'late'])
})

t.test('a listener that throws does not stop the others; its error is reported after', async (t) => {
  const events = createEmitter<VouchEvents>()
  const reported: unknown[] = []
  const original = (globalThis as { reportError?: unknown }).reportError
  ;(globalThis as { reportError?: unknown }).reportError = (err: unknown) => reported.push(err)
  t.teardown(() => { (globalThis as { reportError?: unknown }).reportError = original })
  const calls: string[] = []
  events.on('signedOut', () => { throw new Error('listener bug') })
  events.on('signedOut', () => calls.push('second'))
  t.doesNotThrow(() => events.emit('signedOut', { reason: 'logout' }))
  t.same(calls, ['second'])
  t.equal((reported[0] as Error).message, 'listener bug')
})

t.test('without reportError (Node), the error surfaces as an uncaught exception, not inside emit', async (t) => {
  const events = createEmitter<VouchEvents>()
  const original = (globalThis as { reportError?: unknown }).reportError
  delete (globalThis as { reportError?: unknown }).reportError
  t.teardown(() => { (globalThis as { reportError?: unknown }).reportError = original })
  const uncaught = new Promise<Error>((resolve) => process.once('uncaughtException', resolve))
  events.on('refreshed', () => { throw new Error('late bug') })
  t.doesNotThrow(() => events.emit('refreshed', { session: { sessionId: 's', accessToken: 'a', expiresAt: 0 } }))
  t.equal((await uncaught).message, 'late bug')
})

t.test('clear removes every listener', async (t) => {
  const events = createEmitter<VouchEvents>()
  let called = false
  events.on('signedIn', () => { called = true })
  events.clear()
  events.emit('signedIn', { session: { sessionId: 's', accessToken: 'a', expiresAt: 0 } })
  t.notOk(called)
})
