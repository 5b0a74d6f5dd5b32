// A reconnect keeps what the components show while the client recovers; a
// new epoch starts the window afresh; errors and a closed client are shown,
// never thrown.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LivecastProvider } from '../../src/index.js';
import { FakeFrames, StreamView, TopicView, answerSubscribes, connectedClient, h, mount, publish } from './helpers.js';

// A provider with a number and a window on `kpi`, subscribed at e1, with
// publications 1..3 shown.
async function showingKpi() {
  const connection = connectedClient();
  const frames = new FakeFrames();
  const seen = [];
  const app = await mount(h(LivecastProvider, { client: connection.client, schedule: frames.schedule },
    h(TopicView, { topic: 'kpi', seen }), h(StreamView, { topic: 'kpi', max: 10 })));
  answerSubscribes(connection.socket);
  for (const offset of [1, 2, 3]) publish(connection.socket, 'kpi', offset, offset * 10);
  frames.run();
  assert.equal(app.text(), 'subscribed 30 @e1:31=10 2=20 3=30');
  return { ...connection, frames, seen, app };
}

// Drops the socket and lets the client's back-off run out; the new socket is open.
function reconnect({ socket, clock, WebSocket }) {
  socket.drop(1006);
  clock.advance(20_000);
  const next = WebSocket.latest();
  assert.notEqual(next, socket);
  next.accept();
  return next;
}

test('while reconnecting the value, offset and window stay; the replay continues them', async () => {
  const { clock, WebSocket, socket, frames, seen, app } = await showingKpi();
  const shownFrom = seen.length - 1;
  socket.drop(1006);
  frames.run();
  assert.equal(app.text(), 'subscribing 30 @e1:31=10 2=20 3=30');
  assert.equal(seen.at(-1).value, 30);

  clock.advance(20_000);
  const next = WebSocket.latest();
  next.accept();
  const request = next.lastRequest('subscribe');
  assert.deepEqual(request.recover, { epoch: 'e1', offset: 3 });
  next.deliver({ id: request.id, ok: { topic: 'kpi', epoch: 'e1', offset: 5, recovered: true } });
  publish(next, 'kpi', 4, 40);
  publish(next, 'kpi', 5, 50);
  frames.run();
  assert.equal(app.text(), 'subscribed 50 @e1:51=10 2=20 3=30 4=40 5=50');
  // The components never saw an empty value on the way.
  assert.deepEqual(seen.slice(shownFrom).map((snapshot) => snapshot.value), [30, 30, 50]);
  await app.unmount();
});

test('a new epoch (server restarted): the value stays until the snapshot, the window starts afresh', async () => {
  const setup = await showingKpi();
  const next = reconnect(setup);
  const request = next.lastRequest('subscribe');
  next.deliver({ id: request.id, ok: { topic: 'kpi', epoch: 'e2', offset: 1, recovered: false } });
  setup.frames.run();
  assert.equal(setup.app.text(), 'subscribed 30 @e1:3');
  publish(next, 'kpi', 1, 'snapshot');
  publish(next, 'kpi', 2, 'live');
  setup.frames.run();
  assert.equal(setup.app.text(), 'subscribed "live" @e2:21="snapshot" 2="live"');
  await setup.app.unmount();
});

test('a refused subscribe shows the error; the unmount sends nothing for a topic the client dropped', async () => {
  const { client, socket } = connectedClient();
  const frames = new FakeFrames();
  const seen = [];
  const app = await mount(h(LivecastProvider, { client, schedule: frames.schedule }, h(TopicView, { topic: 'secret', seen })));
  socket.deliver({ id: socket.lastRequest('subscribe').id, error: { code: 'forbidden', message: 'not yours' } });
  frames.run();
  assert.equal(app.text(), 'error - @-:0');
  assert.equal(seen.at(-1).error.code, 'forbidden');
  await app.unmount();
  assert.equal(socket.requests('unsubscribe').length, 0);
});

test('a transient error is shown, then cleared when the retry succeeds', async () => {
  const { client, socket, clock } = connectedClient();
  const frames = new FakeFrames();
  const seen = [];
  const app = await mount(h(LivecastProvider, { client, schedule: frames.schedule }, h(TopicView, { topic: 'kpi', seen })));
  socket.deliver({ id: socket.lastRequest('subscribe').id, error: { code: 'backend_unavailable', message: 'redis down' } });
  frames.run();
  assert.equal(seen.at(-1).state, 'error');
  assert.equal(seen.at(-1).error.code, 'backend_unavailable');
  clock.advance(20_000);
  assert.equal(socket.requests('subscribe').length, 2);
  answerSubscribes(socket);
  frames.run();
  assert.equal(seen.at(-1).state, 'subscribed');
  assert.equal(seen.at(-1).error, null);
  await app.unmount();
});

test('a client closed under the components: unsubscribed, value kept; mounting on it shows the error', async () => {
  const { client, socket, frames, app } = await showingKpi();
  client.close();
  frames.run();
  assert.equal(app.text(), 'unsubscribed 30 @e1:31=10 2=20 3=30');
  await app.unmount();
  assert.equal(socket.requests('unsubscribe').length, 0);

  const seen = [];
  const late = await mount(h(LivecastProvider, { client, schedule: frames.schedule }, h(TopicView, { topic: 'other', seen })));
  assert.equal(late.text(), 'error - @-:0');
  assert.equal(seen.at(-1).error.code, 'closed');
  await late.unmount();
});
