import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, formatCursor, httpUrlBeside } from '../src/livecast.js';
import { harness, recorder, fakeEventSourceClass, fakeFetch, settle } from './fakes.js';

// A client with every transport, scripted: WebSocket, EventSource and fetch.
function fallbackHarness(extra = {}) {
  const EventSource = fakeEventSourceClass();
  const fetch = fakeFetch();
  const h = harness({ transports: ['websocket', 'sse', 'poll'], EventSource, fetch, ...extra });
  return { ...h, EventSource, fetch };
}

const EPOCH = 'e1';

test('formatCursor percent-encodes topic and epoch and leaves out topics without a position', () => {
  assert.equal(formatCursor([
    { topic: 'a,b:c', position: { epoch: 'x:y', offset: 7 } },
    { topic: 'none', position: null },
    { topic: 'plain', position: { epoch: 'k', offset: 0 } },
  ]), 'a%2Cb%3Ac:x%3Ay:7,plain:k:0');
});

test('the SSE and poll URLs default to the WebSocket host with http(s)', () => {
  assert.equal(httpUrlBeside('ws://dash.test:8080/ws?x=1', '/sse'), 'http://dash.test:8080/sse');
  assert.equal(httpUrlBeside('wss://dash.test/ws', '/poll'), 'https://dash.test/poll');
});

test('a WebSocket that never opens falls back to SSE, which reports itself in the state events', async () => {
  const { WebSocket, EventSource, options } = fallbackHarness({ token: 't k' });
  const client = connect('ws://dash.test:8080/ws', options);
  const states = recorder(client, 'state');
  const seen = [];
  client.subscribe('kpi,1', (data, meta) => seen.push([data, meta.offset]));
  WebSocket.latest().drop(1006);

  assert.equal(EventSource.sources.length, 1, 'SSE tried at once');
  const es = EventSource.latest();
  assert.ok(es.url.startsWith('http://dash.test:8080/sse?'));
  assert.equal(es.query.get('topics'), 'kpi,1');  // decoded: the raw value was kpi%2C1
  assert.ok(es.url.includes('topics=kpi%2C1'));
  assert.equal(es.query.get('token'), 't k');
  assert.equal(es.query.get('cursor'), null, 'no position yet, no cursor');
  const fallback = states.find((s) => s.state === 'disconnected');
  assert.equal(fallback.fallback, 'sse');
  assert.equal(fallback.transport, 'websocket');
  assert.deepEqual(states[states.length - 1], { state: 'connecting', attempt: 0, transport: 'sse' });

  es.accept();
  assert.equal(client.state, 'connected');
  assert.equal(client.transport, 'sse');
  assert.deepEqual(states[states.length - 1], { state: 'connected', attempt: 0, transport: 'sse' });

  // The stream's subscribe id 1 is the client's own request.
  es.deliver({ id: 1, ok: { topic: 'kpi,1', epoch: EPOCH, offset: 3, recovered: false } }, `kpi%2C1:${EPOCH}:3`);
  es.deliver({ topic: 'kpi,1', offset: 3, data: 'snap' });
  es.deliver({ topic: 'kpi,1', offset: 4, data: 'live' });
  assert.equal(client.getSubscription('kpi,1').state, 'subscribed');
  assert.deepEqual(seen, [['snap', 3], ['live', 4]]);
  client.close();
  assert.ok(es.closed);
});

test('over SSE a change of subscriptions restarts the stream once, with the cursor', () => {
  const { clock, WebSocket, EventSource, options } = fallbackHarness();
  const client = connect('ws://x/ws', options);
  client.subscribe('a');
  WebSocket.latest().drop(1006);
  const first = EventSource.latest();
  first.accept();
  first.deliver({ id: 1, ok: { topic: 'a', epoch: EPOCH, offset: 5, recovered: false } });
  first.deliver({ topic: 'a', offset: 5, data: 1 });

  const b = client.subscribe('b');
  client.subscribe('c');
  assert.equal(EventSource.sources.length, 1, 'debounced');
  clock.advance(options.fallbackRestartDelayMs ?? 50);
  assert.equal(EventSource.sources.length, 2);
  assert.ok(first.closed);
  const second = EventSource.latest();
  assert.equal(second.query.get('topics'), 'a,b,c');
  assert.equal(second.query.get('cursor'), `a:${EPOCH}:5`);

  // Replies: 'a' is a notice now (the client did not ask), 'b' and 'c' answer the client's requests.
  second.accept();
  second.deliver({ id: 1, ok: { topic: 'a', epoch: EPOCH, offset: 5, recovered: true } });
  second.deliver({ id: 2, ok: { topic: 'b', epoch: EPOCH, offset: 0, recovered: false } });
  second.deliver({ id: 3, error: { code: 'forbidden', message: 'no' } });
  assert.equal(client.getSubscription('a').state, 'subscribed');
  assert.equal(client.getSubscription('a').offset, 5);
  assert.equal(b.state, 'subscribed');
  assert.equal(client.getSubscription('c'), undefined, 'refused topic dropped');

  // Unsubscribing restarts without the topic; the refused one stays out.
  b.unsubscribe();
  clock.advance(50);
  assert.equal(EventSource.latest().query.get('topics'), 'a');
  client.close();
});

test('over SSE publish and ping go through POST /poll', async () => {
  const { WebSocket, EventSource, fetch, options } = fallbackHarness({ token: 'tok' });
  const client = connect('ws://x/ws', options);
  client.subscribe('a');
  WebSocket.latest().drop(1006);
  EventSource.latest().accept();
  const published = client.publish('a', { v: 1 });
  const post = fetch.latest('POST');
  assert.equal(post.url, 'http://x/poll?token=tok');
  const body = JSON.parse(post.body);
  assert.equal(body.op, 'publish');
  post.respond(200, { messages: [{ id: body.id, ok: { topic: 'a', offset: 9 } }] });
  assert.deepEqual(await published, { topic: 'a', offset: 9 });
  client.close();
});

test('a publish the server refuses with an HTTP status is rejected, and the connection stays', async () => {
  const { WebSocket, EventSource, fetch, options } = fallbackHarness();
  const client = connect('ws://x/ws', options);
  client.subscribe('a');
  WebSocket.latest().drop(1006);
  EventSource.latest().accept();
  const published = client.publish('a', 'x'.repeat(10));
  fetch.latest('POST').respond(413, { error: { code: 'too_large', message: 'request body too large' } });
  await assert.rejects(published, (error) => error.code === 'message_too_large');
  assert.equal(client.state, 'connected');
  assert.equal(client.transport, 'sse');
  client.close();
});

test('over SSE the watchdog pings through POST /poll and an answer keeps the stream', async () => {
  const { clock, WebSocket, EventSource, fetch, options } = fallbackHarness({ pingTimeoutMs: 25000, upgradeIntervalMs: 0 });
  const client = connect('ws://x/ws', options);
  client.subscribe('a');
  WebSocket.latest().drop(1006);
  EventSource.latest().accept();
  clock.advance(25000);
  const ping = fetch.latest('POST');
  const request = JSON.parse(ping.body);
  assert.equal(request.op, 'ping');
  ping.respond(200, { messages: [{ id: request.id, ok: {} }] });
  await settle();
  clock.advance(10000);
  assert.equal(client.state, 'connected');
  assert.equal(EventSource.sources.length, 1);
  // No answer to the next one: the stream is given up and reopened.
  clock.advance(25000 - 10000);
  assert.equal(fetch.pending('POST').length, 1);
  clock.advance(10000);
  assert.equal(client.state, 'disconnected');
  client.close();
});

test('the server ending the stream (event: close) reconnects with back-off on SSE', () => {
  const { clock, WebSocket, EventSource, options } = fallbackHarness({ random: () => 1, minDelayMs: 100 });
  const client = connect('ws://x/ws', options);
  client.subscribe('a');
  WebSocket.latest().drop(1006);
  const es = EventSource.latest();
  es.accept();
  es.deliver({ id: 1, ok: { topic: 'a', epoch: EPOCH, offset: 2, recovered: false } });
  const states = recorder(client, 'state');
  es.event('close', { code: 4008, reason: 'send queue full' });
  assert.ok(es.closed);
  const lost = states[states.length - 1];
  assert.equal(lost.code, 4008);
  assert.equal(lost.willReconnect, true);
  assert.equal(lost.delayMs, 100);
  clock.advance(100);
  assert.equal(EventSource.sources.length, 2, 'the transport that worked is tried again');
  assert.equal(WebSocket.sockets.length, 1);
  assert.equal(EventSource.latest().query.get('cursor'), `a:${EPOCH}:2`);
  client.close();
});

test('SSE failing before it opens falls back to long-polling: replies, ids and the cursor from poll to poll', async () => {
  const { clock, WebSocket, EventSource, fetch, options } = fallbackHarness({ pollTimeoutMs: 20000 });
  const client = connect('ws://x/ws', options);
  const seen = [];
  client.subscribe('a', (data, meta) => seen.push(meta.offset));
  WebSocket.latest().drop(1006);
  EventSource.latest().fail();
  fetch.latest('POST').respond(200, { messages: [] });
  await settle();
  assert.equal(client.transport, 'poll');
  clock.advance(50);

  const first = fetch.latest('GET');
  assert.ok(first.url.startsWith('http://x/poll?'));
  assert.equal(first.query.get('topics'), 'a');
  assert.equal(first.query.get('timeout'), '20000');
  assert.equal(first.query.get('cursor'), null);
  first.respond(200, {
    cursor: `a:${EPOCH}:4`,
    messages: [
      { id: 1, ok: { topic: 'a', epoch: EPOCH, offset: 4, recovered: false } },
      { topic: 'a', offset: 4, data: 'snap' },
    ],
  });
  await settle();
  assert.equal(client.getSubscription('a').state, 'subscribed');
  assert.deepEqual(seen, [4]);

  const second = fetch.latest('GET');
  assert.notEqual(second, first);
  assert.equal(second.query.get('cursor'), `a:${EPOCH}:4`);
  second.respond(200, { cursor: `a:${EPOCH}:6`, messages: [
    { topic: 'a', offset: 4, data: 'again' },  // already delivered: dropped
    { topic: 'a', offset: 5, data: 5 },
    { topic: 'a', offset: 6, data: 6 },
  ] });
  await settle();
  assert.deepEqual(seen, [4, 5, 6]);
  assert.equal(fetch.latest('GET').query.get('cursor'), `a:${EPOCH}:6`);

  // A new topic aborts the waiting poll and polls both.
  const waiting = fetch.latest('GET');
  client.subscribe('b');
  clock.advance(50);
  await settle();
  assert.ok(waiting.aborted);
  const both = fetch.latest('GET');
  assert.equal(both.query.get('topics'), 'a,b');
  assert.equal(both.query.get('cursor'), `a:${EPOCH}:6`);
  assert.equal(client.state, 'connected', 'an aborted poll is not a lost connection');
  client.close();
});

test('long-polling: a reconnect whose cursor is up to date still settles the subscription', async () => {
  const { clock, WebSocket, EventSource, fetch, options } = fallbackHarness({ transports: ['poll'], random: () => 0 });
  const client = connect('ws://x/ws', options);
  const sub = client.subscribe('a');
  fetch.latest('POST').respond(200, { messages: [] });
  await settle();
  clock.advance(50);
  fetch.latest('GET').respond(200, { cursor: `a:${EPOCH}:2`, messages: [
    { id: 1, ok: { topic: 'a', epoch: EPOCH, offset: 2, recovered: false } },
  ] });
  await settle();
  // The poll fails: reconnect, resubscribe with recover.
  fetch.latest('GET').fail();
  await settle();
  assert.equal(client.state, 'disconnected');
  clock.advance(0);
  fetch.latest('POST').respond(200, { messages: [] });
  await settle();
  assert.equal(sub.state, 'subscribing');
  clock.advance(50);
  const poll = fetch.latest('GET');
  assert.equal(poll.query.get('cursor'), `a:${EPOCH}:2`);
  // Nothing new: the server leaves the confirming reply out.
  poll.respond(200, { cursor: `a:${EPOCH}:2`, messages: [] });
  await settle();
  assert.equal(sub.state, 'subscribed');
  assert.equal(sub.offset, 2);
  void WebSocket;
  void EventSource;
  client.close();
});

test('a refused token over HTTP is final, like close code 4001', async () => {
  const { fetch, options } = fallbackHarness({ transports: ['poll'] });
  const client = connect('ws://x/ws', options);
  const states = recorder(client, 'state');
  fetch.latest('POST').respond(401, { error: { code: 'unauthorized', message: 'no' } });
  await settle();
  const last = states[states.length - 1];
  assert.equal(last.state, 'disconnected');
  assert.equal(last.code, 4001);
  assert.equal(last.willReconnect, false);
  client.close();
});

test('when every transport fails the client backs off and starts again from the WebSocket', async () => {
  const { clock, WebSocket, EventSource, fetch, options } = fallbackHarness({ random: () => 1, minDelayMs: 200 });
  const client = connect('ws://x/ws', options);
  client.subscribe('a');
  const states = recorder(client, 'state');
  WebSocket.latest().drop(1006);
  EventSource.latest().fail();
  fetch.latest('POST').fail();
  await settle();
  const last = states[states.length - 1];
  assert.equal(last.state, 'disconnected');
  assert.equal(last.transport, 'poll');
  assert.equal(last.delayMs, 200);
  clock.advance(200);
  assert.equal(WebSocket.sockets.length, 2);
  assert.equal(client.state, 'connecting');
  client.close();
});

test('on a fallback the client probes the WebSocket and moves back without losing or repeating publications', async () => {
  const { clock, WebSocket, EventSource, fetch, options } = fallbackHarness({ upgradeIntervalMs: 30000, random: () => 0.5, pingTimeoutMs: 0 });
  const client = connect('ws://x/ws', options);
  const seen = [];
  client.subscribe('a', (data, meta) => seen.push(meta.offset));
  WebSocket.latest().drop(1006);
  const es = EventSource.latest();
  es.accept();
  es.deliver({ id: 1, ok: { topic: 'a', epoch: EPOCH, offset: 1, recovered: false } });
  es.deliver({ topic: 'a', offset: 1, data: 1 });
  es.deliver({ topic: 'a', offset: 2, data: 2 });

  // 30 s ± 20 %: with random() = 0.5 exactly 30 s.
  clock.advance(29999);
  assert.equal(WebSocket.sockets.length, 1);
  clock.advance(1);
  assert.equal(WebSocket.sockets.length, 2);
  const failedProbe = WebSocket.latest();
  failedProbe.drop(1006);
  assert.equal(client.transport, 'sse', 'a failed probe changes nothing');
  assert.equal(client.state, 'connected');

  clock.advance(30000);
  const probe = WebSocket.latest();
  assert.notEqual(probe, failedProbe);
  const states = recorder(client, 'state');
  probe.accept();
  assert.ok(es.closed, 'the stream is closed once the WebSocket is in use');
  assert.equal(client.transport, 'websocket');
  assert.deepEqual(states[states.length - 1], { state: 'connected', attempt: 0, transport: 'websocket' });
  const resubscribe = probe.lastRequest('subscribe');
  assert.deepEqual(resubscribe.recover, { epoch: EPOCH, offset: 2 });
  probe.deliver({ id: resubscribe.id, ok: { topic: 'a', epoch: EPOCH, offset: 3, recovered: true } });
  probe.deliver({ topic: 'a', offset: 2, data: 2 });  // overlap: skipped
  probe.deliver({ topic: 'a', offset: 3, data: 3 });
  assert.deepEqual(seen, [1, 2, 3]);
  assert.equal(fetch.calls.length, 0);
  clock.advance(120000);
  assert.equal(WebSocket.sockets.length, 3, 'no more probes once on the WebSocket');
  client.close();
});

test('an upgrade waits while a publish is in flight over the fallback', async () => {
  const { clock, WebSocket, EventSource, fetch, options } = fallbackHarness({ upgradeIntervalMs: 1000, random: () => 0.5 });
  const client = connect('ws://x/ws', options);
  client.subscribe('a');
  WebSocket.latest().drop(1006);
  EventSource.latest().accept();
  const published = client.publish('a', 1);
  clock.advance(1000);
  const probe = WebSocket.latest();
  probe.accept();
  assert.equal(client.transport, 'sse');
  assert.ok(probe.closedWith, 'the probe is let go');
  const post = fetch.latest('POST');
  post.respond(200, { messages: [{ id: JSON.parse(post.body).id, ok: { topic: 'a', offset: 1 } }] });
  assert.deepEqual(await published, { topic: 'a', offset: 1 });
  clock.advance(1000);
  WebSocket.latest().accept();
  assert.equal(client.transport, 'websocket');
  client.close();
});

test('the fallbacks ask for recent history with `recent` for topics that have no position yet', () => {
  const { clock, WebSocket, EventSource, options } = fallbackHarness();
  const client = connect('ws://x/ws', options);
  client.subscribe('org:a:agg.1s', null, { recent: { count: 60, seconds: 120 } });
  client.subscribe('plain');
  WebSocket.latest().drop(1006);
  const first = EventSource.latest();
  assert.equal(first.query.get('recent'), 'org%3Aa%3Aagg.1s:60:120');
  first.accept();
  first.deliver({ id: 1, ok: { topic: 'org:a:agg.1s', epoch: EPOCH, offset: 9, recovered: false } });
  first.deliver({ topic: 'org:a:agg.1s', offset: 10, data: 1 });
  first.deliver({ id: 2, ok: { topic: 'plain', epoch: EPOCH, offset: 0, recovered: false } });
  // The next stream carries the topic's position in the cursor instead.
  client.subscribe('later', null, { recent: { count: 5 } });
  clock.advance(options.fallbackRestartDelayMs ?? 50);
  const second = EventSource.latest();
  assert.notEqual(second, first);
  assert.equal(second.query.get('recent'), 'later:5:0');
  assert.ok(second.query.get('cursor').includes(`org%3Aa%3Aagg.1s:${EPOCH}:10`));
  client.close();
});
