// The page of test_react_browser, bundled by browser.test.mjs with React 18
// or 19: the hooks and the real @livecast/client, whose WebSocket is the
// scripted fake of clients/js/test/fakes.js (the point is React in a real
// browser, with its real requestAnimationFrame; the server is not under
// test). The test drives it through window.__page.
import { createElement as h, useEffect, useLayoutEffect, useState, version } from 'react';
import { flushSync } from 'react-dom';
import { createRoot } from 'react-dom/client';
import { connect } from '@livecast/client';
import { fakeWebSocketClass } from '../../../js/test/fakes.js';
import { LivecastProvider, useStream, useTopic } from '../../src/index.js';

const WebSocket = fakeWebSocketClass();
const client = connect('ws://page.test/ws', { WebSocket, transports: ['websocket'], eventTarget: null, isOnline: () => true });
const socket = WebSocket.latest();
socket.accept();

// Commits per component and the frame each happened in: a layout effect
// without dependencies runs once per commit of its component.
const commits = {};
let frame = 0;
(function countFrames() {
  frame += 1;
  requestAnimationFrame(countFrames);
}());

function useCommitLog(name) {
  useLayoutEffect(() => {
    (commits[name] ??= []).push(frame);
  });
}

function Value({ name }) {
  const { state, value, offset } = useTopic('kpi');
  useCommitLog(name);
  return h('p', { 'data-name': name }, `${state} ${value?.n ?? '-'} @${offset}`);
}

function Window({ name, max }) {
  const items = useStream('kpi', { max });
  useCommitLog(name);
  return h('p', { 'data-name': name }, `${items.length}: ${items.map((item) => item.offset).join(',')}`);
}

// What rendering every publication costs: its own listener on the client's
// subscription and a synchronous render per publication. The burst must show
// about one commit per publication here, or it did not test the batching.
function Unbatched() {
  const [n, setN] = useState(null);
  useEffect(() => client.getSubscription('kpi').on('publication', (data) => flushSync(() => setN(data.n))), []);
  useCommitLog('unbatched');
  return h('p', { 'data-name': 'unbatched' }, String(n));
}

const root = createRoot(document.getElementById('root'));
const controlRoot = createRoot(document.getElementById('control'));

function render(values, windows) {
  root.render(h(LivecastProvider, { client },
    ...Array.from({ length: values }, (_, i) => h(Value, { key: `v${i}`, name: `value${i}` })),
    ...Array.from({ length: windows }, (_, i) => h(Window, { key: `w${i}`, name: `window${i}`, max: 10 + i }))));
}

const nextTask = () => new Promise((resolve) => {
  const channel = new MessageChannel();
  channel.port1.onmessage = () => resolve();
  channel.port2.postMessage(null);
});

window.__page = {
  reactVersion: version,
  commits,
  requests: (op) => socket.requests(op).map((request) => request.topic),
  text: () => [...document.querySelectorAll('p')].map((p) => `${p.dataset.name}=${p.textContent}`),
  render,
  answerSubscribe() {
    const request = socket.lastRequest('subscribe');
    socket.deliver({ id: request.id, ok: { topic: request.topic, epoch: 'e1', offset: 0, recovered: false } });
  },
  mountUnbatched: () => controlRoot.render(h(Unbatched)),
  unmountUnbatched: () => controlRoot.render(null),
  // `count` publications, each in a task of its own as a WebSocket delivers
  // them; resolves with the frames that began meanwhile.
  async burst(from, count) {
    const firstFrame = frame;
    for (let n = from; n < from + count; n += 1) {
      await nextTask();
      socket.deliver({ topic: 'kpi', offset: n, data: { n } });
    }
    return { firstFrame, lastFrame: frame };
  },
};
