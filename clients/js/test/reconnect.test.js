import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, backoffDelay, shouldReconnect, PROTOCOL } from '../src/livecast.js';
import { harness, recorder } from './fakes.js';

test('backoffDelay: full jitter below a ceiling that doubles from minDelay up to maxDelay', () => {
  const bounds = { minDelayMs: 250, maxDelayMs: 15000 };
  const ceilings = [250, 500, 1000, 2000, 4000, 8000, 15000, 15000, 15000];
  ceilings.forEach((ceiling, attempt) => {
    assert.equal(backoffDelay(attempt, { ...bounds, random: () => 0 }), 0);
    assert.equal(backoffDelay(attempt, { ...bounds, random: () => 1 }), ceiling);
    assert.equal(backoffDelay(attempt, { ...bounds, random: () => 0.25 }), ceiling * 0.25);
  });
  // A huge attempt count stays capped and finite.
  assert.equal(backoffDelay(5000, { ...bounds, random: () => 1 }), 15000);
});

test('the livecast.v1 subprotocol is offered, and a token that cannot be a subprotocol name goes in the URL', () => {
  const { WebSocket, options } = harness();
  connect('ws://example.test/ws', { ...options, token: 'a b&c' });
  assert.equal(WebSocket.latest().url, 'ws://example.test/ws?token=a%20b%26c');
  assert.equal(WebSocket.latest().protocols, PROTOCOL);
  connect('ws://example.test/ws?x=1', { ...options, token: 't', tokenInQuery: true });
  assert.equal(WebSocket.latest().url, 'ws://example.test/ws?x=1&token=t');
  assert.equal(WebSocket.latest().protocols, PROTOCOL);
  connect('ws://example.test/ws?x=1', options);
  assert.equal(WebSocket.latest().url, 'ws://example.test/ws?x=1', 'no token, nothing added');
  assert.equal(WebSocket.latest().protocols, PROTOCOL);
});

test('reconnect delays follow the injected random within the doubling, capped bounds', () => {
  const randoms = [0.9, 0.1, 1, 0.5, 1, 1, 1, 0.999, 0];
  let next = 0;
  const { clock, WebSocket, options } = harness({ random: () => randoms[next++], minDelayMs: 100, maxDelayMs: 1000 });
  const client = connect('ws://x/ws', options);
  const states = recorder(client, 'state');
  const expected = [90, 20, 400, 400, 1000, 1000, 1000, 999, 0];
  for (const delay of expected) {
    WebSocket.latest().drop(1006);
    const event = states[states.length - 1];
    assert.equal(event.state, 'disconnected');
    assert.equal(event.willReconnect, true);
    assert.equal(event.code, 1006);
    assert.ok(Math.abs(event.delayMs - delay) < 1e-9, `delay ${event.delayMs} != ${delay}`);
    assert.ok(event.delayMs >= 0 && event.delayMs <= 1000);
    const sockets = WebSocket.sockets.length;
    if (delay > 0) {
      clock.advance(delay - 0.5);
      assert.equal(WebSocket.sockets.length, sockets, 'reconnected before the delay');
    }
    clock.advance(0.5);
    assert.equal(WebSocket.sockets.length, sockets + 1, 'no reconnect after the delay');
    assert.equal(states[states.length - 1].state, 'connecting');
  }
  client.close();
});

test('the back-off starts afresh once the server has answered', () => {
  const { clock, WebSocket, options } = harness({ random: () => 1, minDelayMs: 100, maxDelayMs: 10000 });
  const client = connect('ws://x/ws', options);
  const states = recorder(client, 'state');
  WebSocket.latest().drop();
  clock.advance(100);
  WebSocket.latest().drop();
  assert.equal(states[states.length - 1].delayMs, 200);
  clock.advance(200);
  WebSocket.latest().accept();
  WebSocket.latest().deliver({ id: 999, ok: {} });
  WebSocket.latest().drop(1001, 'restarting');
  assert.equal(states[states.length - 1].delayMs, 100);
  assert.equal(states[states.length - 1].reason, 'restarting');
  client.close();
});

for (const code of [4001, 4003, 1003, 1009]) {
  test(`no reconnect after close code ${code}`, () => {
    assert.equal(shouldReconnect(code), false);
    const { clock, WebSocket, options } = harness();
    const client = connect('ws://x/ws', options);
    const states = recorder(client, 'state');
    WebSocket.latest().accept();
    WebSocket.latest().drop(code, '');
    assert.deepEqual(states.map((s) => s.state), ['connected', 'disconnected']);
    assert.equal(states[1].willReconnect, false);
    assert.equal(states[1].code, code);
    assert.equal(clock.pendingCount, 0);
    clock.advance(60000);
    assert.equal(WebSocket.sockets.length, 1);
    assert.equal(client.state, 'disconnected');
  });
}

test('codes that allow reconnecting do reconnect', () => {
  for (const code of [1000, 1001, 1006, 1011, 4008, 4009, 4029]) assert.equal(shouldReconnect(code), true);
});

test('close() stops reconnecting, closes the socket and ends subscriptions', () => {
  const { clock, WebSocket, options } = harness();
  const client = connect('ws://x/ws', options);
  const subscription = client.subscribe('t');
  const subStates = recorder(subscription, 'state');
  WebSocket.latest().drop(1006);
  assert.equal(clock.pendingCount, 1);
  client.close();
  assert.equal(clock.pendingCount, 0);
  clock.advance(60000);
  assert.equal(WebSocket.sockets.length, 1);
  assert.equal(subscription.state, 'unsubscribed');
  assert.equal(subStates[subStates.length - 1].state, 'unsubscribed');

  const second = connect('ws://x/ws', options);
  const socket = WebSocket.latest();
  socket.accept();
  const states = recorder(second, 'state');
  second.close();
  assert.deepEqual(socket.closedWith, { code: 1000, reason: 'client closed' });
  assert.deepEqual(states, [{ state: 'disconnected', code: 1000, reason: 'client closed', willReconnect: false }]);
  socket.drop(1000);  // the late close event changes nothing
  clock.advance(60000);
  assert.equal(WebSocket.sockets.length, 2);
  assert.throws(() => second.subscribe('u'), /closed/);
});

test('a throwing WebSocket constructor counts as a failed attempt', () => {
  const { clock, options } = harness();
  let calls = 0;
  function Failing() {
    calls++;
    throw new Error('blocked');
  }
  const client = connect('ws://x/ws', { ...options, WebSocket: Failing });
  assert.equal(client.state, 'disconnected');
  clock.advance(1000);
  assert.ok(calls >= 2);
  client.close();
});

test('offline: no reconnect attempts until the online event, which reconnects at once', () => {
  let online = true;
  const eventTarget = new EventTarget();
  const { clock, WebSocket, options } = harness({ eventTarget, isOnline: () => online });
  const client = connect('ws://x/ws', options);
  const states = recorder(client, 'state');
  WebSocket.latest().accept();
  online = false;
  WebSocket.latest().drop(1006);
  assert.equal(states[states.length - 1].offline, true);
  assert.equal(clock.pendingCount, 0);
  clock.advance(60000);
  assert.equal(WebSocket.sockets.length, 1);
  online = true;
  eventTarget.dispatchEvent(new Event('online'));
  assert.equal(WebSocket.sockets.length, 2);

  // While waiting out a back-off, 'online' cuts the wait short.
  WebSocket.latest().drop(1006);
  assert.equal(clock.pendingCount, 1);
  eventTarget.dispatchEvent(new Event('online'));
  assert.equal(WebSocket.sockets.length, 3);
  assert.equal(clock.pendingCount, 1);  // only the connect deadline of the new socket

  // A back-off that ends while offline waits for the network.
  WebSocket.latest().drop(1006);
  online = false;
  clock.advance(60000);
  assert.equal(WebSocket.sockets.length, 3);
  online = true;
  eventTarget.dispatchEvent(new Event('online'));
  assert.equal(WebSocket.sockets.length, 4);

  // After close(), 'online' does nothing.
  client.close();
  eventTarget.dispatchEvent(new Event('online'));
  assert.equal(WebSocket.sockets.length, 4);
});

test('online after a final close code does not reconnect', () => {
  const eventTarget = new EventTarget();
  const { WebSocket, options } = harness({ eventTarget });
  connect('ws://x/ws', options);
  WebSocket.latest().accept();
  WebSocket.latest().drop(4001);
  eventTarget.dispatchEvent(new Event('online'));
  assert.equal(WebSocket.sockets.length, 1);
});

test('without a WebSocket constructor connect() says how to pass one', () => {
  const saved = globalThis.WebSocket;
  try {
    delete globalThis.WebSocket;
    assert.throws(() => connect('ws://x/ws', { eventTarget: null }), /options\.WebSocket/);
  } finally {
    if (saved !== undefined) globalThis.WebSocket = saved;
  }
});

test('a token function is asked again on every reconnect', () => {
  let n = 0;
  const { clock, WebSocket, options } = harness({ token: () => `t${++n}` });
  const client = connect('ws://x/ws', options);
  WebSocket.latest().drop(1006);
  clock.advance(1000);
  assert.deepEqual(WebSocket.sockets.map((s) => s.protocols), [[PROTOCOL, 'livecast.bearer.t1'], [PROTOCOL, 'livecast.bearer.t2']]);
  client.close();
});
