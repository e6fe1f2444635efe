/**
 * The wire contracts that vouch and the verifier share: bearer headers, the
 * access-token claim rules, and the feed's events, written by one side and
 * read back by the other.
 */
import t from 'tap'
import {
  ACCESS_TOKEN_ALGORITHMS, ACCESS_TOKEN_TYPE, accessTokenVerifyOptions, bearerToken, checkAccessTokenClaims,
  FEED_EVENTS, formatFeedEvent, formatHeartbeat, parseFeedReady, parseRevocationBatch, REQUIRED_CLAIMS,
} from '../src/protocol.js'
import { createEventStreamParser, type ServerSentEvent } from '../src/sse.js'

t.test('bearer headers: scheme in any case, one or more spaces, a b64token (RFC 6750 §2.1)', async (t) => {
  t.equal(bearerToken('Bearer abc.DEF-_~+/='), 'abc.DEF-_~+/=')
  t.equal(bearerToken('bearer   abc  '), 'abc')
  t.equal(bearerToken('BEARER abc'), 'abc')
  for (const refused of [undefined, null, '', 'Bearer', 'Bearer ', 'Basic abc', 'Bearerabc', 'Bearer a b', 'Bearer a,b', 'Bearer =abc', ' Bearer abc']) {
    t.equal(bearerToken(refused), undefined, `refused: ${JSON.stringify(refused)}`)
  }
})

t.test('claims: the required ones, their shapes, and the first wrong one named', async (t) => {
  const good = { sub: 'u', sid: 's', ver: 0, jti: 'j', iat: 1, exp: 2, client_id: 'web', iss: 'x', aud: 'y' }
  t.same(checkAccessTokenClaims(good), { claims: { sub: 'u', sid: 's', ver: 0, jti: 'j', iat: 1, exp: 2, client_id: 'web' } })
  t.same(checkAccessTokenClaims({ ...good, client_id: undefined }).claims?.client_id, undefined, 'client_id may be absent (tokens signed before it)')
  const wrong: Array<[string, unknown]> = [
    ['sub', 1], ['sid', null], ['ver', -1], ['ver', 1.5], ['ver', '1'], ['ver', 2 ** 53], ['jti', undefined],
    ['iat', '1'], ['exp', undefined], ['client_id', 7],
  ]
  for (const [claim, value] of wrong) {
    t.same(checkAccessTokenClaims({ ...good, [claim]: value }), { claim }, `${claim}: ${JSON.stringify(value)}`)
  }
  t.same([...REQUIRED_CLAIMS], ['sub', 'sid', 'ver', 'jti', 'iat', 'exp'])
})

t.test("jose options: typ at+jwt, vouch's algorithms only, the required claims, the clock", async (t) => {
  const currentDate = new Date(0)
  t.same(accessTokenVerifyOptions({ issuer: 'i', audience: 'a', currentDate }), {
    algorithms: ['EdDSA', 'ES256'], typ: ACCESS_TOKEN_TYPE, issuer: 'i', audience: 'a', clockTolerance: 5,
    requiredClaims: ['sub', 'sid', 'ver', 'jti', 'iat', 'exp'], currentDate,
  })
  t.same(accessTokenVerifyOptions({ issuer: 'i', audience: 'a', algorithms: ['ES256'], clockTolerance: 0 }).algorithms, ['ES256'])
  t.notOk('currentDate' in accessTokenVerifyOptions({ issuer: 'i', audience: 'a' }), 'jose uses its own now when none is given')
  t.ok(Object.isFrozen(ACCESS_TOKEN_ALGORITHMS))
})

t.test('feed events written by vouch are read back by the verifier, through the SSE parser', async (t) => {
  const events: ServerSentEvent[] = []
  const comments: string[] = []
  const parser = createEventStreamParser({ onEvent: (event) => events.push(event), onComment: (text) => comments.push(text) })
  const ready = { maxTokenAge: 900, heartbeatMs: 5000, users: [{ id: 'u', minVersion: 2 }], sessions: ['s'], cursor: 10 }
  const batch = { users: [], sessions: ['s2'], cursor: 20 }
  parser.push(new TextEncoder().encode(formatFeedEvent(FEED_EVENTS.ready, ready) + formatHeartbeat(15) + formatFeedEvent(FEED_EVENTS.revocations, batch)))
  t.same(events.map((event) => [event.type, event.lastEventId]), [['ready', '10'], ['revocations', '20']], 'the id of each event is its cursor')
  t.same(parseFeedReady(events[0]!.data), ready)
  t.same(parseRevocationBatch(events[1]!.data), batch)
  t.same(comments, [' heartbeat 15'])
})

t.test('a malformed batch or ready is refused, not half-applied', async (t) => {
  t.throws(() => parseRevocationBatch('{"users":[{"id":"u"}],"sessions":[],"cursor":1}'), TypeError)
  t.throws(() => parseRevocationBatch('{"users":[],"sessions":[1],"cursor":1}'), TypeError)
  t.throws(() => parseRevocationBatch('{"users":[],"sessions":[],"cursor":-1}'), TypeError)
  t.throws(() => parseRevocationBatch('not json'), SyntaxError)
  t.throws(() => parseFeedReady('{"users":[],"sessions":[],"cursor":1,"heartbeatMs":5}'), /maxTokenAge/)
})
