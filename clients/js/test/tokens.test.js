// Tokens: where the WebSocket carries them, async token functions, sessions
// that end with their token (close code 4011, `refresh` before the end) and
// the HTTP fallbacks asking for the token of the moment.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  Client, connect, shouldReconnect, tokenExpiresAt, PROTOCOL, TOKEN_EXPIRED_CLOSE_CODE, BEARER_PROTOCOL_PREFIX,
} from '../src/livecast.js';
import { harness, recorder, fakeEventSourceClass, fakeFetch, settle, WALL_CLOCK_AT_ZERO } from './fakes.js';

function base64url(text) {
  return Buffer.from(text, 'utf8').toString('base64url');
}

// An unsigned-looking JWT: the client never checks the signature.
function jwt(payload) {
  return `${base64url('{"alg":"HS256","typ":"JWT"}')}.${base64url(JSON.stringify(payload))}.c2lnbmF0dXJl`;
}

// A JWT that ends `seconds` after the fake clock's 0.
function jwtEndingAt(seconds, extra = {}) {
  return jwt({ sub: 'ana', exp: WALL_CLOCK_AT_ZERO / 1000 + seconds, ...extra });
}

function fallbackHarness(extra = {}) {
  const EventSource = fakeEventSourceClass();
  const fetch = fakeFetch();
  const h = harness({ transports: ['websocket', 'sse', 'poll'], EventSource, fetch, ...extra });
  return { ...h, EventSource, fetch };
}

// A token function handing out t1, t2, ... (or what `make` makes of the count).
function rotating(make = (n) => `t${n}`) {
  const ask = () => make(++ask.calls);
  ask.calls = 0;
  return ask;
}

// --- where the WebSocket carries the token ---

test('a token that is an HTTP token goes in the subprotocol list after livecast.v1, not in the URL', () => {
  const { WebSocket, options } = harness();
  const token = jwtEndingAt(3600);
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

// --- async token functions ---

test('a token function returning a promise is awaited before the connection opens', async () => {
  let resolveToken;
  const { WebSocket, options } = harness({ token: () => new Promise((resolve) => { resolveToken = resolve; }) });
  const client = connect('ws://x/ws', options);
  assert.equal(client.state, 'connecting');
  assert.equal(WebSocket.sockets.length, 0, 'no socket before the token');
  client.open();  // a second open() while waiting does nothing
  resolveToken('fresh');
  await settle();
  assert.equal(WebSocket.sockets.length, 1);
  assert.deepEqual(WebSocket.latest().protocols, [PROTOCOL, 'livecast.bearer.fresh']);
  WebSocket.latest().accept();
  assert.equal(client.state, 'connected');
  client.close();
});

for (const [name, token] of [
  ['rejects', () => Promise.reject(new Error('auth endpoint down'))],
  ['throws', () => { throw new Error('auth endpoint down'); }],
]) {
  test(`a token function that ${name} is a failed attempt: back-off, an error event, no fallback, then it is asked again`, async () => {
    let failing = true;
    const { clock, WebSocket, EventSource, options } = fallbackHarness({
      token: () => (failing ? token() : 'ok'), random: () => 1, minDelayMs: 100,
    });
    const client = new Client('ws://x/ws', options);
    const states = recorder(client, 'state');
    const errors = recorder(client, 'error');
    client.open();
    await settle();
    const last = states[states.length - 1];
    assert.equal(last.state, 'disconnected');
    assert.equal(last.willReconnect, true);
    assert.equal(last.delayMs, 100);
    assert.equal(last.transport, 'websocket');
    assert.equal(last.fallback, undefined, 'the auth endpoint failing is not the transport failing');
    assert.match(last.reason, /auth endpoint down/);
    assert.equal(errors.length, 1);
    assert.equal(errors[0].code, 'token_unavailable');
    assert.equal(WebSocket.sockets.length, 0);
    assert.equal(EventSource.sources.length, 0);

    // The next attempt backs off further.
    clock.advance(100);
    await settle();
    assert.equal(states[states.length - 1].delayMs, 200);
    failing = false;
    clock.advance(200);
    await settle();
    assert.equal(WebSocket.sockets.length, 1);
    assert.deepEqual(WebSocket.latest().protocols, [PROTOCOL, 'livecast.bearer.ok']);
    client.close();
  });
}

test('a token function that never answers fails the attempt after pingTimeoutMs; its late answer is ignored', async () => {
  const resolvers = [];
  const { clock, WebSocket, options } = harness({
    token: () => new Promise((resolve) => resolvers.push(resolve)), pingTimeoutMs: 5000, random: () => 1, minDelayMs: 100,
  });
  const client = connect('ws://x/ws', options);
  const states = recorder(client, 'state');
  clock.advance(4999);
  assert.equal(client.state, 'connecting');
  clock.advance(1);
  assert.equal(client.state, 'disconnected');
  assert.match(states[states.length - 1].reason, /timed out/);
  resolvers[0]('late');
  await settle();
  assert.equal(WebSocket.sockets.length, 0, 'the late token opens nothing');
  clock.advance(100);  // the retry asks again
  assert.equal(resolvers.length, 2);
  resolvers[1]('on time');
  await settle();
  assert.equal(WebSocket.sockets.length, 1);
  client.close();
});

test('close() while the token function is pending: nothing opens afterwards', async () => {
  let resolveToken;
  const { clock, WebSocket, options } = harness({ token: () => new Promise((resolve) => { resolveToken = resolve; }) });
  const client = connect('ws://x/ws', options);
  client.close();
  assert.equal(clock.pendingCount, 0);
  resolveToken('t');
  await settle();
  assert.equal(WebSocket.sockets.length, 0);
  assert.equal(client.state, 'disconnected');
});

// --- close code 4011 ---

test('4011 reconnects with a token asked anew from the token function', () => {
  assert.equal(TOKEN_EXPIRED_CLOSE_CODE, 4011);
  assert.equal(shouldReconnect(4011), true);
  const token = rotating();
  const { clock, WebSocket, options } = harness({ token });
  const client = connect('ws://x/ws', options);
  const subscription = client.subscribe('a');
  const states = recorder(client, 'state');
  WebSocket.latest().accept();
  const request = WebSocket.latest().lastRequest('subscribe');
  WebSocket.latest().deliver({ id: request.id, ok: { topic: 'a', epoch: 'e', offset: 4, recovered: false } });
  WebSocket.latest().drop(4011, 'token_expired');
  const last = states[states.length - 1];
  assert.equal(last.state, 'disconnected');
  assert.equal(last.code, 4011);
  assert.equal(last.willReconnect, true);
  clock.advance(last.delayMs);
  assert.equal(WebSocket.sockets.length, 2);
  assert.deepEqual(WebSocket.latest().protocols, [PROTOCOL, 'livecast.bearer.t2']);
  WebSocket.latest().accept();
  assert.deepEqual(WebSocket.latest().lastRequest('subscribe').recover, { epoch: 'e', offset: 4 }, 'nothing missed');
  assert.equal(subscription.state, 'subscribing');
  client.close();
});

for (const [name, token] of [['a fixed string token', 'same-forever'], ['no token', undefined]]) {
  test(`with ${name}, 4011 is final: the same token cannot work again`, () => {
    const { clock, WebSocket, options } = harness({ token });
    const client = connect('ws://x/ws', options);
    const states = recorder(client, 'state');
    WebSocket.latest().accept();
    WebSocket.latest().drop(4011, '');
    const last = states[states.length - 1];
    assert.deepEqual(last, { state: 'disconnected', code: 4011, reason: 'token expired', willReconnect: false });
    assert.equal(clock.pendingCount, 0);
    clock.advance(60000);
    assert.equal(WebSocket.sockets.length, 1);
    client.close();
  });
}

// --- the session's end, from the token and from refresh replies ---

// Hours pass on the fake clock here: the silent fake server would trip the
// ping watchdog, which has tests of its own.
function quietHarness(extra = {}) {
  return harness({ pingTimeoutMs: 0, ...extra });
}

test('tokenExpiresAt reads a JWT payload\'s exp (base64url, UTF-8) and nothing else', () => {
  assert.equal(tokenExpiresAt(jwt({ exp: 1700000123 })), 1700000123000);
  assert.equal(tokenExpiresAt(jwt({ exp: 1700000123.5 })), 1700000123500);
  // base64url's '-' and '_' and a payload with no padding and non-ASCII text.
  const unicode = jwt({ name: 'Zoë ☃ \u{1F600}>>>???', exp: 42 });
  assert.match(unicode.split('.')[1], /[-_]/);
  assert.equal(tokenExpiresAt(unicode), 42000);
  for (const token of [
    'opaque-token', 'a.b', 'a.b.c.d.e', jwt({ sub: 'no exp' }), jwt({ exp: '1700000000' }), jwt({ exp: null }),
    `x.${base64url('[1,2]')}.y`, `x.${base64url('12')}.y`, `x.${base64url('null')}.y`, 'x.!!!.y', 'x..y',
    `x.${base64url('{"exp":1')}.y`, 'x.a.y', undefined, null, 17,
  ]) {
    assert.equal(tokenExpiresAt(token), null, String(token));
  }
});

test('a JWT\'s exp plans a refresh min(60 s, 10 %) before the end; the reply\'s expires_at plans the next', () => {
  const first = jwtEndingAt(600);
  const second = jwtEndingAt(1500);
  const tokens = [first, second];
  const { clock, WebSocket, options } = quietHarness({ token: () => tokens[0] });
  const client = connect('ws://x/ws', options);
  const ws = WebSocket.latest();
  assert.equal(client.expiresAt, null, 'not before the connection opens');
  ws.accept();
  assert.equal(client.expiresAt, WALL_CLOCK_AT_ZERO + 600000);

  clock.advance(539999);
  assert.equal(ws.requests('refresh').length, 0);
  tokens.shift();
  clock.advance(1);
  const refresh = ws.lastRequest('refresh');
  assert.deepEqual(refresh, { op: 'refresh', id: refresh.id, token: second });

  ws.deliver({ id: refresh.id, ok: { expires_at: WALL_CLOCK_AT_ZERO + 1500000 } });
  assert.equal(client.expiresAt, WALL_CLOCK_AT_ZERO + 1500000);
  // 960 s left at 540 s: the next one 60 s before the end, at 1440 s.
  tokens[0] = jwtEndingAt(2400);
  clock.advance(1440000 - 540000 - 1);
  assert.equal(ws.requests('refresh').length, 1);
  clock.advance(1);
  assert.equal(ws.requests('refresh').length, 2);
  assert.equal(ws.lastRequest('refresh').token, tokens[0]);
  client.close();
});

for (const [lifetime, refreshAt] of [[5, 4000], [100, 90000], [0.5, 0], [-10, 0]]) {
  test(`a session of ${lifetime} s is refreshed at ${refreshAt} ms (10 %, at least 1 s before the end)`, () => {
    let n = 0;
    const { clock, WebSocket, options } = quietHarness({ token: () => (n++ === 0 ? jwtEndingAt(lifetime) : 'next') });
    const client = connect('ws://x/ws', options);
    const ws = WebSocket.latest();
    ws.accept();
    if (refreshAt > 0) {
      clock.advance(refreshAt - 1);
      assert.equal(ws.requests('refresh').length, 0);
    }
    clock.advance(1);
    assert.equal(ws.requests('refresh').length, 1);
    client.close();
  });
}

test('with a clock ahead of the server\'s (every end looks past) refreshes come at most once a second', () => {
  const token = rotating((n) => (n === 1 ? jwtEndingAt(-3600) : `t${n}`));
  const { clock, WebSocket, options } = quietHarness({ token });
  const client = connect('ws://x/ws', options);
  const ws = WebSocket.latest();
  ws.accept();
  clock.advance(0);
  assert.equal(ws.requests('refresh').length, 1, 'at once: the end looks past');
  for (let i = 1; i <= 5; i++) {
    ws.deliver({ id: ws.lastRequest('refresh').id, ok: { expires_at: WALL_CLOCK_AT_ZERO - 1000 } });
    assert.equal(ws.requests('refresh').length, i, 'not at once after a reply');
    clock.advance(999);
    assert.equal(ws.requests('refresh').length, i);
    clock.advance(1);
    assert.equal(ws.requests('refresh').length, i + 1);
  }
  client.close();
});

test('refreshMarginMs overrides the margin', () => {
  let n = 0;
  const { clock, WebSocket, options } = quietHarness({ token: () => (n++ === 0 ? jwtEndingAt(600) : 'next'), refreshMarginMs: 5000 });
  const client = connect('ws://x/ws', options);
  WebSocket.latest().accept();
  clock.advance(594999);
  assert.equal(WebSocket.latest().requests('refresh').length, 0);
  clock.advance(1);
  assert.equal(WebSocket.latest().requests('refresh').length, 1);
  client.close();
});

test('a token that is not a JWT has no known end: no refresh until a reply says when', () => {
  const { clock, WebSocket, options } = quietHarness({ token: 'opaque' });
  const client = connect('ws://x/ws', options);
  WebSocket.latest().accept();
  assert.equal(client.expiresAt, null);
  clock.advance(24 * 3600 * 1000);
  assert.equal(WebSocket.latest().requests('refresh').length, 0);
  client.close();
});

test('an async token function at refresh time: the refresh waits for it', async () => {
  let n = 0;
  const { clock, WebSocket, options } = quietHarness({
    token: () => Promise.resolve(n++ === 0 ? jwtEndingAt(100) : jwtEndingAt(200)),
  });
  const client = connect('ws://x/ws', options);
  await settle();
  const ws = WebSocket.latest();
  ws.accept();
  clock.advance(90000);
  assert.equal(ws.requests('refresh').length, 0, 'not before the promise settles');
  await settle();
  assert.equal(ws.requests('refresh').length, 1);
  assert.equal(ws.lastRequest('refresh').token, jwtEndingAt(200));
  client.close();
});

test('an ok reply with no expires_at means no end: no more refreshes', () => {
  let n = 0;
  const { clock, WebSocket, options } = quietHarness({ token: () => (n++ === 0 ? jwtEndingAt(100) : 'forever') });
  const client = connect('ws://x/ws', options);
  const ws = WebSocket.latest();
  ws.accept();
  clock.advance(90000);
  ws.deliver({ id: ws.lastRequest('refresh').id, ok: {} });
  assert.equal(client.expiresAt, null);
  clock.advance(3600000);
  assert.equal(ws.requests('refresh').length, 1);
  client.close();
});

test('the same token again: no refresh sent, asked again halfway to the end, then left to 4011 and a reconnect', () => {
  const token = jwtEndingAt(100);
  const asked = [];
  let current = token;
  const { clock, WebSocket, options } = quietHarness({ token: () => { asked.push(clock.now); return current; } });
  const client = connect('ws://x/ws', options);
  const ws = WebSocket.latest();
  ws.accept();
  clock.advance(100000);
  assert.equal(ws.requests('refresh').length, 0, 'an unchanged token is not sent');
  // Asked at connect, at 90 s (10 s left), then at 95, 97.5, 98.75 s (1.25 s left: the last).
  assert.deepEqual(asked, [0, 90000, 95000, 97500, 98750]);
  const states = recorder(client, 'state');
  current = 'renewed';
  ws.drop(4011, 'token_expired');
  clock.advance(states[states.length - 1].delayMs);
  assert.deepEqual(WebSocket.latest().protocols, [PROTOCOL, 'livecast.bearer.renewed']);
  client.close();
});

test('a refused refresh emits error with the server\'s code; the 4011 that follows reconnects with a new token', () => {
  let n = 0;
  const { clock, WebSocket, options } = quietHarness({ token: () => (++n === 1 ? jwtEndingAt(100) : `t${n}`) });
  const client = connect('ws://x/ws', options);
  const errors = recorder(client, 'error');
  const ws = WebSocket.latest();
  ws.accept();
  clock.advance(90000);
  const refresh = ws.lastRequest('refresh');
  assert.equal(refresh.token, 't2');
  ws.deliver({ id: refresh.id, error: { code: 'unauthorized', message: 'another principal' } });
  assert.equal(errors.length, 1);
  assert.equal(errors[0].code, 'unauthorized');
  assert.equal(errors[0].message, 'another principal');
  assert.equal(client.state, 'connected');
  clock.advance(9999);
  assert.equal(ws.requests('refresh').length, 1, 'no second try: the server ends the session');
  ws.drop(4011, 'token_expired');
  clock.advance(1000);
  assert.equal(WebSocket.sockets.length, 2);
  assert.deepEqual(WebSocket.latest().protocols, [PROTOCOL, 'livecast.bearer.t3']);
  client.close();
});

test('a token function failing at refresh time emits error and is asked again later', () => {
  let n = 0;
  const { clock, WebSocket, options } = quietHarness({
    token: () => {
      n++;
      if (n === 1) return jwtEndingAt(100);
      if (n === 2) throw new Error('offline');
      return 'later';
    },
  });
  const client = connect('ws://x/ws', options);
  const errors = recorder(client, 'error');
  const ws = WebSocket.latest();
  ws.accept();
  clock.advance(90000);
  assert.equal(errors.length, 1);
  assert.equal(errors[0].code, 'token_unavailable');
  assert.equal(ws.requests('refresh').length, 0);
  clock.advance(5000);
  assert.equal(ws.lastRequest('refresh').token, 'later');
  client.close();
});

test('the refresh timer ends with the connection and with close()', () => {
  const { clock, WebSocket, options } = quietHarness({ token: () => jwtEndingAt(100) });
  const client = connect('ws://x/ws', options);
  WebSocket.latest().accept();
  assert.equal(clock.pendingCount, 1, 'the refresh timer');
  WebSocket.latest().drop(1006);
  assert.equal(client.expiresAt, null);
  assert.deepEqual(clock.pendingDelays(), [125], 'only the reconnect (random 0.5 of 250 ms) is left');
  clock.advance(125);
  WebSocket.latest().accept();
  assert.equal(clock.pendingCount, 1, 'a new refresh timer for the new connection');
  client.close();
  assert.equal(clock.pendingCount, 0);
  assert.equal(client.expiresAt, null);
  clock.advance(100000);
  assert.equal(WebSocket.sockets.every((ws) => ws.requests('refresh').length === 0), true);
});

test('a token asked for a refresh that settles after the connection dropped is not sent', async () => {
  let resolveToken = null;
  let n = 0;
  const { clock, WebSocket, options } = quietHarness({
    token: () => (n++ === 0 ? jwtEndingAt(100) : new Promise((resolve) => { resolveToken = resolve; })),
    pingTimeoutMs: 0,
  });
  const client = connect('ws://x/ws', options);
  const ws = WebSocket.latest();
  ws.accept();
  clock.advance(90000);
  assert.ok(resolveToken, 'the refresh asked');
  ws.drop(1006);
  resolveToken('too late');
  await settle();
  assert.equal(ws.requests('refresh').length, 0);
  client.close();
});

// --- the HTTP fallbacks ---

test('over SSE no refresh is sent; the stream\'s close with 4011 reconnects with a new token', () => {
  const token = rotating((n) => (n === 1 ? jwtEndingAt(100) : `t${n}`));
  const { clock, EventSource, options } = fallbackHarness({ transports: ['sse'], token, pingTimeoutMs: 0 });
  const client = new Client('ws://x/ws', options);
  client.subscribe('a');
  client.open();
  const es = EventSource.latest();
  es.accept();
  assert.equal(client.transport, 'sse');
  assert.equal(client.expiresAt, null);
  assert.equal(clock.pendingCount, 0, 'no refresh timer');
  es.event('close', { code: 4011, reason: 'token_expired' });
  const states = recorder(client, 'state');
  clock.advance(1000);
  assert.equal(EventSource.sources.length, 2);
  assert.equal(EventSource.latest().query.get('token'), 't2');
  assert.equal(states[0].state, 'connecting');
  client.close();
});

test('over SSE a stream restarted for a new subscription carries the token of the moment', async () => {
  const token = rotating();
  const { clock, EventSource, options } = fallbackHarness({ transports: ['sse'], token });
  const client = new Client('ws://x/ws', options);
  client.subscribe('a');
  client.open();
  EventSource.latest().accept();
  assert.equal(EventSource.latest().query.get('token'), 't1');
  client.subscribe('b');
  clock.advance(50);
  assert.equal(EventSource.latest().query.get('token'), 't2');
  client.close();
});

test('long-polling: each poll and POST carries a fresh token from the token function', async () => {
  const token = rotating();
  const { clock, fetch, options } = fallbackHarness({ transports: ['poll'], token });
  const client = connect('ws://x/ws', options);
  client.subscribe('a');
  fetch.latest('POST').respond(200, { messages: [{ ok: {} }] });
  await settle();
  clock.advance(50);
  const poll1 = fetch.latest('GET');
  assert.equal(poll1.query.get('token'), 't2');
  poll1.respond(200, { messages: [{ id: 1, ok: { topic: 'a', epoch: 'e', offset: 1, recovered: false } }] });
  await settle();
  const poll2 = fetch.latest('GET');
  assert.notEqual(poll2, poll1);
  assert.equal(poll2.query.get('token'), 't3');
  const published = client.publish('a', 1);
  const post = fetch.latest('POST');
  assert.equal(post.query.get('token'), 't4');
  post.respond(200, { messages: [{ id: JSON.parse(post.body).id, ok: { topic: 'a', offset: 2 } }] });
  assert.deepEqual(await published, { topic: 'a', offset: 2 });
  client.close();
});

test('long-polling with an async token function: the poll waits for the token', async () => {
  let n = 0;
  const { clock, fetch, options } = fallbackHarness({ transports: ['poll'], token: async () => `a${++n}` });
  const client = connect('ws://x/ws', options);
  client.subscribe('a');
  await settle();
  fetch.latest('POST').respond(200, { messages: [] });
  await settle();
  clock.advance(50);
  assert.equal(fetch.pending('GET').length, 0, 'not before the token');
  await settle();
  assert.equal(fetch.pending('GET').length, 1);
  assert.equal(fetch.latest('GET').query.get('token'), 'a2');
  client.close();
  await settle();
  assert.equal(fetch.pending('GET').length, 0);
});

test('a token function failing before a poll ends the fallback like a failed request (reconnect)', async () => {
  let n = 0;
  const { clock, fetch, options } = fallbackHarness({
    transports: ['poll'], token: () => { if (++n === 2) throw new Error('no token'); return `t${n}`; },
  });
  const client = connect('ws://x/ws', options);
  client.subscribe('a');
  const states = recorder(client, 'state');
  fetch.latest('POST').respond(200, { messages: [] });
  await settle();
  clock.advance(50);
  const last = states[states.length - 1];
  assert.equal(last.state, 'disconnected');
  assert.equal(last.code, 1006);
  assert.match(last.reason, /no token/);
  assert.equal(last.willReconnect, true);
  clock.advance(last.delayMs);
  assert.equal(fetch.latest('POST').query.get('token'), 't3');
  client.close();
});

test('a 401 after the fallback had been let in counts as 4011: a new token and a reconnect', async () => {
  const token = rotating();
  const { clock, fetch, options } = fallbackHarness({ transports: ['poll'], token });
  const client = connect('ws://x/ws', options);
  client.subscribe('a');
  const states = recorder(client, 'state');
  fetch.latest('POST').respond(200, { messages: [] });
  await settle();
  clock.advance(50);
  fetch.latest('GET').respond(401, { error: { code: 'unauthorized', message: 'expired' } });
  await settle();
  const last = states[states.length - 1];
  assert.equal(last.code, 4011);
  assert.equal(last.willReconnect, true);
  clock.advance(last.delayMs);
  const probe = fetch.latest('POST');
  assert.equal(probe.query.get('token'), 't3');
  // The first request of the new fallback refused: 4001, final.
  probe.respond(401, { error: { code: 'unauthorized', message: 'no' } });
  await settle();
  assert.equal(states[states.length - 1].code, 4001);
  assert.equal(states[states.length - 1].willReconnect, false);
  client.close();
});

test('over SSE a POST refused with 401 after the stream opened counts as 4011; with a fixed token that is final', async () => {
  const { EventSource, fetch, options } = fallbackHarness({ transports: ['sse'], token: 'fixed' });
  const client = new Client('ws://x/ws', options);
  client.subscribe('a');
  client.open();
  EventSource.latest().accept();
  const states = recorder(client, 'state');
  const published = client.publish('a', 1);
  fetch.latest('POST').respond(401, { error: { code: 'unauthorized', message: 'expired' } });
  await assert.rejects(published, (error) => error.code === 'disconnected');
  const last = states[states.length - 1];
  assert.deepEqual(last, { state: 'disconnected', code: 4011, reason: 'HTTP 401', willReconnect: false });
  client.close();
});
