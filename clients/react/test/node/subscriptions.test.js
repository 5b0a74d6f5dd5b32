// One subscription per topic whatever the number of components, and the last
// one to unmount unsubscribes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LivecastProvider, useAggregate } from '../../src/index.js';
import {
  FakeFrames, React, StreamView, StrictMode, TopicView, answerSubscribes, connectedClient, h, mount, publish, topicsOf,
} from './helpers.js';

test('the React version is the one this run is for', () => {
  assert.equal(React.version.split('.')[0], process.env.LIVECAST_REACT_MAJOR);
});

function AggregateView({ metric, window }) {
  const { value, state } = useAggregate(metric, window);
  return h('p', null, `${state} ${value ? `${value.metric}/${value.window} n=${value.count}` : '-'}`);
}

test('twenty components on one topic, with windows and an aggregate: one subscribe per topic', async () => {
  const { client, socket } = connectedClient();
  const frames = new FakeFrames();
  const views = Array.from({ length: 20 }, (_, i) => h(TopicView, { key: `t${i}`, topic: 'kpi' }));
  const streams = [3, 5, 5].map((max, i) => h(StreamView, { key: `s${i}`, topic: 'kpi', max }));
  const aggregates = [0, 1].map((i) => h(AggregateView, { key: `a${i}`, metric: 'latency', window: '1s' }));
  const app = await mount(h(LivecastProvider, { client, schedule: frames.schedule }, ...views, ...streams, ...aggregates));

  assert.deepEqual(topicsOf(socket.requests('subscribe')), ['kpi', 'agg.latency.1s']);
  assert.equal(client.subscriptions().length, 2);
  answerSubscribes(socket);
  publish(socket, 'kpi', 1, { v: 1 });
  publish(socket, 'agg.latency.1s', 1, { metric: 'latency', window: '1s', count: 7 });
  frames.run();
  const lines = [...app.container.querySelectorAll('p')].map((p) => p.textContent);
  assert.deepEqual(lines, [
    ...Array(20).fill('subscribed {"v":1} @e1:1'),
    ...Array(3).fill('1={"v":1}'),
    ...Array(2).fill('subscribed latency/1s n=7'),
  ]);
  assert.equal(socket.requests('subscribe').length, 2);
  await app.unmount();
});

test('unmounting some components keeps the subscription; the last one unsubscribes, once', async () => {
  const { client, socket } = connectedClient();
  const frames = new FakeFrames();
  const tree = (count) => h(LivecastProvider, { client, schedule: frames.schedule },
    ...Array.from({ length: count }, (_, i) => h(TopicView, { key: i, topic: 'kpi' })));
  const app = await mount(tree(4));
  answerSubscribes(socket);
  publish(socket, 'kpi', 1, 'one');

  await app.render(tree(1));
  assert.equal(socket.requests('unsubscribe').length, 0);
  assert.equal(client.getSubscription('kpi').state, 'subscribed');
  frames.run();
  assert.equal(app.text(), 'subscribed "one" @e1:1');

  await app.render(tree(0));
  assert.deepEqual(topicsOf(socket.requests('unsubscribe')), ['kpi']);
  assert.equal(client.getSubscription('kpi'), undefined);
  // Publications still in flight after the unsubscribe reach nobody.
  publish(socket, 'kpi', 2, 'late');
  assert.equal(frames.pending.length, 0);

  // Mounted again: a new subscription, from the server's snapshot.
  await app.render(tree(2));
  assert.deepEqual(topicsOf(socket.requests('subscribe')), ['kpi', 'kpi']);
  await app.unmount();
  assert.equal(socket.requests('unsubscribe').length, 2);
});

test('a component whose topic changes moves its subscription', async () => {
  const { client, socket } = connectedClient();
  const frames = new FakeFrames();
  const tree = (topic) => h(LivecastProvider, { client, schedule: frames.schedule }, h(TopicView, { topic }));
  const app = await mount(tree('a'));
  answerSubscribes(socket);
  await app.render(tree('b'));
  assert.deepEqual(topicsOf(socket.requests('subscribe')), ['a', 'b']);
  assert.deepEqual(topicsOf(socket.requests('unsubscribe')), ['a']);
  assert.deepEqual(client.subscriptions().map((s) => s.topic), ['b']);
  await app.unmount();
});

test('a component replacing another on the same topic in one commit takes the subscription over', async () => {
  const { client, socket } = connectedClient();
  const frames = new FakeFrames();
  function Page({ name }) {
    return h('section', null, h('h1', null, name), h(TopicView, { topic: 'kpi' }));
  }
  // Different keys: React unmounts one page and mounts the other in the same commit.
  const tree = (name) => h(LivecastProvider, { client, schedule: frames.schedule }, h(Page, { key: name, name }));
  const app = await mount(tree('overview'));
  answerSubscribes(socket);
  publish(socket, 'kpi', 9, 'nine');
  frames.run();
  await app.render(tree('details'));
  assert.equal(app.text(), 'detailssubscribed "nine" @e1:9');
  assert.equal(socket.requests('subscribe').length, 1);
  assert.equal(socket.requests('unsubscribe').length, 0);
  await app.unmount();
  assert.equal(socket.requests('unsubscribe').length, 1);
});

test('StrictMode\'s replayed effects send one subscribe and no unsubscribe', async () => {
  const { client, socket } = connectedClient();
  const frames = new FakeFrames();
  const app = await mount(h(StrictMode, null,
    h(LivecastProvider, { client, schedule: frames.schedule }, h(TopicView, { topic: 'kpi' }), h(StreamView, { topic: 'kpi' }))));
  assert.equal(socket.requests('subscribe').length, 1);
  assert.equal(socket.requests('unsubscribe').length, 0);
  answerSubscribes(socket);
  publish(socket, 'kpi', 1, 1);
  frames.run();
  assert.equal(app.text(), 'subscribed 1 @e1:11=1');
  await app.unmount();
  assert.equal(socket.requests('unsubscribe').length, 1);
});

test('a topic the server joined the session to is shown, never subscribed nor unsubscribed', async () => {
  const { client, socket } = connectedClient();
  const frames = new FakeFrames();
  socket.deliver({ ok: { topic: 'org:acme', epoch: 'j', offset: 41, recovered: false } });
  publish(socket, 'org:acme', 41, 'snapshot');
  const app = await mount(h(LivecastProvider, { client, schedule: frames.schedule }, h(TopicView, { topic: 'org:acme' })));
  // Its position is known at once; the value with the next publication.
  assert.equal(app.text(), 'subscribed - @j:41');
  publish(socket, 'org:acme', 42, 'live');
  frames.run();
  assert.equal(app.text(), 'subscribed "live" @j:42');
  await app.unmount();
  assert.deepEqual(socket.sent.map((request) => request.op), []);
  assert.equal(client.getSubscription('org:acme').state, 'subscribed');
});

test('a subscription the app made itself is shared and left to the app', async () => {
  const { client, socket } = connectedClient();
  const frames = new FakeFrames();
  const own = client.subscribe('kpi');
  const app = await mount(h(LivecastProvider, { client, schedule: frames.schedule }, h(TopicView, { topic: 'kpi' })));
  answerSubscribes(socket);
  publish(socket, 'kpi', 1, 'x');
  frames.run();
  assert.equal(app.text(), 'subscribed "x" @e1:1');
  await app.unmount();
  assert.equal(socket.requests('subscribe').length, 1);
  assert.equal(socket.requests('unsubscribe').length, 0);
  assert.equal(client.getSubscription('kpi'), own);
});

test('unmounted before the socket opened: nothing is sent and the client holds nothing', async () => {
  const { client, WebSocket } = connectedClient();
  WebSocket.latest().drop(1006);  // reconnecting: subscribes wait for the next socket
  const frames = new FakeFrames();
  const app = await mount(h(LivecastProvider, { client, schedule: frames.schedule }, h(TopicView, { topic: 'kpi' })));
  assert.equal(app.text(), 'subscribing - @-:0');
  await app.unmount();
  assert.deepEqual(client.subscriptions(), []);
  assert.equal(WebSocket.sockets.length, 1);
});

test('hooks outside a provider, or with a bad topic or max, throw a clear error', async () => {
  const failures = [];
  class Catch extends React.Component {
    constructor(props) {
      super(props);
      this.state = { failed: false };
    }

    static getDerivedStateFromError() {
      return { failed: true };
    }

    componentDidCatch(error) {
      failures.push(error.message);
    }

    render() {
      return this.state.failed ? null : this.props.children;
    }
  }
  const { client } = connectedClient();
  const silence = console.error;
  console.error = () => {};  // React logs errors that a boundary caught; they are the point here
  try {
    const app = await mount(h('div', null,
      h(Catch, null, h(TopicView, { topic: 'kpi' })),
      h(LivecastProvider, { client },
        h(Catch, null, h(TopicView, { topic: '' })),
        h(Catch, null, h(StreamView, { topic: 'kpi', max: 0 })))));
    await app.unmount();
  } finally {
    console.error = silence;
  }
  assert.deepEqual(failures.sort(), [
    'useStream: max must be a positive integer',
    'useTopic: no <LivecastProvider> above this component',
    'useTopic: topic must be a non-empty string',
  ]);
  assert.deepEqual(client.subscriptions(), []);
});
