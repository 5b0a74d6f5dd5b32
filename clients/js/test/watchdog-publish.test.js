import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, LivecastError, PING_TIMEOUT_CLOSE_CODE } from '../src/livecast.js';
import { harness, recorder } from './fakes.js';

test('watchdog: silence sends a ping op; a reply keeps the connection', () => {
  const { clock, WebSocket, options } = harness({ pingTimeoutMs: 25000, pingReplyTimeoutMs: 5000 });
  const client = connect('ws://x/ws', options);
  const socket = WebSocket.latest();
  socket.accept();
  clock.advance(24999);
  assert.equal(socket.requests('ping').length, 0);
  clock.advance(1);
  const ping = socket.lastRequest('ping');
  assert.ok(Number.isInteger(ping.id));
  socket.deliver({ id: ping.id, ok: {} });
  clock.advance(5000);
  assert.equal(socket.closedWith, null);
  assert.equal(client.state, 'connected');
  // Any message re-arms the watchdog.
  clock.advance(15000);
  socket.deliver({ topic: 'x', offset: 1, data: 1 });
  clock.advance(20000);
  assert.equal(socket.requests('ping').length, 1);
  client.close();
});

test('watchdog: no reply to the ping closes the socket and reconnects', () => {
  const { clock, WebSocket, options } = harness({ pingTimeoutMs: 1000, pingReplyTimeoutMs: 500, random: () => 0.5, minDelayMs: 200 });
  const client = connect('ws://x/ws', options);
  const states = recorder(client, 'state');
  const socket = WebSocket.latest();
  socket.accept();
  const subscription = client.subscribe('t');
  socket.deliver({ id: socket.lastRequest('subscribe').id, ok: { topic: 't', epoch: 'e', offset: 0, recovered: false } });
  socket.deliver({ topic: 't', offset: 1, data: 1 });
  clock.advance(1000);
  assert.equal(socket.requests('ping').length, 1);
  clock.advance(499);
  assert.equal(socket.closedWith, null);
  clock.advance(1);
  assert.deepEqual(socket.closedWith, { code: PING_TIMEOUT_CLOSE_CODE, reason: 'ping timeout' });
  const lost = states[states.length - 1];
  assert.equal(lost.state, 'disconnected');
  assert.equal(lost.willReconnect, true);
  assert.equal(lost.reason, 'ping timeout');
  assert.equal(subscription.state, 'subscribing');
  // The dead socket's late events are ignored.
  socket.deliver({ topic: 't', offset: 2, data: 2 });
  socket.drop(1006);
  clock.advance(100);  // 0.5 * 200
  assert.equal(WebSocket.sockets.length, 2);
  WebSocket.latest().accept();
  assert.deepEqual(WebSocket.latest().lastRequest('subscribe').recover, { epoch: 'e', offset: 1 });
  client.close();
});

test('a handshake that never completes is abandoned after pingTimeoutMs', () => {
  const { clock, WebSocket, options } = harness({ pingTimeoutMs: 3000 });
  const client = connect('ws://x/ws', options);
  clock.advance(3000);
  assert.equal(WebSocket.latest().closedWith.reason, 'connect timeout');
  // Under Node's `ws`, an abandoned socket's error must still have a listener.
  assert.equal(WebSocket.latest().errorUnheard, undefined);
  assert.equal(client.state, 'disconnected');
  clock.advance(1000);
  assert.equal(WebSocket.sockets.length, 2);
  client.close();
});

test('publish resolves with the reply', async () => {
  const { WebSocket, options } = harness();
  const client = connect('ws://x/ws', options);
  const socket = WebSocket.latest();
  socket.accept();
  const pending = client.publish('kpi', { total: 1250.5 });
  const request = socket.lastRequest('publish');
  assert.deepEqual(request, { op: 'publish', id: request.id, topic: 'kpi', data: { total: 1250.5 } });
  socket.deliver({ id: request.id, ok: { topic: 'kpi', offset: 122 } });
  assert.deepEqual(await pending, { topic: 'kpi', offset: 122 });
  client.close();
});

test('publish rejects on an error reply, when not connected, and when the connection drops', async () => {
  const { WebSocket, options } = harness();
  const client = connect('ws://x/ws', options);
  await assert.rejects(client.publish('kpi', 1), (error) => error instanceof LivecastError && error.code === 'not_connected');
  const socket = WebSocket.latest();
  socket.accept();
  const refused = client.publish('kpi', 1);
  socket.deliver({ id: socket.lastRequest('publish').id, error: { code: 'forbidden', message: 'not allowed' } });
  await assert.rejects(refused, (error) => error instanceof LivecastError && error.code === 'forbidden' && error.message === 'not allowed');
  const unanswered = client.publish('kpi', 2);
  socket.drop(1006);
  await assert.rejects(unanswered, (error) => error.code === 'disconnected');
  client.close();
});

test('close() rejects publishes still waiting for a reply', async () => {
  const { WebSocket, options } = harness();
  const client = connect('ws://x/ws', options);
  WebSocket.latest().accept();
  const pending = client.publish('kpi', 1);
  client.close();
  await assert.rejects(pending, (error) => error.code === 'closed');
});

test('errors without an id are reported on the client', () => {
  const { WebSocket, options } = harness();
  const client = connect('ws://x/ws', options);
  const errors = recorder(client, 'error');
  WebSocket.latest().accept();
  WebSocket.latest().deliver({ error: { code: 'rate_limited', message: 'slow down' } });
  assert.equal(errors.length, 1);
  assert.equal(errors[0].code, 'rate_limited');
  client.close();
});

test('a throwing listener does not break delivery to the others', () => {
  const listenerErrors = [];
  const { WebSocket, options } = harness({ onListenerError: (error) => listenerErrors.push(error.message) });
  const client = connect('ws://x/ws', options);
  const socket = WebSocket.latest();
  socket.accept();
  const subscription = client.subscribe('t');
  const seen = [];
  subscription.on('publication', () => { throw new Error('app bug'); });
  subscription.on('publication', (data) => seen.push(data));
  socket.deliver({ id: socket.lastRequest('subscribe').id, ok: { topic: 't', epoch: 'e', offset: 0, recovered: false } });
  socket.deliver({ topic: 't', offset: 1, data: 'one' });
  socket.deliver({ topic: 't', offset: 2, data: 'two' });
  assert.deepEqual(seen, ['one', 'two']);
  assert.deepEqual(listenerErrors, ['app bug', 'app bug']);
  client.close();
});
