// The socket.io-client side of the tests: sockets with the suites'
// defaults, waits for their connection, and the control channel through
// which a test makes livecast-socketio-test-server publish, close sessions
// and report (socketio_test_server.cpp lists its client events).
import assert from 'node:assert/strict';
import { WAIT_MS, importClient, nonce, within } from './harness.mjs';

const { io } = await importClient();

const sockets = new Set();
// The transports of the suite running now (each describe sets it in before()).
let suiteTransports = ['websocket'];
export function useTransports(transports) { suiteTransports = transports; }

// A socket.io-client socket with the test's defaults: the suite's transport
// only, no reconnection unless asked, its own Manager.
export function client(url, token, options = {}) {
  const socket = io(url, {
    forceNew: true,
    transports: suiteTransports,
    reconnection: false,
    timeout: WAIT_MS,
    auth: token === undefined ? undefined : { token },
    ...options,
  });
  sockets.add(socket);
  return socket;
}

// Resolves once `socket` is connected; rejects with the connect_error.
export function connected(socket, ms = WAIT_MS) {
  if (socket.connected) return Promise.resolve(socket);
  return within(ms, 'connect', new Promise((resolveConnect, reject) => {
    socket.once('connect', () => resolveConnect(socket));
    socket.once('connect_error', (err) => reject(new Error(`connect_error: ${err.message}`)));
  }));
}

// A connected client whose server-side joins are in place: a subscribe is
// answered once the backend has read it, after the joins made at connect
// (the broker handles a session's work in order), so its acknowledgement is
// a barrier before the test publishes.
export async function ready(url, token, options = {}) {
  const socket = await connected(client(url, token, options));
  const ack = await socket.timeout(WAIT_MS).emitWithAck('subscribe', `room:sync-${nonce()}`);
  assert.ok(ack && !ack.error, `the barrier subscribe failed: ${JSON.stringify(ack)}`);
  return socket;
}

// The control channel: a client of its own that makes the server publish,
// close sessions and report its counters.
export class Control {
  constructor(socket) { this.socket = socket; }
  static async open(url) { return new Control(await ready(url, 'good-control')); }
  async call(event, ...args) {
    const answer = await this.socket.timeout(WAIT_MS).emitWithAck(event, ...args);
    assert.ok(answer && !answer.error, `${event} failed: ${JSON.stringify(answer)}`);
    return answer;
  }
  publish(topic, data) { return this.call('publish', { topic, data }); }
  burst(topic, count) { return this.call('burst', { topic, count }); }
  kick(user, code, reason) { return this.call('kick', code === undefined ? user : { user, code, reason }); }
  stats() { return this.call('stats'); }
  sessions(user) { return this.call('sessions', user); }
  // Asks until the server's record of `user` satisfies `accept` (there is no
  // event for a session that ended on the server); bounded by `ms`.
  async sessionsUntil(user, accept, ms = WAIT_MS) {
    const deadline = Date.now() + ms;
    let last;
    while (Date.now() < deadline) {
      last = await this.sessions(user);
      if (accept(last)) return last;
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error(`after ${ms} ms the server's record of ${user} is still ${JSON.stringify(last)}`);
  }
}

// Every event a socket receives, by name, for checks that something did not arrive.
export function recordEvents(socket) {
  const events = [];
  socket.onAny((name, ...args) => events.push({ name, args }));
  return events;
}

// Disconnects every socket made by client(); for each file's last after().
export function disconnectAll() {
  for (const socket of sockets) socket.disconnect();
}

// Exactly what an application writes (seed 003's hook): io(url, options)
// with nothing of the tests' defaults; still disconnected by disconnectAll().
export function plainClient(url, options) {
  const socket = io(url, options);
  sockets.add(socket);
  return socket;
}
