// A transport that has opened in this client is retried with back-off when it
// fails, for transportRetryMs, before the next one is tried; one that never
// opened is followed by the next at once (fallback.test.js covers that too).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from '../src/livecast.js';
import { harness, recorder, fakeEventSourceClass, fakeFetch, settle } from './fakes.js';

// Every transport, scripted; random() = 1 makes each back-off its ceiling:
// 250, 500, 1000, 2000, 4000, 8000 ms.
function fallbackHarness(extra = {}) {
  const EventSource = fakeEventSourceClass();
  const fetch = fakeFetch();
  const h = harness({
    transports: ['websocket', 'sse', 'poll'], EventSource, fetch, random: () => 1, upgradeIntervalMs: 0, ...extra,
  });
  return { ...h, EventSource, fetch };
}

const disconnects = (states) => states.filter((s) => s.state === 'disconnected');

test('a WebSocket that worked and whose retry fails is retried after the back-off, not left for SSE', () => {
  const { clock, WebSocket, EventSource, fetch, options } = fallbackHarness();
  const client = connect('ws://x/ws', options);
  client.subscribe('a');
  WebSocket.latest().accept();
  const states = recorder(client, 'state');

  // The server is killed: the connection drops, the retry comes after the back-off.
  WebSocket.latest().drop(1006);
  assert.deepEqual(disconnects(states).at(-1), {
    state: 'disconnected', code: 1006, reason: '', transport: 'websocket', willReconnect: true, delayMs: 250,
    attempt: 1,
  });
  clock.advance(250);
  assert.equal(WebSocket.sockets.length, 2);

  // The retry lands while the new server is still starting: refused.
  WebSocket.latest().drop(1006);
  const refused = disconnects(states).at(-1);
  assert.equal(refused.transport, 'websocket');
  assert.equal(refused.fallback, undefined, 'no fall-through to SSE');
  assert.equal(refused.willReconnect, true);
  assert.equal(refused.delayMs, 500);
  assert.equal(refused.attempt, 2);
  assert.equal(EventSource.sources.length, 0);
  assert.equal(fetch.calls.length, 0);
  assert.equal(client.state, 'disconnected');

  // The server is up by the next retry: back on the WebSocket.
  clock.advance(499);
  assert.equal(WebSocket.sockets.length, 2, 'not before the back-off');
  clock.advance(1);
  assert.equal(WebSocket.sockets.length, 3);
  WebSocket.latest().accept();
  assert.equal(client.state, 'connected');
  assert.equal(client.transport, 'websocket');
  assert.equal(WebSocket.latest().lastRequest('subscribe').topic, 'a');
  assert.equal(EventSource.sources.length, 0);
  client.close();
});

test('a server back within transportRetryMs is reached over the WebSocket however many retries it refused', () => {
  const { clock, WebSocket, EventSource, options } = fallbackHarness();
  const client = connect('ws://x/ws', options);
  client.subscribe('a');  // so that SSE opens a stream
  WebSocket.latest().accept();
  const states = recorder(client, 'state');
  WebSocket.latest().drop(1006);
  // Retries at 250, 750, 1750, 3750 and 7750 ms after the drop, all refused:
  // the first failed one began at 250 ms, so every failure is within 10 s of it.
  const delays = [];
  for (let i = 0; i < 5; i++) {
    clock.advance(disconnects(states).at(-1).delayMs);
    WebSocket.latest().drop(1006);
    delays.push(disconnects(states).at(-1).delayMs);
  }
  assert.deepEqual(delays, [500, 1000, 2000, 4000, 8000]);
  assert.ok(disconnects(states).every((s) => s.fallback === undefined && s.transport === 'websocket'));
  assert.equal(EventSource.sources.length, 0);
  clock.advance(8000);
  assert.equal(WebSocket.sockets.length, 7);
  WebSocket.latest().accept();
  assert.equal(client.transport, 'websocket');
  client.close();
});

test('a WebSocket that worked but keeps failing for transportRetryMs falls through to SSE, and is probed again from there', () => {
  const { clock, WebSocket, EventSource, options } = fallbackHarness({ upgradeIntervalMs: 30000, pingTimeoutMs: 0 });
  const client = connect('ws://x/ws', options);
  client.subscribe('a');  // so that SSE opens a stream
  WebSocket.latest().accept();
  const states = recorder(client, 'state');
  WebSocket.latest().drop(1006);
  // Failures at 250 ... 7750 ms (window from 250 ms: 0 ... 7500 ms in) back off;
  // the next retry, at 15750 ms, fails 15.5 s in: past the 10 s window.
  for (let i = 0; i < 6; i++) {
    clock.advance(disconnects(states).at(-1).delayMs);
    WebSocket.latest().drop(1006);
  }
  assert.equal(clock.now, 15750);
  const gaveUp = disconnects(states).at(-1);
  assert.deepEqual(gaveUp, {
    state: 'disconnected', code: 1006, reason: '', willReconnect: true, delayMs: 0,
    transport: 'websocket', fallback: 'sse',
  });
  assert.equal(disconnects(states).filter((s) => s.fallback !== undefined).length, 1,
    'only the last failure fell through');
  assert.equal(EventSource.sources.length, 1, 'SSE tried at once');
  assert.deepEqual(states.at(-1), { state: 'connecting', attempt: 6, transport: 'sse' });
  EventSource.latest().accept();
  assert.equal(client.transport, 'sse');

  // The WebSocket is not written off: the upgrade probe (30 s + 20 % with
  // random() = 1, a hair over 36 s in floating point) moves back once it opens.
  clock.advance(36001);
  assert.equal(WebSocket.sockets.length, 8);
  const probe = WebSocket.latest();
  probe.accept();
  assert.equal(client.transport, 'websocket');
  assert.ok(EventSource.latest().closed);
  client.close();
});

test('a WebSocket that worked and now gets no answer at all falls through after one connect timeout', () => {
  const { clock, WebSocket, EventSource, options } = fallbackHarness({ pingTimeoutMs: 25000 });
  const client = connect('ws://x/ws', options);
  client.subscribe('a');  // so that SSE opens a stream
  WebSocket.latest().accept();
  const states = recorder(client, 'state');
  WebSocket.latest().drop(1006);
  clock.advance(250);
  assert.equal(WebSocket.sockets.length, 2);
  // A black hole (the network's proxy swallows the upgrade): the attempt
  // times out 25 s after it began, past the 10 s window.
  clock.advance(25000);
  assert.ok(WebSocket.latest().closedWith, 'the hanging attempt is let go');
  const gaveUp = disconnects(states).at(-1);
  assert.equal(gaveUp.code, 4000);
  assert.equal(gaveUp.transport, 'websocket');
  assert.equal(gaveUp.fallback, 'sse');
  assert.equal(EventSource.sources.length, 1);
  client.close();
});

test('transportRetryMs: 0 falls through on the first failed reconnect, as before the retry window', () => {
  const { clock, WebSocket, EventSource, options } = fallbackHarness({ transportRetryMs: 0 });
  const client = connect('ws://x/ws', options);
  client.subscribe('a');  // so that SSE opens a stream
  WebSocket.latest().accept();
  const states = recorder(client, 'state');
  WebSocket.latest().drop(1006);
  clock.advance(250);
  assert.equal(WebSocket.sockets.length, 2, 'the drop itself is still retried on the WebSocket');
  WebSocket.latest().drop(1006);
  assert.equal(disconnects(states).at(-1).fallback, 'sse');
  assert.equal(EventSource.sources.length, 1);
  client.close();
});

test('each transport chosen anew starts with no failures: a new window after a fall-through and after all failed', async () => {
  const { clock, WebSocket, EventSource, fetch, options } = fallbackHarness({ transportRetryMs: 1000 });
  const client = connect('ws://x/ws', options);
  client.subscribe('a');  // so that SSE opens a stream
  WebSocket.latest().accept();
  const states = recorder(client, 'state');
  WebSocket.latest().drop(1006);
  // 1 s window from 250 ms: failures at 250 and 750 ms back off, the one at 1750 ms falls through.
  clock.advance(250);
  WebSocket.latest().drop(1006);
  clock.advance(500);
  WebSocket.latest().drop(1006);
  assert.equal(EventSource.sources.length, 0);
  clock.advance(1000);
  WebSocket.latest().drop(1006);
  assert.equal(disconnects(states).at(-1).fallback, 'sse');
  // SSE and long-polling never opened in this client: each falls through at once.
  EventSource.latest().fail();
  assert.equal(disconnects(states).at(-1).fallback, 'poll');
  fetch.latest('POST').fail();
  await settle();
  const allFailed = disconnects(states).at(-1);
  assert.equal(allFailed.transport, 'poll');
  assert.equal(allFailed.fallback, undefined);
  assert.equal(allFailed.delayMs, 2000);
  // Back to the WebSocket after the back-off, with a fresh window: its next
  // failure backs off again instead of falling through.
  clock.advance(2000);
  assert.equal(client.transport, 'websocket');
  assert.equal(WebSocket.sockets.length, 5);
  WebSocket.latest().drop(1006);
  assert.equal(disconnects(states).at(-1).fallback, undefined);
  assert.equal(disconnects(states).at(-1).transport, 'websocket');
  assert.equal(EventSource.sources.length, 1);
  client.close();
});

test('a fallback that worked is retried too: SSE whose retry fails is not left for long-polling', () => {
  const { clock, WebSocket, EventSource, fetch, options } = fallbackHarness();
  const client = connect('ws://x/ws', options);
  client.subscribe('a');
  WebSocket.latest().drop(1006);  // never opened: SSE at once
  EventSource.latest().accept();
  const states = recorder(client, 'state');
  EventSource.latest().fail();
  clock.advance(disconnects(states).at(-1).delayMs);
  assert.equal(EventSource.sources.length, 2);
  EventSource.latest().fail();
  const refused = disconnects(states).at(-1);
  assert.equal(refused.transport, 'sse');
  assert.equal(refused.fallback, undefined);
  assert.ok(refused.delayMs > 0);
  assert.equal(fetch.calls.length, 0, 'no long-polling');
  clock.advance(refused.delayMs);
  assert.equal(EventSource.sources.length, 3);
  assert.equal(WebSocket.sockets.length, 1, 'the WebSocket that never opened is not tried in between');
  EventSource.latest().accept();
  assert.equal(client.transport, 'sse');
  client.close();
});

test('a reconnect after 4012 that fails retries the transport the server drained', () => {
  const { clock, WebSocket, EventSource, options } = fallbackHarness();
  const client = connect('ws://x/ws', options);
  client.subscribe('a');  // so that SSE opens a stream
  WebSocket.latest().accept();
  const states = recorder(client, 'state');
  WebSocket.latest().drop(4012, 'reconnect after 700 ms');
  clock.advance(700);
  assert.equal(WebSocket.sockets.length, 2);
  WebSocket.latest().drop(1006);  // the replacement is not listening yet
  assert.equal(disconnects(states).at(-1).fallback, undefined);
  assert.equal(disconnects(states).at(-1).delayMs, 250);
  assert.equal(EventSource.sources.length, 0);
  clock.advance(250);
  WebSocket.latest().accept();
  assert.equal(client.transport, 'websocket');
  client.close();
});
