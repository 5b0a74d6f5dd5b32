// What the hooks' Node tests share: a jsdom document for react-dom, React's
// own act() and createRoot, the real @livecast/client over the scripted fake
// WebSocket of clients/js/test/fakes.js, and a frame scheduler the tests run
// by hand. Run through test/run-node.mjs, which picks the React version.
import assert from 'node:assert/strict';
import { afterEach } from 'node:test';
import { JSDOM } from 'jsdom';
import { connect } from '../../../js/src/livecast.js';
import { harness } from '../../../js/test/fakes.js';
import { useStream, useTopic } from '../../src/index.js';

// react-dom looks for a DOM when it loads, so the globals come first.
const dom = new JSDOM('<!doctype html><html><body></body></html>');
for (const name of ['window', 'document', 'navigator', 'HTMLElement', 'Node', 'Event']) {
  Object.defineProperty(globalThis, name, { value: dom.window[name], configurable: true, writable: true });
}
// Tells React that updates are wrapped in act(); without it, act() warns.
globalThis.IS_REACT_ACT_ENVIRONMENT = true;

export const React = await import('react');
const ReactDOM = await import('react-dom');
const { createRoot } = await import('react-dom/client');
export const { act, createElement: h, StrictMode } = React;

// A test that loaded the wrong React would pass while testing nothing new.
const expectedMajor = process.env.LIVECAST_REACT_MAJOR;
if (!expectedMajor) throw new Error('LIVECAST_REACT_MAJOR is not set: run these tests through test/run-node.mjs');
for (const [name, version] of [['react', React.version], ['react-dom', ReactDOM.version]]) {
  if (version.split('.')[0] !== expectedMajor) {
    throw new Error(`${name} ${version} was loaded, but this run is for React ${expectedMajor}`);
  }
}

// Everything React reports through console.error (act() warnings, an
// unstable getSnapshot, a missing key) fails the test that caused it.
const consoleErrors = [];
const originalConsoleError = console.error;
console.error = (...args) => consoleErrors.push(args.map(String).join(' '));
afterEach(() => {
  const seen = consoleErrors.splice(0);
  assert.deepEqual(seen, [], 'console.error during the test');
});
process.on('exit', () => { console.error = originalConsoleError; });

// The provider's `schedule`: the store asks for a frame, the test runs it.
export class FakeFrames {
  constructor() {
    this.pending = [];
    this.requested = 0;
    this.schedule = (flush) => {
      this.requested += 1;
      this.pending.push(flush);
    };
  }

  // Runs the frames asked for so far, inside act() so React renders now.
  run() {
    const due = this.pending.splice(0);
    act(() => {
      for (const flush of due) flush();
    });
    return due.length;
  }
}

// Renders into a fresh container; every change goes through an async act(),
// which also lets the store's end-of-task unsubscribes run.
export async function mount(element) {
  const container = document.createElement('div');
  document.body.append(container);
  const root = createRoot(container);
  await act(async () => root.render(element));
  return {
    container,
    text: () => container.textContent,
    render: (next) => act(async () => root.render(next)),
    unmount: async () => {
      await act(async () => root.unmount());
      container.remove();
    },
  };
}

// A client whose socket is open; `answer` replies to the subscribes not yet
// answered, as the server would.
export function connectedClient(extra) {
  const h = harness(extra);
  const client = connect('ws://test/ws', h.options);
  const socket = h.WebSocket.latest();
  socket.accept();
  return { ...h, client, socket };
}

export function answerSubscribes(socket, { epoch = 'e1', offset = 0, recovered = false } = {}) {
  socket.answered ??= new Set();
  for (const request of socket.requests('subscribe')) {
    if (socket.answered.has(request.id)) continue;
    socket.answered.add(request.id);
    socket.deliver({ id: request.id, ok: { topic: request.topic, epoch, offset, recovered } });
  }
}

export function publish(socket, topic, offset, data) {
  socket.deliver({ topic, offset, data });
}

export const topicsOf = (requests) => requests.map((request) => request.topic);

// Components that show what the hooks give, as text the tests read back.
export function showTopic(snapshot) {
  return `${snapshot.state} ${JSON.stringify(snapshot.value) ?? '-'} @${snapshot.epoch ?? '-'}:${snapshot.offset}`;
}

export function TopicView({ topic, seen }) {
  const snapshot = useTopic(topic);
  seen?.push(snapshot);
  return h('p', null, showTopic(snapshot));
}

export function StreamView({ topic, max, recent, seen }) {
  const options = max === undefined && recent === undefined ? undefined : { max, recent };
  const items = useStream(topic, options);
  seen?.push(items);
  return h('p', null, items.map((item) => `${item.offset}=${JSON.stringify(item.data)}`).join(' '));
}
