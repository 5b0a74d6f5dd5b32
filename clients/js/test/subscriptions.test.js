import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from '../src/livecast.js';
import { harness, recorder } from './fakes.js';

// Connects, opens the socket, and answers the subscribe for `topic` as the server would.
function subscribed(topic, reply, extra) {
  const h = harness(extra);
  const client = connect('ws://x/ws', h.options);
  const received = [];
  const subscription = client.subscribe(topic, (data, meta) => received.push({ data, ...meta }));
  const events = recorder(subscription, 'state');
  const socket = h.WebSocket.latest();
  socket.accept();
  const request = socket.lastRequest('subscribe');
  socket.deliver({ id: request.id, ok: { topic, recovered: false, ...reply } });
  return { ...h, client, subscription, received, events, socket, request };
}

const offsets = (received) => received.map((p) => p.offset);

test('subscribe: subscribing, then subscribed, then the snapshot and live publications in order', () => {
  const { subscription, received, events, socket, request } = subscribed('kpi', { epoch: 'e1', offset: 7 });
  assert.deepEqual(request, { op: 'subscribe', id: request.id, topic: 'kpi' });
  assert.deepEqual(events.map((e) => e.state), ['subscribed']);
  assert.deepEqual(events[0], { state: 'subscribed', topic: 'kpi', epoch: 'e1', offset: 7, recovered: false, reset: false });
  socket.deliver({ topic: 'kpi', offset: 7, data: { v: 7 } });  // the snapshot
  socket.deliver({ topic: 'kpi', offset: 8, data: { v: 8 } });
  assert.deepEqual(received, [
    { data: { v: 7 }, topic: 'kpi', offset: 7, epoch: 'e1' },
    { data: { v: 8 }, topic: 'kpi', offset: 8, epoch: 'e1' },
  ]);
  assert.deepEqual(subscription.position, { epoch: 'e1', offset: 8 });
});

test('a subscribe made while connecting is sent once the socket opens, with a subscribing event', () => {
  const { WebSocket, options } = harness();
  const client = connect('ws://x/ws', options);
  const subscription = client.subscribe('a');
  assert.equal(subscription.state, 'subscribing');
  assert.equal(WebSocket.latest().sent.length, 0);
  WebSocket.latest().accept();
  assert.equal(WebSocket.latest().requests('subscribe').length, 1);
  assert.throws(() => client.subscribe('a'), /already subscribed/);
});

test('after a reconnect every topic is resubscribed with recover from the last publication seen', () => {
  const { clock, WebSocket, client, socket, received } = subscribed('kpi', { epoch: 'e1', offset: 3 });
  const other = client.subscribe('other');
  socket.deliver({ id: socket.lastRequest('subscribe').id, ok: { topic: 'other', epoch: 'e9', offset: 0, recovered: false } });
  socket.deliver({ topic: 'kpi', offset: 3, data: 3 });
  socket.deliver({ topic: 'kpi', offset: 4, data: 4 });
  const otherStates = recorder(other, 'state');
  socket.drop(1001);
  assert.equal(other.state, 'subscribing');
  clock.advance(1000);
  const next = WebSocket.latest();
  assert.notEqual(next, socket);
  next.accept();
  const requests = next.requests('subscribe');
  assert.deepEqual(requests.map((r) => [r.topic, r.recover]), [
    ['kpi', { epoch: 'e1', offset: 4 }],
    ['other', { epoch: 'e9', offset: 0 }],
  ]);

  // recovered: the replay continues after offset 4; the flag reaches the event.
  const kpiEvents = recorder(client.getSubscription('kpi'), 'subscribed');
  next.deliver({ id: requests[0].id, ok: { topic: 'kpi', epoch: 'e1', offset: 6, recovered: true } });
  assert.equal(kpiEvents.length, 1);
  assert.equal(kpiEvents[0].recovered, true);
  assert.equal(kpiEvents[0].reset, false);
  next.deliver({ topic: 'kpi', offset: 5, data: 5 });
  next.deliver({ topic: 'kpi', offset: 6, data: 6 });
  assert.deepEqual(offsets(received), [3, 4, 5, 6]);

  next.deliver({ id: requests[1].id, ok: { topic: 'other', epoch: 'e9', offset: 0, recovered: true } });
  assert.deepEqual(otherStates.map((e) => [e.state, e.recovered]), [['subscribing', undefined], ['subscribed', true]]);
});

test('replayed offsets are delivered once: duplicates and stale offsets are dropped', () => {
  const { clock, WebSocket, socket, received } = subscribed('t', { epoch: 'e', offset: 0 });
  for (const offset of [1, 2, 3]) socket.deliver({ topic: 't', offset, data: offset });
  socket.deliver({ topic: 't', offset: 3, data: 'again' });
  socket.deliver({ topic: 't', offset: 2, data: 'stale' });
  socket.drop(1006);
  clock.advance(1000);
  const next = WebSocket.latest();
  next.accept();
  const request = next.lastRequest('subscribe');
  assert.deepEqual(request.recover, { epoch: 'e', offset: 3 });
  next.deliver({ id: request.id, ok: { topic: 't', epoch: 'e', offset: 5, recovered: true } });
  // A server (or a second backend) that overlaps its replay with what we hold.
  for (const offset of [2, 3, 4, 4, 5, 5, 3]) next.deliver({ topic: 't', offset, data: offset });
  assert.deepEqual(offsets(received), [1, 2, 3, 4, 5]);
  assert.deepEqual(received.map((p) => p.data), [1, 2, 3, 4, 5]);
});

test('a new epoch resets the position: the snapshot is delivered and reset is flagged', () => {
  const { clock, WebSocket, socket, received, subscription } = subscribed('t', { epoch: 'old', offset: 40 });
  socket.deliver({ topic: 't', offset: 40, data: 'a' });
  socket.drop(1001);
  clock.advance(1000);
  const next = WebSocket.latest();
  next.accept();
  const request = next.lastRequest('subscribe');
  assert.deepEqual(request.recover, { epoch: 'old', offset: 40 });
  const events = recorder(subscription, 'subscribed');
  next.deliver({ id: request.id, ok: { topic: 't', epoch: 'new', offset: 2, recovered: false } });
  assert.deepEqual(events[0], { topic: 't', epoch: 'new', offset: 2, recovered: false, reset: true });
  next.deliver({ topic: 't', offset: 2, data: 'snapshot' });
  next.deliver({ topic: 't', offset: 3, data: 'live' });
  assert.deepEqual(received.map((p) => [p.epoch, p.offset, p.data]), [['old', 40, 'a'], ['new', 2, 'snapshot'], ['new', 3, 'live']]);
});

test('same epoch but history lost (recovered false): the jump to the snapshot is not a gap', () => {
  const { clock, WebSocket, socket, received, subscription } = subscribed('t', { epoch: 'e', offset: 1 });
  socket.deliver({ topic: 't', offset: 1, data: 1 });
  socket.drop(1006);
  clock.advance(1000);
  const next = WebSocket.latest();
  next.accept();
  const gaps = recorder(subscription, 'gap');
  next.deliver({ id: next.lastRequest('subscribe').id, ok: { topic: 't', epoch: 'e', offset: 500, recovered: false } });
  next.deliver({ topic: 't', offset: 500, data: 500 });
  assert.deepEqual(gaps, []);
  assert.deepEqual(offsets(received), [1, 500]);
});

test('a gap emits "gap", is not delivered, and a resubscribe with recover fetches the missing ones', () => {
  const { socket, received, subscription } = subscribed('t', { epoch: 'e', offset: 0 });
  const gaps = recorder(subscription, 'gap');
  const states = recorder(subscription, 'state');
  socket.deliver({ topic: 't', offset: 1, data: 1 });
  socket.deliver({ topic: 't', offset: 2, data: 2 });
  socket.sent.length = 0;
  socket.deliver({ topic: 't', offset: 5, data: 5 });
  assert.deepEqual(gaps, [{ topic: 't', expected: 3, received: 5, missing: 2 }]);
  assert.deepEqual(socket.sent.map((r) => [r.op, r.topic, r.recover]), [
    ['unsubscribe', 't', undefined],
    ['subscribe', 't', { epoch: 'e', offset: 2 }],
  ]);
  assert.deepEqual(states.map((e) => [e.state, e.reason]), [['subscribing', 'gap']]);
  // Publications already queued before the server saw the unsubscribe are dropped...
  socket.deliver({ topic: 't', offset: 6, data: 6 });
  socket.deliver({ id: socket.sent[0].id, ok: { topic: 't' } });
  socket.deliver({ id: socket.sent[1].id, ok: { topic: 't', epoch: 'e', offset: 6, recovered: true } });
  // ...because the replay brings them back in order.
  for (const offset of [3, 4, 5, 6, 7]) socket.deliver({ topic: 't', offset, data: offset });
  assert.deepEqual(offsets(received), [1, 2, 3, 4, 5, 6, 7]);
  assert.equal(states[states.length - 1].state, 'subscribed');
  assert.equal(states[states.length - 1].recovered, true);
});

test('with resubscribeOnGap false a gap is reported and the publication delivered', () => {
  const { socket, received, subscription } = subscribed('t', { epoch: 'e', offset: 0 }, { resubscribeOnGap: false });
  const gaps = recorder(subscription, 'gap');
  socket.deliver({ topic: 't', offset: 1, data: 1 });
  socket.deliver({ topic: 't', offset: 4, data: 4 });
  assert.equal(gaps.length, 1);
  assert.deepEqual(offsets(received), [1, 4]);
  assert.equal(socket.requests('subscribe').length, 1);
});

test('unsubscribe sends the op, emits unsubscribed and stops delivery; no resubscribe after reconnect', () => {
  const { clock, WebSocket, client, socket, received, subscription, events } = subscribed('t', { epoch: 'e', offset: 0 });
  subscription.unsubscribe();
  assert.equal(socket.lastRequest('unsubscribe').topic, 't');
  assert.equal(events[events.length - 1].state, 'unsubscribed');
  socket.deliver({ topic: 't', offset: 1, data: 1 });
  assert.deepEqual(received, []);
  assert.equal(client.getSubscription('t'), undefined);
  socket.drop(1006);
  clock.advance(1000);
  WebSocket.latest().accept();
  assert.equal(WebSocket.latest().requests('subscribe').length, 0);
  client.subscribe('t');  // the topic can be taken again
});

test('a refused subscribe emits error and is not retried; backend_unavailable is retried', () => {
  const { clock, WebSocket, options } = harness({ random: () => 1, minDelayMs: 100 });
  const client = connect('ws://x/ws', options);
  const socket = WebSocket.latest();
  socket.accept();
  const secret = client.subscribe('secret');
  const errors = recorder(secret, 'error');
  socket.deliver({ id: socket.lastRequest('subscribe').id, error: { code: 'forbidden', message: 'no' } });
  assert.equal(secret.state, 'error');
  assert.equal(errors[0].error.code, 'forbidden');
  assert.equal(errors[0].willRetry, false);
  assert.equal(client.getSubscription('secret'), undefined);

  const flaky = client.subscribe('flaky');
  socket.deliver({ id: socket.lastRequest('subscribe').id, error: { code: 'backend_unavailable', message: 'redis down' } });
  assert.equal(flaky.state, 'error');
  assert.equal(socket.requests('subscribe').length, 2);
  clock.advance(100);
  assert.equal(socket.requests('subscribe').length, 3);
  assert.equal(socket.lastRequest('subscribe').topic, 'flaky');
  assert.equal(flaky.state, 'subscribing');
  socket.deliver({ id: socket.lastRequest('subscribe').id, ok: { topic: 'flaky', epoch: 'e', offset: 0, recovered: false } });
  assert.equal(flaky.state, 'subscribed');
  client.close();
});

test('a server-side join notice creates a subscription that receives publications', () => {
  const { WebSocket, options } = harness();
  const client = connect('ws://x/ws', options);
  const joins = recorder(client, 'join');
  const socket = WebSocket.latest();
  socket.accept();
  socket.deliver({ ok: { topic: 'org:acme', epoch: 'e', offset: 57, recovered: false } });
  assert.equal(joins.length, 1);
  const subscription = joins[0];
  assert.equal(subscription.topic, 'org:acme');
  assert.equal(subscription.state, 'subscribed');
  const received = recorder(subscription, 'publication');
  socket.deliver({ topic: 'org:acme', offset: 57, data: 'snap' });
  socket.deliver({ topic: 'org:acme', offset: 58, data: 'live' });
  assert.deepEqual(received.map((args) => args[0]), ['snap', 'live']);
});

test('malformed server messages and publications for unknown topics are ignored', () => {
  const { socket, received } = subscribed('t', { epoch: 'e', offset: 0 });
  socket.deliver('not json');
  socket.deliver('null');
  socket.deliver('[1,2]');
  socket.deliver({ topic: 'elsewhere', offset: 1, data: 1 });
  socket.deliver({ topic: 't', offset: 1, data: 1 });
  assert.deepEqual(offsets(received), [1]);
});

test('subscribe with recent: the first request asks for it, the recent ones arrive in order, a reconnect recovers instead', () => {
  const h = harness();
  const client = connect('ws://x/ws', h.options);
  const received = [];
  const subscription = client.subscribe('agg', (data, meta) => received.push(meta.offset), { recent: { seconds: 120 } });
  assert.deepEqual(subscription.recent, { seconds: 120 });
  const socket = h.WebSocket.latest();
  socket.accept();
  const request = socket.lastRequest('subscribe');
  assert.deepEqual(request, { op: 'subscribe', id: request.id, topic: 'agg', recent: { seconds: 120 } });
  // The server places the reply just before the first recent publication.
  socket.deliver({ id: request.id, ok: { topic: 'agg', epoch: 'e1', offset: 40, recovered: false } });
  for (let offset = 41; offset <= 45; offset++) socket.deliver({ topic: 'agg', offset, data: offset });
  assert.deepEqual(received, [41, 42, 43, 44, 45]);

  socket.drop(1001);
  h.clock.advance(1000);
  const next = h.WebSocket.latest();
  next.accept();
  const again = next.lastRequest('subscribe');
  assert.deepEqual(again.recover, { epoch: 'e1', offset: 45 });
  assert.equal(again.recent, undefined, 'the position says where to continue');
});

test('subscribe refuses a malformed recent option and sends nothing for an empty one', () => {
  const h = harness();
  const client = connect('ws://x/ws', h.options);
  assert.throws(() => client.subscribe('a', null, { recent: { count: -1 } }), TypeError);
  assert.throws(() => client.subscribe('a', null, { recent: { seconds: 1.5 } }), TypeError);
  assert.throws(() => client.subscribe('a', null, { recent: 5 }), TypeError);
  const s = client.subscribe('a', null, { recent: {} });
  assert.equal(s.recent, null);
  h.WebSocket.latest().accept();
  assert.equal(h.WebSocket.latest().lastRequest('subscribe').recent, undefined);
});
