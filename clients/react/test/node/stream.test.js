// useStream's bounded window, shared per topic, and useAggregate's topics.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LivecastProvider, defaultAggregateTopic, useAggregate } from '../../src/index.js';
import { FakeFrames, StreamView, TopicView, answerSubscribes, connectedClient, h, mount, publish } from './helpers.js';

async function provide(...children) {
  const connection = connectedClient();
  const frames = new FakeFrames();
  const tree = (...kids) => h(LivecastProvider, { client: connection.client, schedule: frames.schedule }, ...kids);
  const app = await mount(tree(...children));
  answerSubscribes(connection.socket);
  return { ...connection, frames, app, tree };
}

const offsets = (items) => items.map((item) => item.offset);

test('the window holds the last `max` publications, oldest first, as {data, offset}', async () => {
  const seen = [];
  const { socket, frames, app } = await provide(h(StreamView, { topic: 't', max: 3, seen }));
  for (let offset = 1; offset <= 5; offset += 1) publish(socket, 't', offset, { n: offset });
  frames.run();
  assert.deepEqual(seen.at(-1), [{ data: { n: 3 }, offset: 3 }, { data: { n: 4 }, offset: 4 }, { data: { n: 5 }, offset: 5 }]);
  assert.ok(Object.isFrozen(seen.at(-1)) && Object.isFrozen(seen.at(-1)[0]));
  publish(socket, 't', 6, { n: 6 });
  frames.run();
  assert.deepEqual(offsets(seen.at(-1)), [4, 5, 6]);
  await app.unmount();
});

test('the default max is 120', async () => {
  const seen = [];
  const { socket, frames, app } = await provide(h(StreamView, { topic: 't', seen }));
  for (let offset = 1; offset <= 130; offset += 1) publish(socket, 't', offset, offset);
  frames.run();
  assert.equal(seen.at(-1).length, 120);
  assert.deepEqual([seen.at(-1)[0].offset, seen.at(-1).at(-1).offset], [11, 130]);
  await app.unmount();
});

test('one window per topic, as long as the largest max mounted; each component gets its own length', async () => {
  const short = [];
  const long = [];
  const { socket, frames, app, tree } = await provide(
    h(StreamView, { key: 's', topic: 't', max: 2, seen: short }), h(StreamView, { key: 'l', topic: 't', max: 4, seen: long }));
  for (let offset = 1; offset <= 6; offset += 1) publish(socket, 't', offset, offset);
  frames.run();
  assert.deepEqual(offsets(short.at(-1)), [5, 6]);
  assert.deepEqual(offsets(long.at(-1)), [3, 4, 5, 6]);
  assert.equal(socket.requests('subscribe').length, 1);

  // The long one gone, the window shrinks to the short one's length.
  await app.render(tree(h(StreamView, { key: 's', topic: 't', max: 2, seen: short })));
  publish(socket, 't', 7, 7);
  frames.run();
  assert.deepEqual(offsets(short.at(-1)), [6, 7]);
  // A longer one mounted later sees what is kept, and grows from there.
  const later = [];
  await app.render(tree(h(StreamView, { key: 's', topic: 't', max: 2, seen: short }),
    h(StreamView, { key: 'x', topic: 't', max: 5, seen: later })));
  assert.deepEqual(offsets(later.at(-1)), [6, 7]);
  publish(socket, 't', 8, 8);
  frames.run();
  assert.deepEqual(offsets(later.at(-1)), [6, 7, 8]);
  await app.unmount();
});

test('a window opened on a topic already shown starts with its latest value', async () => {
  const { socket, frames, app, tree } = await provide(h(TopicView, { key: 'v', topic: 't' }));
  publish(socket, 't', 1, 'one');
  publish(socket, 't', 2, 'two');
  frames.run();
  const seen = [];
  await app.render(tree(h(TopicView, { key: 'v', topic: 't' }), h(StreamView, { key: 's', topic: 't', max: 10, seen })));
  assert.deepEqual(seen.at(-1), [{ data: 'two', offset: 2 }]);
  publish(socket, 't', 3, 'three');
  frames.run();
  assert.deepEqual(offsets(seen.at(-1)), [2, 3]);
  await app.unmount();
});

test('a window is the same array between frames while its topic is quiet', async () => {
  const seen = [];
  const { socket, frames, app } = await provide(h(StreamView, { topic: 't', max: 3, seen }), h(TopicView, { topic: 'other' }));
  publish(socket, 't', 1, 1);
  frames.run();
  const shown = seen.at(-1);
  publish(socket, 'other', 1, 'x');
  frames.run();
  assert.equal(seen.at(-1), shown);
  await app.unmount();
});

function AggregateView({ metric, window, seen }) {
  const snapshot = useAggregate(metric, window);
  seen.push(snapshot);
  return h('p', null, snapshot.state);
}

const summary = {
  metric: 'latency_ms', window: '5s', start: 1_700_000_000_000, count: 3, sum: 60, min: 10, max: 30,
  mean: 20, rate: 0.6, p50: 20, p90: 30, p95: 30, p99: 30,
};

test('useAggregate subscribes agg.<metric>.<window> and gives the summary as published', async () => {
  const seen = [];
  const { socket, frames, app } = await provide(h(AggregateView, { metric: 'latency_ms', window: '5s', seen }));
  assert.equal(defaultAggregateTopic('latency_ms', '5s'), 'agg.latency_ms.5s');
  assert.deepEqual(socket.requests('subscribe').map((r) => r.topic), ['agg.latency_ms.5s']);
  publish(socket, 'agg.latency_ms.5s', 1, summary);
  frames.run();
  assert.deepEqual(seen.at(-1).value, summary);
  assert.equal(seen.at(-1).offset, 1);
  await app.unmount();
});

test('the provider\'s aggregateTopic names the topic (the dashboard\'s per-organisation topics)', async () => {
  const { client, socket } = connectedClient();
  const frames = new FakeFrames();
  const seen = [];
  const aggregateTopic = (metric, window) => `org:acme:agg.${metric}.${window}`;
  const app = await mount(h(LivecastProvider, { client, schedule: frames.schedule, aggregateTopic },
    h(AggregateView, { metric: 'latency_ms', window: '1m', seen }), h(AggregateView, { metric: 'latency_ms', window: '1m', seen })));
  assert.deepEqual(socket.requests('subscribe').map((r) => r.topic), ['org:acme:agg.latency_ms.1m']);
  answerSubscribes(socket);
  publish(socket, 'org:acme:agg.latency_ms.1m', 4, { ...summary, window: '1m' });
  frames.run();
  assert.equal(seen.at(-1).value.window, '1m');
  await app.unmount();
  assert.deepEqual(socket.requests('unsubscribe').map((r) => r.topic), ['org:acme:agg.latency_ms.1m']);
});

test('recent: the subscribing useStream asks the server for its window, which arrives filled; re-renders do not resubscribe', async () => {
  const seen = [];
  const connection = connectedClient();
  const frames = new FakeFrames();
  const tree = (...kids) => h(LivecastProvider, { client: connection.client, schedule: frames.schedule }, ...kids);
  const app = await mount(tree(h(StreamView, { topic: 'chart', max: 4, recent: { seconds: 120 }, seen })));
  const [request] = connection.socket.requests('subscribe');
  assert.deepEqual(request.recent, { count: 4, seconds: 120 });
  // The server answers as docs/protocol.md says: the reply just before the recent ones.
  connection.socket.deliver({ id: request.id, ok: { topic: 'chart', epoch: 'e1', offset: 10, recovered: false } });
  for (let offset = 11; offset <= 14; offset += 1) publish(connection.socket, 'chart', offset, offset);
  frames.run();
  assert.deepEqual(offsets(seen.at(-1)), [11, 12, 13, 14]);
  // An inline options object on every render is compared by value.
  await app.render(tree(h(StreamView, { topic: 'chart', max: 4, recent: { seconds: 120 }, seen })));
  assert.equal(connection.socket.requests('subscribe').length, 1);
  assert.equal(connection.socket.requests('unsubscribe').length, 0);
  await app.unmount();
});

test('recent: true asks for the last `max`; without it nothing is asked', async () => {
  const { socket, app } = await provide(
    h(StreamView, { key: 'a', topic: 'a', max: 30, recent: true }), h(StreamView, { key: 'b', topic: 'b', max: 30 }));
  const requests = socket.requests('subscribe');
  assert.deepEqual(requests.find((r) => r.topic === 'a').recent, { count: 30 });
  assert.equal(requests.find((r) => r.topic === 'b').recent, undefined);
  await app.unmount();
});
