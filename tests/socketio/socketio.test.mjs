// End-to-end: the real socket.io-client 4.x from npm against a real livecast
// binary (livecast-socketio-test-server) that speaks livecast.v1 and
// socket.io on one port. What the server does is described at the top of
// socketio_test_server.cpp; in short: token "good-<user>", joins to
// "room:all", "room:user:<user>" and "metrics" (arriving as
// "metrics-update"), and client events echo, boom, publish, burst, kick,
// drain, stats and sessions (what SessionHooks saw of a user).
//
//   LIVECAST_SOCKETIO_SERVER  the test server binary (ctest passes it)
//
// Exits 77 (ctest: skipped) when socket.io-client or ws is missing (`npm ci`
// here). Every wait is on an event with a deadline; the only fixed waits
// check that something does NOT happen (no reconnection after a kick).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  WAIT_MS, freePort, importClient, nextEvent, nonce, requireServerBinary, skipAll, startServer, within,
} from './harness.mjs';

requireServerBinary();
const { io } = await importClient();
let RawEngineIo;
try {
  ({ RawEngineIo } = await import('./raw_engineio.mjs'));  // needs the `ws` package
} catch {
  skipAll('ws is not installed (run `npm ci` in tests/socketio)');
}

// What livecast does not do yet is `todo`: those tests run and report, but
// do not fail the suite; each says why.
// socket.io-client handles a Socket.IO packet a microtask after its Engine.IO
// message, but an Engine.IO close at once: "41" and "1" in one poll answer
// read as "transport close", and the client reconnects.
const FAREWELL_TODO = 'over polling, a session closed while no GET waits answers the next GET with "41\\x1e1" ' +
                      '(the farewell and the close in one payload): socket.io-client then says "transport close" ' +
                      'and reconnects (about 1 kick in 40 in a Release build, 1 in 7 under ASan)';
const UPGRADE_TODO = 'livecast offers no upgrade yet ("upgrades":[] in the polling open packet, "No upgrade offered yet" ' +
                     'in src/transport/engineio_polling.cpp), so socket.io-client stays on polling';

const sockets = new Set();
// The transports of the suite running now (each describe sets it in before()).
let suiteTransports = ['websocket'];

// A socket.io-client socket with the test's defaults: the suite's transport
// only, no reconnection unless asked, its own Manager.
function client(url, token, options = {}) {
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
function connected(socket, ms = WAIT_MS) {
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
async function ready(url, token, options = {}) {
  const socket = await connected(client(url, token, options));
  const ack = await socket.timeout(WAIT_MS).emitWithAck('subscribe', `room:sync-${nonce()}`);
  assert.ok(ack && !ack.error, `the barrier subscribe failed: ${JSON.stringify(ack)}`);
  return socket;
}

// The control channel: a client of its own that makes the server publish,
// close sessions and report its counters.
class Control {
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
function recordEvents(socket) {
  const events = [];
  socket.onAny((name, ...args) => events.push({ name, args }));
  return events;
}

after(() => {
  for (const socket of sockets) socket.disconnect();
});

// The same suite over each transport alone: socket.io-client's Socket
// behaves the same on both, and so must livecast.
for (const transport of ['websocket', 'polling']) describe(`socket.io-client over ${transport} only`, () => {
  let server;
  let control;

  before(async () => {
    suiteTransports = [transport];
    server = await startServer(['--ping-interval-ms', '400', '--idle-timeout-ms', '3000']);
    control = await Control.open(server.url);
  });
  after(async () => {
    control?.socket.disconnect();
    if (server) {
      const exit = await server.stop();
      assert.equal(exit.code, 0, `the server exited with ${JSON.stringify(exit)}:\n${server.output}`);
    }
  });

  it('connects with auth {token}: connect fires and socket.id is set', async () => {
    const socket = await connected(client(server.url, 'good-alice'));
    assert.equal(typeof socket.id, 'string');
    assert.ok(socket.id.length > 0, 'socket.id is empty');
    assert.equal(socket.connected, true);
    assert.equal(socket.io.engine.transport.name, transport);
    socket.disconnect();
  });

  it('a refused token gives connect_error with the Authenticator\'s reason', async () => {
    for (const token of ['bad-token', undefined]) {
      const socket = client(server.url, token);
      const [err] = await nextEvent(socket, 'connect_error');
      assert.equal(err.message, 'invalid token', `token ${token}`);
      assert.equal(socket.connected, false);
      assert.equal(socket.id, undefined);
      socket.disconnect();
    }
  });

  it('a namespace other than "/": connect_error "Invalid namespace" on that socket', async () => {
    // Socket.IO answers 44/admin,{"message":"Invalid namespace"}: the
    // namespace prefix routes the refusal to the socket that asked.
    const socket = client(`${server.url}/admin`, 'good-alice');
    const [err] = await nextEvent(socket, 'connect_error');
    assert.equal(err.message, 'Invalid namespace');
    socket.disconnect();
  });

  it('server joins: a publication on room:all arrives as the event "room:all"', async () => {
    const alice = await ready(server.url, 'good-alice');
    const bob = await ready(server.url, 'good-bob');
    const events = recordEvents(alice);
    const data = { n: nonce('all'), nested: { list: [1, 'two', null, true] }, text: 'héllo ✓' };
    const atAlice = nextEvent(alice, 'room:all', { accept: (d) => d?.n === data.n });
    const atBob = nextEvent(bob, 'room:all', { accept: (d) => d?.n === data.n });
    const forBob = { n: nonce('bob') };
    const bobsOwn = nextEvent(bob, 'room:user:bob', { accept: (d) => d?.n === forBob.n });
    await control.publish('room:user:bob', forBob);
    await control.publish('room:all', data);
    assert.deepEqual((await atAlice)[0], data);
    assert.deepEqual((await atBob)[0], data);
    await bobsOwn;
    // Bob's room was published first, so it would have reached Alice by now.
    assert.ok(!events.some((e) => e.name === 'room:user:bob'), 'alice received bob\'s room');
    alice.disconnect();
    bob.disconnect();
  });

  it('seed 003 hook pattern: topic "metrics" arrives as "metrics-update"', async () => {
    // What seed 003's hook does (there with ['websocket']): no forceNew, no subscribe.
    const url = server.url;
    const token = 'good-dashboard';
    const socket = io(url, { transports: [transport], auth: { token } });
    sockets.add(socket);
    await connected(socket);
    await socket.timeout(WAIT_MS).emitWithAck('subscribe', `room:sync-${nonce()}`);
    const events = recordEvents(socket);
    const data = { cpu: 0.42, n: nonce('metrics') };
    const update = nextEvent(socket, 'metrics-update', { accept: (d) => d?.n === data.n });
    await control.publish('metrics', data);
    assert.deepEqual((await update)[0], data);
    assert.ok(!events.some((e) => e.name === 'metrics'), 'the topic\'s own name was used as well');
    socket.disconnect();
  });

  it('emit with an acknowledgement: echo answers with the same arguments', async () => {
    const socket = await connected(client(server.url, 'good-alice'));
    const args = await within(WAIT_MS, 'the echo ack', new Promise((resolveAck) => {
      socket.emit('echo', 1, 'two', { three: 3 }, (...answer) => resolveAck(answer));
    }));
    assert.deepEqual(args, [1, 'two', { three: 3 }]);
    assert.equal(await socket.timeout(WAIT_MS).emitWithAck('echo', 'only'), 'only');
    assert.deepEqual(await socket.timeout(WAIT_MS).emitWithAck('echo', { a: [1, 2] }, 'b'), { a: [1, 2] });
    // With timeout(): (err, ...args).
    const timed = await within(WAIT_MS, 'the timed echo ack', new Promise((resolveAck) => {
      socket.timeout(WAIT_MS).emit('echo', 'x', (err, x) => resolveAck([err, x]));
    }));
    assert.deepEqual(timed, [null, 'x']);
    // An event without an ack is still handled; an echo after it answers.
    socket.emit('echo', 'no ack wanted');
    assert.equal(await socket.timeout(WAIT_MS).emitWithAck('echo', 'after'), 'after');
    socket.disconnect();
  });

  it('a handler that throws: the client gets an error, the server and the connection go on', async () => {
    const socket = await connected(client(server.url, 'good-alice'));
    const before = await control.stats();
    // With an ack: the ack carries {error}.
    const answer = await socket.timeout(WAIT_MS).emitWithAck('boom', 1);
    assert.equal(answer?.error?.code, 'internal_error', JSON.stringify(answer));
    assert.equal(typeof answer.error.message, 'string');
    // Without: the error event.
    const errorEvent = nextEvent(socket, 'livecast:error');
    socket.emit('boom');
    const [error] = await errorEvent;
    assert.equal(error?.code, 'internal_error', JSON.stringify(error));
    // Still usable, and counted.
    assert.equal(await socket.timeout(WAIT_MS).emitWithAck('echo', 'still here'), 'still here');
    assert.equal(socket.connected, true);
    const afterwards = await control.stats();
    assert.ok(afterwards.callback_errors >= before.callback_errors + 2, JSON.stringify({ before, afterwards }));
    // An event the handler does not know is refused the same way.
    const unknown = await socket.timeout(WAIT_MS).emitWithAck('no-such-event');
    assert.equal(unknown?.error?.code, 'unknown_op', JSON.stringify(unknown));
    socket.disconnect();
  });

  it('subscribe from the client: the ack, then publications on that room', async () => {
    const socket = await ready(server.url, 'good-alice');
    const room = `room:extra-${nonce()}`;
    const ack = await within(WAIT_MS, 'the subscribe ack', new Promise((resolveAck) => {
      socket.emit('subscribe', room, resolveAck);
    }));
    assert.equal(ack?.topic, room, JSON.stringify(ack));
    assert.equal(typeof ack.epoch, 'string');
    assert.equal(typeof ack.offset, 'number');
    assert.equal(typeof ack.recovered, 'boolean');
    const data = { n: nonce('extra') };
    const got = nextEvent(socket, room, { accept: (d) => d?.n === data.n });
    await control.publish(room, data);
    assert.deepEqual((await got)[0], data);

    // The {topic} form, and a refusal by the Authorizer.
    const other = `room:other-${nonce()}`;
    assert.equal((await socket.timeout(WAIT_MS).emitWithAck('subscribe', { topic: other }))?.topic, other);
    const refused = await socket.timeout(WAIT_MS).emitWithAck('subscribe', 'secret:payroll');
    assert.equal(refused?.error?.code, 'forbidden', JSON.stringify(refused));
    const twice = await socket.timeout(WAIT_MS).emitWithAck('subscribe', room);
    assert.equal(twice?.error?.code, 'already_subscribed', JSON.stringify(twice));

    // Unsubscribe: later publications there no longer arrive (checked
    // against a publication on room:all made after them).
    const unsubscribed = await socket.timeout(WAIT_MS).emitWithAck('unsubscribe', room);
    assert.ok(!unsubscribed?.error, JSON.stringify(unsubscribed));
    const events = recordEvents(socket);
    const marker = { n: nonce('marker') };
    const markerArrived = nextEvent(socket, 'room:all', { accept: (d) => d?.n === marker.n });
    await control.publish(room, { n: nonce('gone') });
    await control.publish('room:all', marker);
    await markerArrived;
    assert.ok(!events.some((e) => e.name === room), `a publication on ${room} arrived after unsubscribe`);
    socket.disconnect();
  });

  it('a burst of 500 publications arrives complete and in order', async () => {
    const socket = await ready(server.url, 'good-alice');
    const room = `room:burst-${nonce()}`;
    assert.equal((await socket.timeout(WAIT_MS).emitWithAck('subscribe', room))?.topic, room);
    const count = 500;
    const received = [];
    const all = new Promise((resolveAll) => {
      socket.on(room, (d) => {
        received.push(d?.i);
        if (received.length === count) resolveAll();
      });
    });
    await control.burst(room, count);
    await within(WAIT_MS, `${count} publications`, all, () => `${received.length} so far`);
    assert.deepEqual(received, Array.from({ length: count }, (_, i) => i));
  });

  it('30 emits of 5 KB at once (more than maxPayload together): every one acknowledged', async () => {
    const socket = await connected(client(server.url, 'good-alice'));
    const chunk = 'x'.repeat(5 * 1024);
    const answers = await Promise.all(Array.from({ length: 30 }, (_, i) =>
      socket.timeout(WAIT_MS).emitWithAck('echo', `${i}:${chunk}`)));
    assert.deepEqual(answers.map((a) => a.split(':')[0]), Array.from({ length: 30 }, (_, i) => String(i)));
    assert.ok(answers.every((a) => a.length === chunk.length + String(a.split(':')[0]).length + 1));
  });

  it('a topic name with quotes, backslashes and non-ASCII arrives as that event name', async () => {
    const socket = await ready(server.url, 'good-alice');
    const room = `room:"quoted" back\\slash ünïcødé \u2028 ✓ ${nonce()}`;
    assert.equal((await socket.timeout(WAIT_MS).emitWithAck('subscribe', room))?.topic, room);
    const data = { n: nonce('odd-name') };
    const got = nextEvent(socket, room, { accept: (d) => d?.n === data.n });
    await control.publish(room, data);
    assert.deepEqual((await got)[0], data);
  });

  it('an emit with binary data: the client is told binary attachments are refused', async () => {
    const socket = await connected(client(server.url, 'good-alice'));
    const refused = nextEvent(socket, 'livecast:error');
    socket.emit('echo', Buffer.from([1, 2, 3]));
    const [error] = await refused;
    assert.equal(error?.code, 'bad_request', JSON.stringify(error));
    assert.match(error.message, /binary/);
  });

  it('an emit with binary data and an ack: the ack carries the error, the connection stays', {
    todo: 'livecast answers 451-0[...] (a BINARY_EVENT with ack id 0) with the event livecast:error, not the ack ' +
          '430[{error}], so emitWithAck times out; over WebSocket the attachment\'s binary frame then closes the connection (1003), over ' +
          'polling it is a second error and the session goes on',
  }, async () => {
    const socket = await connected(client(server.url, 'good-alice'));
    const answer = await socket.timeout(WAIT_MS).emitWithAck('echo', Buffer.from([1, 2, 3]));
    assert.equal(answer?.error?.code, 'bad_request', JSON.stringify(answer));
    assert.equal(await socket.timeout(WAIT_MS).emitWithAck('echo', 'after binary'), 'after binary');
  });

  it('a client\'s disconnect() ends its session on the server at once', async () => {
    const user = `leaver-${nonce()}`;
    const socket = await connected(client(server.url, `good-${user}`));
    assert.deepEqual(await control.sessions(user), { opened: 1, closed: 0, last_close: null });
    const started = Date.now();
    socket.disconnect();
    // At once: well before the heartbeat timeout (400 + 2600 ms here) would end it.
    await control.sessionsUntil(user, (r) => r.closed === 1, 1500);
    assert.ok(Date.now() - started < 1500);
  });

  it('SessionHooks::on_close tells a client\'s disconnect() from a server close', {
    todo: 'the client\'s DISCONNECT (41) reaches on_close as code 1000, as if the server had closed it (a kick ' +
          'with close_sessions(user, normal) reads the same); session_control.hpp says nullopt when the client ' +
          'ended it',
  }, async () => {
    const user = `leaver-${nonce()}`;
    const socket = await connected(client(server.url, `good-${user}`));
    socket.disconnect();
    const record = await control.sessionsUntil(user, (r) => r.closed === 1);
    assert.equal(record.last_close, null, 'the client ended it, not the server');
  });

  it('a kick is seen on the server as a close with code 1000', async () => {
    const user = `kicked-${nonce()}`;
    const socket = await connected(client(server.url, `good-${user}`));
    const gone = nextEvent(socket, 'disconnect');
    await control.kick(user);
    await gone;
    const record = await control.sessionsUntil(user, (r) => r.closed === 1);
    assert.deepEqual(record, { opened: 1, closed: 1, last_close: 1000 });
  });

  it('server-initiated disconnect: "io server disconnect", and no reconnection', {
    todo: transport === 'polling' && FAREWELL_TODO,
  }, async () => {
    const socket = await connected(client(server.url, 'good-kickme',
                                          { reconnection: true, reconnectionDelay: 50, reconnectionDelayMax: 100 }));
    let attempts = 0;
    socket.io.on('reconnect_attempt', () => { attempts += 1; });
    const gone = nextEvent(socket, 'disconnect');
    await control.kick('kickme');
    const [reason] = await gone;
    assert.equal(reason, 'io server disconnect');
    assert.equal(socket.active, false, 'socket.io-client would reconnect');
    // Twenty reconnection delays: none may be attempted.
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(attempts, 0, 'socket.io-client tried to reconnect after a server disconnect');
    assert.equal(socket.connected, false);
    // The same user may connect again (a kick is not a ban).
    const again = await connected(client(server.url, 'good-kickme'));
    again.disconnect();
  });

  it('heartbeat: the client answers the server\'s pings and stays connected', async () => {
    const socket = await connected(client(server.url, 'good-alice'));
    let disconnected = null;
    socket.on('disconnect', (reason) => { disconnected = reason; });
    for (let i = 0; i < 3; ++i) await nextEvent(socket.io, 'ping', { ms: 3000 });
    assert.equal(disconnected, null);
    // Past the idle timeout (3 s) thanks to the pongs: still working.
    assert.equal(await socket.timeout(WAIT_MS).emitWithAck('echo', 'alive'), 'alive');
    socket.disconnect();
  });

  it('the open packet says what the server was configured with',
     { skip: transport !== 'websocket' && 'a raw WebSocket client' }, async () => {
    const raw = new RawEngineIo(server.port);
    const open = await raw.handshake();
    assert.equal(typeof open.sid, 'string');
    assert.ok(open.sid.length > 0);
    assert.equal(open.pingInterval, 400);
    assert.ok(open.pingTimeout > 0 && open.pingInterval + open.pingTimeout <= 3000 + 400,
              `pingTimeout ${open.pingTimeout}`);
    assert.equal(open.maxPayload, 64 * 1024);
    assert.deepEqual(open.upgrades, []);  // already on WebSocket
    await raw.close();
  });
});

for (const transport of ['websocket', 'polling']) describe(`reconnection after a server restart (${transport})`, () => {
  let port;
  let server;
  before(async () => {
    suiteTransports = [transport];
    port = await freePort();
    server = await startServer(['--port', String(port)]);
  });
  after(async () => { if (server?.alive) await server.stop('SIGKILL'); });

  for (const signal of ['SIGTERM', 'SIGKILL']) {
    it(`${signal}, then a new process on the same port: the client reconnects by itself`, async () => {
      const socket = await ready(server.url, 'good-phoenix',
                                 { reconnection: true, reconnectionDelay: 100, reconnectionDelayMax: 500 });
      const down = nextEvent(socket, 'disconnect');
      await server.stop(signal);
      const [reason] = await down;
      // Going away is not "io server disconnect": that would stop the client
      // for good. A killed server's pending poll fails: "transport error".
      assert.ok(['transport close', 'transport error'].includes(reason), `disconnect reason on ${signal}: ${reason}`);
      assert.equal(socket.active, true, 'socket.io-client gave up');
      const back = nextEvent(socket, 'connect', { ms: 15000 });
      server = await startServer(['--port', String(port)]);
      await back;
      assert.equal(socket.connected, true);
      assert.equal(typeof socket.id, 'string');
      // The joins are made again on the new process: a publication arrives.
      await socket.timeout(WAIT_MS).emitWithAck('subscribe', `room:sync-${nonce()}`);
      const control = await Control.open(server.url);
      const data = { n: nonce('after-restart') };
      const got = nextEvent(socket, 'room:all', { accept: (d) => d?.n === data.n });
      await control.publish('room:all', data);
      assert.deepEqual((await got)[0], data);
      control.socket.disconnect();
      socket.disconnect();
    });
  }
});

// Broker::drain closes every session with 4012 "reconnect after": a Socket.IO
// client must take it as a transport close and come back, never as the
// "io server disconnect" that stops it for good.
for (const transport of ['websocket', 'polling']) describe(`drain (${transport})`, () => {
  let server;
  before(async () => {
    suiteTransports = [transport];
    server = await startServer([]);
  });
  after(async () => { if (server) await server.stop(); });

  it('drained clients are closed and try to reconnect', async () => {
    const socket = await connected(client(server.url, 'good-drained',
                                          { reconnection: true, reconnectionDelay: 100, reconnectionDelayMax: 200 }));
    const control = await Control.open(server.url);
    const down = nextEvent(socket, 'disconnect');
    const retrying = nextEvent(socket.io, 'reconnect_attempt');
    await control.call('drain', { duration_ms: 200, reconnect_delay_max_ms: 100 });
    const [reason] = await down;
    assert.equal(reason, 'transport close');
    assert.equal(socket.active, true, 'socket.io-client gave up on a drained server');
    await retrying;
    socket.disconnect();
  });
});

// Socket.IO's socket.id is random (20 characters of base64): unique across
// processes and instances, which hosts rely on when they key state by it.
describe('socket.id', () => {
  it('differs between two server processes', async () => {
    suiteTransports = ['polling'];
    const servers = [await startServer([]), await startServer([])];
    try {
      const ids = [];
      for (const server of servers) {
        const socket = await connected(client(server.url, 'good-same-user'));
        ids.push(socket.id);
        socket.disconnect();
      }
      assert.notEqual(ids[0], ids[1], `both processes named their first socket ${ids[0]}`);
    } finally {
      for (const server of servers) await server.stop();
    }
  });
});

describe('Engine.IO polling', () => {
  let server;
  let control;
  before(async () => {
    suiteTransports = ['polling'];
    server = await startServer([]);
    control = await Control.open(server.url);
  });
  after(async () => {
    control?.socket.disconnect();
    if (server) await server.stop();
  });

  it('default transports: polling first, then the upgrade to WebSocket', { todo: UPGRADE_TODO }, async () => {
    const socket = client(server.url, 'good-poller', { transports: undefined });
    const upgraded = nextEvent(socket.io.engine, 'upgrade');
    await connected(socket);
    await socket.timeout(WAIT_MS).emitWithAck('subscribe', `room:sync-${nonce()}`);
    await upgraded;
    assert.equal(socket.io.engine.transport.name, 'websocket');
    const data = { n: nonce('upgraded') };
    const got = nextEvent(socket, 'room:all', { accept: (d) => d?.n === data.n });
    await control.publish('room:all', data);
    assert.deepEqual((await got)[0], data);
    assert.deepEqual(await socket.timeout(WAIT_MS).emitWithAck('echo', 1, 2), 1);
    socket.disconnect();
  });

  it('polling only: publications arrive in order, acks between them', async () => {
    const socket = await ready(server.url, 'good-poller', { transports: ['polling'] });
    assert.equal(socket.io.engine.transport.name, 'polling');
    const data = [];
    for (let i = 0; i < 5; ++i) data.push({ n: nonce('poll'), i });
    const got = new Promise((resolveAll) => {
      const seen = [];
      socket.on('room:all', (d) => {
        if (data.some((x) => x.n === d?.n)) seen.push(d);
        if (seen.length === data.length) resolveAll(seen);
      });
    });
    for (const d of data) {
      await control.publish('room:all', d);
      assert.equal(await socket.timeout(WAIT_MS).emitWithAck('echo', d.i), d.i);
    }
    assert.deepEqual(await within(WAIT_MS, 'five publications over polling', got), data);
    socket.disconnect();
  });
});

describe('malformed Engine.IO and Socket.IO input', () => {
  const maxMessageBytes = 16384;
  let server;
  // What the server answered to each, printed at the end for whoever reads the log.
  const outcomes = [];
  before(async () => {
    server = await startServer(['--max-message-bytes', String(maxMessageBytes), '--connect-timeout-ms', '1000',
                                '--ping-interval-ms', '5000']);
  });
  after(async () => {
    console.log(`malformed input, what the server answered:\n  ${outcomes.join('\n  ')}`);
    if (server) {
      const exit = await server.stop();
      assert.equal(exit.code, 0, `the server exited with ${JSON.stringify(exit)}:\n${server.output}`);
    }
  });

  // A clear error or a close, and the server still up.
  async function rejects(name, send, { connect = true, mustClose = false, closeCode } = {}) {
    const raw = new RawEngineIo(server.port);
    if (connect) await raw.connect(); else await raw.handshake();
    const outcome = await raw.errorOrClose(() => send(raw));
    if (mustClose && !outcome.closed) {
      outcome.closed = await within(WAIT_MS, `${name}: the close after ${outcome.error}`, raw.closed);
    }
    outcomes.push(`${name}: ${JSON.stringify(outcome).slice(0, 300)}`);
    if (closeCode !== undefined) assert.equal(outcome.closed?.code, closeCode, `${name}: ${JSON.stringify(outcome)}`);
    assert.ok(server.alive, `${name}: the server died:\n${server.output}`);
    await raw.close();
    return outcome;
  }

  it('an event before CONNECT: refused', async () => {
    const outcome = await rejects('event before connect', (raw) => raw.send('42["echo",1]'),
                                  { connect: false, mustClose: true });
    if (outcome.error) assert.match(outcome.error, /^44/);
  });

  it('a refused CONNECT over a raw socket: 44 with the reason', async () => {
    const raw = new RawEngineIo(server.port);
    await raw.handshake();
    raw.send('40{"token":"nope"}');
    const reply = await raw.next((m) => m.startsWith('44'), 'CONNECT_ERROR');
    assert.deepEqual(JSON.parse(reply.slice(2)), { message: 'invalid token' });
    await within(WAIT_MS, 'the close after a refused CONNECT', raw.closed);
  });

  it('no CONNECT within connect_timeout: closed', async () => {
    const raw = new RawEngineIo(server.port);
    await raw.handshake();
    const closed = await within(5000, 'the close of a session that never connected', raw.closed);
    assert.ok(closed.code >= 1000, JSON.stringify(closed));
  });

  for (const [name, packet] of [
    ['an unknown Engine.IO packet type', '9hello'],
    ['an unknown Socket.IO packet type', '49["echo"]'],
    ['bad JSON in an EVENT', '42['],
    ['an EVENT that is not an array', '42{"echo":1}'],
    ['an EVENT whose name is not a string', '42[17,"x"]'],
    ['an ACK id that is not a number', '42abc["echo"]'],
    ['an empty message', ''],
  ]) {
    it(`${name} (${JSON.stringify(packet)}): a clear error or a close`, async () => {
      await rejects(name, (raw) => raw.send(packet));
    });
  }

  it('a payload over max_message_bytes: closed with 1009', async () => {
    const outcome = await rejects('huge payload',
                                  (raw) => raw.send(`42["echo","${'x'.repeat(maxMessageBytes * 4)}"]`),
                                  { mustClose: true });
    assert.equal(outcome.closed.code, 1009, JSON.stringify(outcome));
  });

  it('the open packet announces max_message_bytes as maxPayload', async () => {
    const raw = new RawEngineIo(server.port);
    assert.equal((await raw.handshake()).maxPayload, maxMessageBytes);
    await raw.close();
  });

  it('a binary placeholder (451-[...]): binary attachments are refused', async () => {
    await rejects('binary placeholder', (raw) => raw.send('451-["echo",{"_placeholder":true,"num":0}]'));
  });

  it('a binary WebSocket frame: refused', async () => {
    await rejects('binary frame', (raw) => raw.send(Buffer.from([0x04, 0x01, 0x02, 0x03])));
  });

  it('CONNECT to an unknown namespace: refused', async () => {
    // Before the main namespace.
    await rejects('unknown namespace first', (raw) => raw.send('40/admin,{"token":"good-raw"}'), { connect: false });
    // After it: the main namespace's connection is not harmed when it stays open.
    const raw = new RawEngineIo(server.port);
    await raw.connect();
    const outcome = await raw.errorOrClose(() => raw.send('40/admin,'));
    if (outcome.error) {
      raw.send('421["echo","still"]');
      const ack = await raw.after((m) => m.startsWith('431') || m.startsWith('44'), 'the echo after /admin');
      assert.equal(ack, '431["still"]');
    }
    await raw.close();
  });

  it('a ping flood: bounded, and the server stays up', async () => {
    const raw = new RawEngineIo(server.port);
    await raw.connect();
    for (let i = 0; i < 5000; ++i) raw.send(i % 2 ? '2' : '3');
    // Either it was cut off, or it still answers.
    raw.send('421["echo","after the flood"]');
    const outcome = await within(WAIT_MS, 'the echo or the close after a ping flood', Promise.race([
      raw.after((m) => m.startsWith('431'), 'the echo ack').then((ack) => ({ ack })),
      raw.closed.then((c) => ({ closed: c })),
    ]));
    if (outcome.ack) assert.equal(outcome.ack, '431["after the flood"]');
    else assert.ok(outcome.closed.code >= 1000, JSON.stringify(outcome));
    assert.ok(server.alive);
    await raw.close();
  });

  it('an event flood: rate limited, then closed with 4029', async () => {
    const raw = new RawEngineIo(server.port);
    await raw.connect();
    for (let i = 0; i < 2000; ++i) raw.send(`42["echo",${i}]`);
    const closed = await within(WAIT_MS, 'the close of a flooding client', raw.closed);
    assert.equal(closed.code, 4029, JSON.stringify(closed));
    assert.ok(raw.messages.some((m) => m.includes('rate_limited')), 'no rate_limited error before the close');
  });

  it('a second CONNECT to "/": refused, the session goes on', async () => {
    const raw = new RawEngineIo(server.port);
    await raw.connect();
    const outcome = await raw.errorOrClose(() => raw.send('40{"token":"good-other"}'));
    assert.ok(outcome.error || outcome.closed, JSON.stringify(outcome));
    await raw.close();
  });

  it('the client closes at the Engine.IO level ("1"): the server closes', async () => {
    const raw = new RawEngineIo(server.port);
    await raw.connect();
    raw.send('1');
    await within(WAIT_MS, 'the close after an Engine.IO close packet', raw.closed);
  });

  it('a client that stops answering pings is closed', async () => {
    const quiet = await startServer(['--ping-interval-ms', '200', '--idle-timeout-ms', '800']);
    try {
      const raw = new RawEngineIo(quiet.port, { answerPings: false });
      await raw.connect();
      await raw.next((m) => m === '2', 'a server ping');
      const closed = await within(5000, 'the close of a client that never pongs', raw.closed);
      assert.ok(closed.code !== 1000 || closed.reason.length > 0, JSON.stringify(closed));
    } finally {
      await quiet.stop();
    }
  });

  for (const [name, query] of [
    ['EIO=3', 'EIO=3&transport=websocket'],
    ['no EIO', 'transport=websocket'],
  ]) {
    it(`an unsupported Engine.IO version (${name}): no session`, async () => {
      const raw = new RawEngineIo(server.port, { query });
      const outcome = await within(WAIT_MS, `${name}: a refusal`, Promise.race([
        raw.opened.then(() => raw.next((m) => m.startsWith('0') || m.startsWith('4'), 'the first message'))
          .then((first) => ({ first }), (e) => ({ refused: e.message })),
        raw.closed.then((c) => ({ closed: c })),
      ]));
      assert.ok(!outcome.first?.startsWith('0'), `${name} was opened: ${JSON.stringify(outcome)}`);
      await raw.close();
    });
  }

  it('after all of it: the server is up and a fresh socket.io-client connects', async () => {
    assert.ok(server.alive, server.output);
    const socket = await connected(client(server.url, 'good-fresh'));
    assert.equal(await socket.timeout(WAIT_MS).emitWithAck('echo', 'fine'), 'fine');
    const stats = await socket.timeout(WAIT_MS).emitWithAck('stats');
    assert.ok(stats.errors_sent > 0, `errors were not counted: ${JSON.stringify(stats)}`);
    socket.disconnect();
  });
});

// Engine.IO polling without socket.io-client: what a misbehaving HTTP client
// sends. Answers are HTTP statuses or Engine.IO packets; the server stays up.
describe('malformed Engine.IO polling requests', () => {
  let server;
  let base;
  before(async () => {
    suiteTransports = ['polling'];
    server = await startServer(['--ping-interval-ms', '500', '--idle-timeout-ms', '3000']);
    base = `${server.url}/socket.io/`;
  });
  after(async () => {
    if (server) {
      const exit = await server.stop();
      assert.equal(exit.code, 0, `the server exited with ${JSON.stringify(exit)}:\n${server.output}`);
    }
  });

  const request = (query, init = {}) =>
    within(WAIT_MS, `${init.method ?? 'GET'} ?${query}`, fetch(`${base}?${query}`, init).then(async (r) =>
      ({ status: r.status, body: await r.text() })));

  // A polling session: its sid, CONNECTed to "/" when asked.
  async function open({ connect = true } = {}) {
    const opened = await request('EIO=4&transport=polling');
    assert.equal(opened.status, 200, opened.body);
    assert.match(opened.body, /^0\{/);
    const { sid } = JSON.parse(opened.body.slice(1));
    if (connect) {
      const posted = await request(`EIO=4&transport=polling&sid=${sid}`,
                                   { method: 'POST', body: '40{"token":"good-raw-poll"}' });
      assert.equal(posted.status, 200, posted.body);
      const reply = await request(`EIO=4&transport=polling&sid=${sid}`);
      assert.match(reply.body, /^40\{"sid":/, reply.body);
    }
    return sid;
  }

  // GETs until one answers with something other than heartbeats (at most
  // 20, each answered within a ping interval); the body.
  async function nextPackets(sid) {
    for (let polls = 0; polls < 20; ++polls) {
      const got = await request(`EIO=4&transport=polling&sid=${sid}`);
      if (got.status !== 200) return got;
      const packets = got.body.split('\x1e').filter((p) => p !== '2');
      if (packets.length > 0) return { status: 200, body: packets.join('\x1e') };
      await request(`EIO=4&transport=polling&sid=${sid}`, { method: 'POST', body: '3' });
    }
    throw new Error(`20 polls of ${sid} brought nothing but heartbeats`);
  }

  it('a batch of packets in one POST (\\x1e-separated) is answered in order', async () => {
    const sid = await open();
    const posted = await request(`EIO=4&transport=polling&sid=${sid}`,
                                 { method: 'POST', body: '421["echo",1]\x1e422["echo",2]' });
    assert.equal(posted.status, 200);
    let body = '';
    for (let answers = 0; !body.includes('432[2]'); ++answers) {
      assert.ok(answers < 5, `no ack for the second packet: ${body}`);
      const got = await nextPackets(sid);
      assert.equal(got.status, 200, got.body);
      body += `${got.body}\x1e`;
    }
    assert.ok(body.indexOf('431[1]') >= 0 && body.indexOf('431[1]') < body.indexOf('432[2]'), body);
  });

  for (const [name, query] of [
    ['an unknown sid', 'EIO=4&transport=polling&sid=nosuchsession'],
    ['EIO=3', 'EIO=3&transport=polling'],
    ['an unknown transport', 'EIO=4&transport=carrier-pigeon'],
  ]) {
    it(`${name}: 400`, async () => {
      const got = await request(query);
      assert.equal(got.status, 400, got.body);
    });
  }

  for (const [name, body] of [
    ['bad JSON', '42['],
    ['an unknown packet type', '9'],
    ['a binary placeholder', '451-["echo",{"_placeholder":true,"num":0}]'],
    ['a base64 binary packet', 'bAQID'],
  ]) {
    it(`${name} in a POST: an error or the end of the session`, async () => {
      const sid = await open();
      const posted = await request(`EIO=4&transport=polling&sid=${sid}`, { method: 'POST', body });
      if (posted.status === 200) {
        const got = await nextPackets(sid);
        const ended = got.status === 400 || /(^|\x1e)(1|41)(\x1e|$)/.test(got.body);
        const error = /(^|\x1e)(44|42\["livecast:error")/.test(got.body);
        assert.ok(ended || error, `after ${JSON.stringify(body)}: ${got.status} ${got.body}`);
      } else {
        assert.equal(posted.status, 400, posted.body);
      }
      assert.ok(server.alive);
    });
  }

  it('a POST over the body limit: 413, the server stays up', async () => {
    const sid = await open();
    const posted = await request(`EIO=4&transport=polling&sid=${sid}`,
                                 { method: 'POST', body: `42["echo","${'x'.repeat(200 * 1024)}"]` });
    assert.ok([413, 400].includes(posted.status), `${posted.status} ${posted.body}`);
    assert.ok(server.alive);
  });

  it('a kicked session: the DISCONNECT alone, then the close in the next answer', { todo: FAREWELL_TODO }, async () => {
    const sid = await open();
    const control = await Control.open(server.url);
    await control.kick('raw-poll');  // no GET waits now
    const first = await request(`EIO=4&transport=polling&sid=${sid}`);
    assert.equal(first.body, '41', 'the farewell must come alone: the client handles it a microtask later');
    const second = await request(`EIO=4&transport=polling&sid=${sid}`);
    assert.ok(second.body === '1' || second.status === 400, `${second.status} ${second.body}`);
    control.socket.disconnect();
  });

  it('two GETs at once on one session: one is refused, and both are answered', async () => {
    const sid = await open();
    const [first, second] = await Promise.all([request(`EIO=4&transport=polling&sid=${sid}`),
                                               request(`EIO=4&transport=polling&sid=${sid}`)]);
    assert.ok([first.status, second.status].includes(400), `${first.status} ${second.status}`);
  });

  it('after all of it: a fresh socket.io-client connects over polling', async () => {
    const socket = await connected(client(server.url, 'good-fresh'));
    assert.equal(await socket.timeout(WAIT_MS).emitWithAck('echo', 'fine'), 'fine');
    socket.disconnect();
  });
});
