import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, reconnectAfterDelay, RECONNECT_AFTER_CLOSE_CODE } from '../src/livecast.js';
import { harness, recorder, fakeEventSourceClass, fakeFetch } from './fakes.js';

// A draining server (docs/operations.md) closes with 4012 "reconnect after <N> ms".

test('reconnectAfterDelay reads N from "reconnect after <N> ms" and nothing else', () => {
  assert.equal(RECONNECT_AFTER_CLOSE_CODE, 4012);
  assert.equal(reconnectAfterDelay('reconnect after 0 ms'), 0);
  assert.equal(reconnectAfterDelay('reconnect after 2500 ms'), 2500);
  assert.equal(reconnectAfterDelay('reconnect after 3600000 ms'), 3600000);
  for (const malformed of ['', 'reconnect after ms', 'reconnect after -5 ms', 'reconnect after 5ms',
    'reconnect after 5 s', ' reconnect after 5 ms', 'reconnect after 5 ms ', 'reconnect after 1.5 ms',
    'reconnect after 3600001 ms', 'reconnect after 99999999999 ms', undefined, null, 42]) {
    assert.equal(reconnectAfterDelay(malformed), null, `${JSON.stringify(malformed)} is not a delay`);
  }
});

test('4012 reconnects after the delay the server named, not the back-off, and starts the attempts afresh', () => {
  const { clock, WebSocket, options } = harness({ random: () => 1, minDelayMs: 100, maxDelayMs: 10000 });
  const client = connect('ws://x/ws', options);
  const states = recorder(client, 'state');
  // Two failed attempts: the back-off has grown to 400.
  WebSocket.latest().drop(1006);
  clock.advance(100);
  WebSocket.latest().drop(1006);
  clock.advance(200);
  assert.equal(client.attempt, 2);
  WebSocket.latest().accept();
  WebSocket.latest().drop(4012, 'reconnect after 1234 ms');
  const lost = states[states.length - 1];
  assert.equal(lost.state, 'disconnected');
  assert.equal(lost.code, 4012);
  assert.equal(lost.reason, 'reconnect after 1234 ms');
  assert.equal(lost.willReconnect, true);
  assert.equal(lost.delayMs, 1234);
  assert.equal(lost.attempt, 0);
  const sockets = WebSocket.sockets.length;
  clock.advance(1233);
  assert.equal(WebSocket.sockets.length, sockets, 'not before the named delay');
  clock.advance(1);
  assert.equal(WebSocket.sockets.length, sockets + 1, 'at the named delay');
  // The next failure backs off from the first step again.
  WebSocket.latest().drop(1006);
  assert.equal(states[states.length - 1].delayMs, 100);
  client.close();
});

test('4012 with a malformed reason gets the usual back-off', () => {
  const { clock, WebSocket, options } = harness({ random: () => 0.5, minDelayMs: 100, maxDelayMs: 10000 });
  const client = connect('ws://x/ws', options);
  const states = recorder(client, 'state');
  WebSocket.latest().drop(1006);
  clock.advance(50);
  WebSocket.latest().accept();
  WebSocket.latest().drop(4012, 'reconnect later');
  const lost = states[states.length - 1];
  assert.equal(lost.code, 4012);
  assert.equal(lost.willReconnect, true);
  assert.equal(lost.delayMs, 100, 'back-off of attempt 1: 0.5 * 200');
  assert.equal(lost.attempt, 2);
  client.close();
});

test('an SSE stream ending with event: close 4012 reconnects after the named delay, on SSE', () => {
  const EventSource = fakeEventSourceClass();
  const { clock, WebSocket, options } = harness({
    transports: ['websocket', 'sse'], EventSource, fetch: fakeFetch(), random: () => 1, minDelayMs: 100,
  });
  const client = connect('ws://x/ws', options);
  client.subscribe('a');
  WebSocket.latest().drop(1006);  // never opened: SSE at once
  const es = EventSource.latest();
  es.accept();
  es.deliver({ id: 1, ok: { topic: 'a', epoch: 'e1', offset: 2, recovered: false } });
  const states = recorder(client, 'state');
  es.event('close', { code: 4012, reason: 'reconnect after 700 ms' });
  assert.ok(es.closed);
  const lost = states[states.length - 1];
  assert.equal(lost.code, 4012);
  assert.equal(lost.delayMs, 700);
  clock.advance(699);
  assert.equal(EventSource.sources.length, 1);
  clock.advance(1);
  assert.equal(EventSource.sources.length, 2, 'the transport that worked, after the named delay');
  assert.equal(WebSocket.sockets.length, 1);
  assert.equal(EventSource.latest().query.get('cursor'), 'a:e1:2');
  client.close();
});
