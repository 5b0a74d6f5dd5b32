// Updates reach React once per frame: publications and state changes only
// mark the topic changed; the frame rebuilds the snapshots and renders.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LivecastProvider, animationFrameScheduler, useTopic } from '../../src/index.js';
import { FakeFrames, React, TopicView, act, answerSubscribes, connectedClient, h, mount, publish } from './helpers.js';

test('fifty publications before a frame: one frame asked for, one render per component, the last value', async () => {
  const { client, socket } = connectedClient();
  const frames = new FakeFrames();
  const first = [];
  const second = [];
  const app = await mount(h(LivecastProvider, { client, schedule: frames.schedule },
    h(TopicView, { topic: 'kpi', seen: first }), h(TopicView, { topic: 'kpi', seen: second })));
  answerSubscribes(socket);
  assert.equal(frames.run(), 1);
  const rendersBefore = [first.length, second.length];

  for (let offset = 1; offset <= 50; offset += 1) publish(socket, 'kpi', offset, { n: offset });
  assert.equal(frames.pending.length, 1);
  assert.equal(app.text(), 'subscribed - @e1:0subscribed - @e1:0', 'nothing rendered before the frame');
  assert.equal(frames.run(), 1);
  assert.deepEqual([first.length - rendersBefore[0], second.length - rendersBefore[1]], [1, 1]);
  assert.equal(app.text(), 'subscribed {"n":50} @e1:50'.repeat(2));
  // Both components got the same immutable snapshot.
  assert.equal(first.at(-1), second.at(-1));
  assert.ok(Object.isFrozen(first.at(-1)));
  await app.unmount();
});

test('state changes wait for the frame too, and a quiet topic asks for none', async () => {
  const { client, socket } = connectedClient();
  const frames = new FakeFrames();
  const app = await mount(h(LivecastProvider, { client, schedule: frames.schedule }, h(TopicView, { topic: 'kpi' })));
  assert.equal(frames.requested, 0);
  answerSubscribes(socket, { epoch: 'e7', offset: 12 });
  assert.equal(app.text(), 'subscribing - @-:0');
  frames.run();
  assert.equal(app.text(), 'subscribed - @e7:12');
  // Nothing arrived since: no frame asked for, nothing rendered.
  assert.equal(frames.requested, 1);
  assert.equal(frames.pending.length, 0);
  await app.unmount();
});

test('the snapshot is the same object between frames, whatever re-renders the component', async () => {
  const { client, socket } = connectedClient();
  const frames = new FakeFrames();
  const seen = [];
  let setTick;
  function Parent() {
    const [tick, set] = React.useState(0);
    setTick = set;
    return h('div', null, `tick ${tick} `, h(TopicView, { topic: 'kpi', seen }));
  }
  const app = await mount(h(LivecastProvider, { client, schedule: frames.schedule }, h(Parent)));
  answerSubscribes(socket);
  publish(socket, 'kpi', 1, 'a');
  frames.run();
  const before = seen.length;
  await act(async () => setTick(1));
  publish(socket, 'kpi', 2, 'b');  // pending: not visible in the re-render below
  await act(async () => setTick(2));
  assert.equal(seen.length, before + 2);
  assert.equal(seen.at(-1), seen.at(-3));
  assert.equal(app.text(), 'tick 2 subscribed "a" @e1:1');
  frames.run();
  assert.equal(app.text(), 'tick 2 subscribed "b" @e1:2');
  await app.unmount();
});

test('two topics changed in one frame: one frame, and a component showing both renders once', async () => {
  const { client, socket } = connectedClient();
  const frames = new FakeFrames();
  let renders = 0;
  function Both() {
    const a = useTopic('a');
    const b = useTopic('b');
    renders += 1;
    return h('p', null, `${a.value ?? '-'} ${b.value ?? '-'}`);
  }
  const app = await mount(h(LivecastProvider, { client, schedule: frames.schedule }, h(Both)));
  answerSubscribes(socket);
  frames.run();
  renders = 0;
  const requested = frames.requested;
  publish(socket, 'a', 1, 'A');
  publish(socket, 'b', 1, 'B');
  publish(socket, 'a', 2, 'AA');
  assert.equal(frames.requested, requested + 1);
  frames.run();
  assert.equal(renders, 1);
  assert.equal(app.text(), 'AA B');
  await app.unmount();
});

test('the default scheduler is requestAnimationFrame where there is one', async () => {
  const { client, socket } = connectedClient();
  const callbacks = [];
  globalThis.requestAnimationFrame = (callback) => callbacks.push(callback);
  try {
    const app = await mount(h(LivecastProvider, { client }, h(TopicView, { topic: 'kpi' })));
    answerSubscribes(socket);
    publish(socket, 'kpi', 1, 'x');
    publish(socket, 'kpi', 2, 'y');
    assert.equal(callbacks.length, 1);
    act(() => callbacks.splice(0).forEach((callback) => callback(16.7)));
    assert.equal(app.text(), 'subscribed "y" @e1:2');
    await app.unmount();
  } finally {
    delete globalThis.requestAnimationFrame;
  }
});

test('without requestAnimationFrame the default scheduler is a 16 ms timer', () => {
  const timers = [];
  const realSetTimeout = globalThis.setTimeout;
  globalThis.setTimeout = (callback, ms) => timers.push({ callback, ms });
  let flushed = 0;
  try {
    animationFrameScheduler(() => { flushed += 1; });
  } finally {
    globalThis.setTimeout = realSetTimeout;
  }
  assert.deepEqual(timers.map((timer) => timer.ms), [16]);
  timers[0].callback();
  assert.equal(flushed, 1);
});
