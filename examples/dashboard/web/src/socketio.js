// /?client=socketio: the same dashboard (page.js) on an unchanged
// socket.io-client, the way a Socket.IO front end talks to its gateway: the
// token in `auth`, and listeners for events. The server puts the socket in
// its rooms on connect (the org's KPI topics, alerts and, where the role
// allows, the transaction feed: demo_server_joins), and each publication
// arrives as the event named after its topic. Bundled with uPlot into
// dist/dashboard-socketio.js by build.mjs; the styles are dashboard.css.
import { io } from 'socket.io-client';
import { LATENCY_TOPIC, debug, loadConfig, org, publication, setProtocol, showConnection, showFeedStatus,
         showLatencyStatus, token, topic } from './page.js';

const SUBSCRIBE_TIMEOUT_MS = 5000;

setProtocol('socket.io');
const { host, secure } = await loadConfig();
const socket = io(`${secure ? 'https' : 'http'}://${host}`, {
  auth: { token },
  // socket.io-client's default transports: Engine.IO polling first (it gets
  // through proxies that block upgrades), then the upgrade to a WebSocket.
});
debug.socket = { id: null, recovered: null, errors: [], acks: [] };

const via = () => {
  const name = socket.io.engine?.transport?.name ?? 'websocket';
  return { transport: name, via: `socket.io (${name})` };
};

socket.on('connect', () => {
  debug.socket.id = socket.id;
  debug.socket.recovered = socket.recovered;
  showConnection({ state: 'connected', ...via() });
  // Started on polling, the engine moves to the WebSocket when it can.
  socket.io.engine.once('upgrade', () => showConnection({ state: 'connected', ...via() }));
  askForFeed();
  askForLatency();
});

// `active`: socket.io-client reconnects by itself (a lost connection); not
// active: the server disconnected it or refused its CONNECT, and it stays away.
socket.on('disconnect', (reason) => {
  showConnection({ state: 'disconnected', willReconnect: socket.active, reason });
});
socket.on('connect_error', (error) => {
  showConnection({ state: socket.active ? 'connecting' : 'disconnected', reason: error.message });
});
socket.io.on('reconnect_attempt', (attempt) => showConnection({ state: 'connecting', attempt }));

// Every event of this org's rooms is a publication on the topic it is named
// after; the server's errors without an acknowledgement come as
// `livecast:error` (SocketIoSettings::error_event).
const prefix = `org:${org}`;
socket.onAny((event, data) => {
  if (event === 'livecast:error') {
    debug.socket.errors.push(data);
    return;
  }
  if (event === prefix || event.startsWith(`${prefix}:`)) publication(event, data);
});

// The feed, asked for as a Socket.IO front end would: an emit with an
// acknowledgement. A role that may read it is in the room already (the
// server joined it on connect: `already_subscribed`); a viewer is refused.
function askForFeed() {
  const name = topic('transactions');
  socket.timeout(SUBSCRIBE_TIMEOUT_MS).emit('subscribe', name, (timedOut, answer) => {
    debug.socket.acks.push(timedOut ? { timeout: true } : answer);
    if (timedOut) {
      showFeedStatus({ state: 'error', code: 'timeout' });
      return;
    }
    const code = answer?.error?.code;
    if (!code || code === 'already_subscribed') {
      debug.subscribed[name] ??= [];
      if (!code) debug.subscribed[name].push({ epoch: answer.epoch, offset: answer.offset, recovered: answer.recovered });
      showFeedStatus({ state: 'live', resumed: false });
    } else {
      showFeedStatus({ state: code === 'forbidden' ? 'forbidden' : 'error', code });
    }
  });
}

// The latency percentiles (the Aggregator's 1 s summaries): not a room the
// server joins, so asked for like the feed. Socket.IO has no recent history
// on subscribe: this chart fills from now on.
function askForLatency() {
  socket.timeout(SUBSCRIBE_TIMEOUT_MS).emit('subscribe', topic(LATENCY_TOPIC), (timedOut, answer) => {
    const code = timedOut ? 'timeout' : answer?.error?.code;
    showLatencyStatus(!code || code === 'already_subscribed' ? null : code);
  });
}
