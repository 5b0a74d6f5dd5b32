// Tokens: where the WebSocket carries them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, PROTOCOL, BEARER_PROTOCOL_PREFIX } from '../src/livecast.js';
import { harness, fakeEventSourceClass, fakeFetch } from './fakes.js';

function base64url(text) {
  return Buffer.from(text, 'utf8').toString('base64url');
}

// An unsigned-looking JWT: the client never checks the signature.
function jwt(payload) {
  return `${base64url('{"alg":"HS256","typ":"JWT"}')}.${base64url(JSON.stringify(payload))}.c2lnbmF0dXJl`;
}

function fallbackHarness(extra = {}) {
  const EventSource = fakeEventSourceClass();
  const fetch = fakeFetch();
  const h = harness({ transports: ['websocket', 'sse', 'poll'], EventSource, fetch, ...extra });
  return { ...h, EventSource, fetch };
}

// --- where the WebSocket carries the token ---

test('a token that is an HTTP token goes in the subprotocol list after livecast.v1, not in the URL', () => {
  const { WebSocket, options } = harness();
  const token = jwt({ sub: 'ana', exp: 1700003600 });
  connect('ws://x/ws?room=1', { ...options, token });
  assert.equal(WebSocket.latest().url, 'ws://x/ws?room=1');
  assert.deepEqual(WebSocket.latest().protocols, [PROTOCOL, `${BEARER_PROTOCOL_PREFIX}${token}`]);
  assert.equal(BEARER_PROTOCOL_PREFIX, 'livecast.bearer.');

  // Every tchar of RFC 7230 is allowed in a subprotocol name.
  const special = "Aa0!#$%&'*+-.^_`|~";
  connect('ws://x/ws', { ...options, token: special });
  assert.deepEqual(WebSocket.latest().protocols, [PROTOCOL, `livecast.bearer.${special}`]);
  assert.equal(WebSocket.latest().url, 'ws://x/ws');
});

test("a token with a character RFC 6455 forbids in a subprotocol ('/', '=', space, separators, non-ASCII) goes in ?token=", () => {
  const { WebSocket, options } = harness();
  for (const token of ['abc/def', 'YWJj==', 'a b', 'a,b', 'a:b', 'a;b', 'a"b', 'a(b)', 'a[b]', 'a{b}', 'a@b', 'a?b', 'a\\b', 'a<b>', 'é', 'a\tb']) {
    connect('ws://x/ws', { ...options, token });
    assert.equal(WebSocket.latest().url, `ws://x/ws?token=${encodeURIComponent(token)}`, token);
    assert.equal(WebSocket.latest().protocols, PROTOCOL, token);
  }
});

test('protocols of the caller are kept, in order, with the bearer entry last; none offered keeps ?token=', () => {
  const { WebSocket, options } = harness();
  connect('ws://x/ws', { ...options, token: 'tok', protocols: ['livecast.v2', 'livecast.v1'] });
  assert.deepEqual(WebSocket.latest().protocols, ['livecast.v2', 'livecast.v1', 'livecast.bearer.tok']);
  assert.equal(WebSocket.latest().url, 'ws://x/ws');

  connect('ws://x/ws', { ...options, token: 'tok', protocols: null });
  assert.equal(WebSocket.latest().url, 'ws://x/ws?token=tok');
  assert.equal(WebSocket.latest().protocols, undefined);

  connect('ws://x/ws', { ...options, token: 'tok', protocols: [] });
  assert.equal(WebSocket.latest().url, 'ws://x/ws?token=tok');
  assert.deepEqual(WebSocket.latest().protocols, []);

  connect('ws://x/ws', { ...options, token: 'tok', tokenInQuery: true, protocols: ['livecast.v1'] });
  assert.equal(WebSocket.latest().url, 'ws://x/ws?token=tok');
  assert.deepEqual(WebSocket.latest().protocols, ['livecast.v1']);
});

test('the upgrade probe from a fallback carries the token the same way', () => {
  const { clock, WebSocket, EventSource, options } = fallbackHarness({ token: 'tok', upgradeIntervalMs: 1000, random: () => 0.5 });
  const client = connect('ws://x/ws', options);
  client.subscribe('a');
  WebSocket.latest().drop(1006);
  assert.equal(EventSource.latest().query.get('token'), 'tok', 'EventSource cannot set headers: the query it is');
  EventSource.latest().accept();
  clock.advance(1000);
  assert.equal(WebSocket.sockets.length, 2);
  assert.equal(WebSocket.latest().url, 'ws://x/ws');
  assert.deepEqual(WebSocket.latest().protocols, [PROTOCOL, 'livecast.bearer.tok']);
  client.close();
});
