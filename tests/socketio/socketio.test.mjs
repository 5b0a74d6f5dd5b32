// End-to-end: the real socket.io-client 4.x from npm against a real livecast
// binary (livecast-socketio-test-server) that speaks livecast.v1 and
// socket.io on one port. What the server does is described at the top of
// socketio_test_server.cpp; in short: token "good-<user>", joins to
// "room:all", "room:user:<user>" and "metrics" (arriving as
// "metrics-update"), and client events echo, boom, publish, burst, kick,
// drain, stats and sessions (what SessionHooks saw of a user).
// Malformed input, from raw clients, is in malformed.test.mjs.
//
//   LIVECAST_SOCKETIO_SERVER  the test server binary (ctest passes it)
//
// Exits 77 (ctest: skipped) when socket.io-client or ws is missing (`npm ci`
// here). Every wait is on an event with a deadline; the only fixed waits
// check that something does NOT happen (no reconnection after a kick).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  WAIT_MS, freePort, nextEvent, nonce, requireServerBinary, skipAll, startServer, within,
} from './harness.mjs';

requireServerBinary();
const {
  Control, client, connected, disconnectAll, plainClient, ready, recordEvents,
  useTransports,
} = await import('./clients.mjs');
let RawEngineIo;
try {
  ({ RawEngineIo } = await import('./raw_engineio.mjs'));  // needs the `ws` package, for the open packet
} catch {
  skipAll('ws is not installed (run `npm ci` in tests/socketio)');
}

after(disconnectAll);

// The same suite over each transport alone: socket.io-client's Socket
// behaves the same on both, and so must livecast.
for (const transport of ['websocket', 'polling']) describe(`socket.io-client over ${transport} only`, () => {
  let server;
  let control;

  before(async () => {
    useTransports([transport]);
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

  it('a refused token: connect_error alone, no "disconnect" on a socket that never connected', async () => {
    for (let attempt = 0; attempt < 5; ++attempt) {
      const socket = client(server.url, 'bad-token');
      const events = recordEvents(socket);
      const disconnects = [];
      socket.on('disconnect', (reason) => disconnects.push(reason));
      await nextEvent(socket, 'connect_error');
      assert.deepEqual(disconnects, [], `attempt ${attempt}: disconnect before connect_error`);
      assert.deepEqual(events, []);
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
    const socket = plainClient(url, { transports: [transport], auth: { token } });
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

  it('an emit with binary data and an ack: the ack carries the error, the connection stays', async () => {
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

  it('SessionHooks::on_close tells a client\'s disconnect() from a server close', async () => {
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

  it('server-initiated disconnect: "io server disconnect", and no reconnection', async () => {
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
    useTransports([transport]);
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

// Socket.IO 4.6+'s connection state recovery (--recovery:
// SocketIoSettings::connection_state_recovery): the CONNECT answer carries a
// private id, each event its offset as the last argument, and a client
// whose connection dropped comes back with both: `socket.recovered` true and
// what was published meanwhile, once, in order. Across instances (Redis) in
// redis.test.mjs; where history does not cover the gap, tests/core.
for (const transport of ['websocket', 'polling']) describe(`connection state recovery (${transport})`, () => {
  let server;
  let control;
  before(async () => {
    useTransports([transport]);
    server = await startServer(['--recovery']);
    control = await Control.open(server.url);
  });
  after(async () => {
    control?.socket.disconnect();
    if (server) await server.stop();
  });

  it('a dropped connection: socket.recovered, and the publications made meanwhile arrive once, in order', async () => {
    const user = `recovered-${transport}`;
    const room = `room:user:${user}`;
    // A long first delay: the publications below are made while it is away.
    const socket = await ready(server.url, `good-${user}`,
                               { reconnection: true, reconnectionDelay: 1500, randomizationFactor: 0 });
    assert.equal(socket.recovered, false, 'a first connection recovers nothing');
    const received = [];
    const offsets = [];
    socket.on(room, (d, offset) => { received.push(d?.n); offsets.push(offset); });
    const first = { n: nonce('first') };
    const gotFirst = nextEvent(socket, room, { accept: (d) => d?.n === first.n });
    await control.publish(room, first);
    await gotFirst;
    assert.equal(typeof offsets[0], 'string', 'an event\'s last argument is its offset');
    const id = socket.id;

    const down = nextEvent(socket, 'disconnect');
    socket.io.engine.close();  // the connection drops; socket.io-client will reconnect
    await down;
    const missed = [{ n: nonce('m1') }, { n: nonce('m2') }, { n: nonce('m3') }];
    for (const m of missed) await control.publish(room, m);
    const back = nextEvent(socket, 'connect', { ms: 15000 });
    const last = nextEvent(socket, room, { accept: (d) => d?.n === missed[2].n });
    await back;
    assert.equal(socket.recovered, true, 'socket.recovered after a reconnect within history');
    assert.equal(socket.id, id, 'a recovered socket keeps its id, as in Socket.IO');
    await last;
    assert.deepEqual(received, [first.n, ...missed.map((m) => m.n)]);

    // And live again, once.
    const live = { n: nonce('live') };
    const gotLive = nextEvent(socket, room, { accept: (d) => d?.n === live.n });
    await control.publish(room, live);
    await gotLive;
    assert.deepEqual(received, [first.n, ...missed.map((m) => m.n), live.n]);
    socket.disconnect();
  });

  it('a client that disconnected on purpose and connects again starts over: recovered false', async () => {
    const socket = await ready(server.url, `good-leaver-${transport}`);
    const data = { n: nonce('before') };
    const got = nextEvent(socket, 'room:all', { accept: (d) => d?.n === data.n });
    await control.publish('room:all', data);
    await got;
    socket.disconnect();
    const back = nextEvent(socket, 'connect');
    socket.connect();
    await back;
    assert.equal(socket.recovered, false);
    socket.disconnect();
  });
});

// Broker::drain closes every session with 4012 "reconnect after": a Socket.IO
// client must take it as a transport close and come back, never as the
// "io server disconnect" that stops it for good.
for (const transport of ['websocket', 'polling']) describe(`drain (${transport})`, () => {
  let server;
  before(async () => {
    useTransports([transport]);
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

// TLS ends on the HTTP transport, which hands WebSocket upgrades over with
// their TLS stream: https:// polling and wss:// on the one port, with a
// self-signed certificate for 127.0.0.1 made here by the openssl command.
describe('TLS (https:// and wss://)', () => {
  let dir;
  let ca;
  let server;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'livecast-socketio-tls-'));
    const made = spawnSync('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
      '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
      '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { encoding: 'utf8', timeout: WAIT_MS });
    assert.equal(made.status, 0, `openssl could not make a certificate: ${made.error ?? made.stderr}`);
    ca = readFileSync(join(dir, 'cert.pem'));
    server = await startServer(['--tls-cert', join(dir, 'cert.pem'), '--tls-key', join(dir, 'key.pem')]);
    assert.ok(server.url.startsWith('https://'));
  });
  after(async () => {
    if (server) await server.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  for (const transport of ['websocket', 'polling']) {
    it(`${transport}: connect, a broadcast, an ack`, async () => {
      useTransports([transport]);
      const socket = await ready(server.url, 'good-secure', { ca });
      assert.equal(socket.io.engine.transport.name, transport);
      const control = new Control(await ready(server.url, 'good-control', { ca }));
      const data = { n: nonce('tls') };
      const got = nextEvent(socket, 'room:all', { accept: (d) => d?.n === data.n });
      await control.publish('room:all', data);
      assert.deepEqual((await got)[0], data);
      assert.equal(await socket.timeout(WAIT_MS).emitWithAck('echo', 'secure'), 'secure');
      control.socket.disconnect();
      socket.disconnect();
    });
  }

  it('a client that does not trust the certificate cannot connect', async () => {
    useTransports(['websocket']);
    const [err] = await nextEvent(client(server.url, 'good-secure'), 'connect_error');
    assert.match(err.message, /websocket error|self.signed|certificate/i);
  });
});

// Socket.IO's socket.id is random (20 characters of base64): unique across
// processes and instances, which hosts rely on when they key state by it.
describe('socket.id', () => {
  it('differs between two server processes', async () => {
    useTransports(['polling']);
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

// The upgrade's WebSocket arrives on whichever shard's listener the kernel
// picks, and must reach the shard of the polling session it takes over:
// with four shards most of these eight cross over (by the socket's descriptor).
describe('Engine.IO upgrade with several shards', () => {
  let server;
  let control;
  before(async () => {
    useTransports(['polling']);
    server = await startServer(['--threads', '4']);
    control = await Control.open(server.url);
  });
  after(async () => {
    control?.socket.disconnect();
    if (server) await server.stop();
  });

  it('every client upgrades to WebSocket and receives a broadcast there', async () => {
    const sockets = [];
    try {
      for (let i = 0; i < 8; i++) {
        const socket = client(server.url, `good-shard${i}`, { transports: undefined });
        sockets.push({ socket, upgraded: nextEvent(socket.io.engine, 'upgrade') });
      }
      for (const { socket, upgraded } of sockets) {
        await connected(socket);
        await upgraded;
        assert.equal(socket.io.engine.transport.name, 'websocket');
      }
      const data = { n: nonce('sharded') };
      const got = sockets.map(({ socket }) => nextEvent(socket, 'room:all', { accept: (d) => d?.n === data.n }));
      await control.publish('room:all', data);
      for (const g of got) assert.deepEqual((await g)[0], data);
    } finally {
      for (const { socket } of sockets) socket.disconnect();
    }
  });
});

describe('Engine.IO polling', () => {
  let server;
  let control;
  before(async () => {
    useTransports(['polling']);
    server = await startServer([]);
    control = await Control.open(server.url);
  });
  after(async () => {
    control?.socket.disconnect();
    if (server) await server.stop();
  });

  it('default transports: polling first, then the upgrade to WebSocket', async () => {
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

  it('after the upgrade: a kick is "io server disconnect"', async () => {
    const user = `upgraded-${nonce()}`;
    const socket = client(server.url, `good-${user}`, { transports: undefined });
    const upgraded = nextEvent(socket.io.engine, 'upgrade');
    await connected(socket);
    await upgraded;
    const gone = nextEvent(socket, 'disconnect');
    await control.kick(user);
    assert.equal((await gone)[0], 'io server disconnect');
    assert.equal(socket.active, false);
    assert.deepEqual(await control.sessionsUntil(user, (r) => r.closed === 1),
                     { opened: 1, closed: 1, last_close: 1000 }, 'one session throughout the upgrade');
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
