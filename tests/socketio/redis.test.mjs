// Two livecast-socketio-test-server instances sharing one redis-server (the
// RedisBackend), with the real socket.io-client: what is published on one
// instance reaches Socket.IO clients of the other, and a client whose
// instance was killed and restarted on the same port comes back by itself
// and receives what the other instance publishes. (socket.io-client cannot
// switch to another URL when its server goes away, so "the other instance"
// is reached through the restart.) With connection state recovery, a client
// of a stopped instance comes back to a new process with `socket.recovered`
// true: its session's record and the topics' history are in Redis.
//
//   LIVECAST_SOCKETIO_SERVER  the test server binary (ctest passes it)
//   LIVECAST_REDIS_SERVER     redis-server (default /usr/bin/redis-server; none: the test fails)
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  WAIT_MS, freePort, nextEvent, nonce, requireServerBinary, startRedis, startServer,
} from './harness.mjs';

requireServerBinary();
const { client, connected, disconnectAll, useTransports } = await import('./clients.mjs');

// A subscribe acknowledged after the joins made at connect: with Redis, a
// subscribe is answered once its channel's SUBSCRIBE is confirmed, and the
// joins' SUBSCRIBEs went first on the same connection, so live publications
// from the other instance reach the joined rooms from then on.
async function barrier(socket) {
  const ack = await socket.timeout(WAIT_MS).emitWithAck('subscribe', `room:sync-${nonce()}`);
  assert.ok(ack && !ack.error, `the barrier subscribe failed: ${JSON.stringify(ack)}`);
}

async function publish(control, topic, data) {
  const answer = await control.timeout(WAIT_MS).emitWithAck('publish', { topic, data });
  assert.ok(answer?.ok, `publish on ${topic}: ${JSON.stringify(answer)}`);
}

after(disconnectAll);

for (const transport of ['websocket', 'polling']) describe(`two instances on one redis-server (${transport})`, () => {
  let redis;
  let portA;
  let a;
  let b;
  let controlB;

  before(async () => {
    useTransports([transport]);
    redis = await startRedis();
    portA = await freePort();
    const redisArgs = ['--redis', `127.0.0.1:${redis.port}`, '--recovery'];
    a = await startServer([...redisArgs, '--port', String(portA)]);
    b = await startServer(redisArgs);
    assert.equal(a.ready.backend, 'redis');
    controlB = await connected(client(b.url, 'good-control'));
  });
  after(async () => {
    controlB?.disconnect();
    for (const server of [a, b]) if (server?.alive) await server.stop();
    await redis?.stop();
  });

  it('a publication made on B reaches a client of A (joined room and subscribed room)', async () => {
    const socket = await connected(client(a.url, 'good-alice'));
    assert.notEqual(socket.id, controlB.id, 'two instances named a socket alike');
    await barrier(socket);
    const data = { n: nonce('across') };
    const got = nextEvent(socket, 'room:all', { accept: (d) => d?.n === data.n });
    await publish(controlB, 'room:all', data);
    assert.deepEqual((await got)[0], data);

    const room = `room:redis-${nonce()}`;
    const ack = await socket.timeout(WAIT_MS).emitWithAck('subscribe', room);
    assert.equal(ack?.topic, room, JSON.stringify(ack));
    const extra = { n: nonce('subscribed') };
    const gotExtra = nextEvent(socket, room, { accept: (d) => d?.n === extra.n });
    await publish(controlB, room, extra);
    assert.deepEqual((await gotExtra)[0], extra);

    const metrics = { n: nonce('metrics') };
    const update = nextEvent(socket, 'metrics-update', { accept: (d) => d?.n === metrics.n });
    await publish(controlB, 'metrics', metrics);
    assert.deepEqual((await update)[0], metrics);
    socket.disconnect();
  });

  it('A killed and restarted on its port: the client reconnects and receives what B publishes', async () => {
    const socket = await connected(client(a.url, 'good-phoenix',
                                          { reconnection: true, reconnectionDelay: 100, reconnectionDelayMax: 500 }));
    await barrier(socket);
    const down = nextEvent(socket, 'disconnect');
    await a.stop('SIGKILL');
    // A killed server's pending poll fails: "transport error".
    assert.ok(['transport close', 'transport error'].includes((await down)[0]), `disconnect: ${(await down)[0]}`);

    // Published on B while A is down: the client's own room's latest value,
    // which its join delivers when it comes back.
    const missed = { n: nonce('while-down') };
    await publish(controlB, 'room:user:phoenix', missed);

    const back = nextEvent(socket, 'connect', { ms: 15000 });
    const latest = nextEvent(socket, 'room:user:phoenix', { accept: (d) => d?.n === missed.n, ms: 20000 });
    a = await startServer(['--redis', `127.0.0.1:${redis.port}`, '--recovery', '--port', String(portA)]);
    await back;
    assert.deepEqual((await latest)[0], missed, 'the latest value of a joined room after the reconnect');

    await barrier(socket);
    const data = { n: nonce('after-restart') };
    const got = nextEvent(socket, 'room:all', { accept: (d) => d?.n === data.n });
    await publish(controlB, 'room:all', data);
    assert.deepEqual((await got)[0], data);
    socket.disconnect();
  });

  // Socket.IO 4.6+'s connection state recovery: the CONNECT reply carries a
  // private id (pid), every event an offset as its last argument, and the
  // client's next CONNECT both; `socket.recovered` then says that nothing
  // was missed. Backed by livecast's topic history in Redis, it works
  // across instances, which Socket.IO's own Redis adapter cannot do.
  it('A restarted: socket.recovered, and the publications made on B meanwhile arrive once, in order', async () => {
    const user = `recover-${transport}`;
    const room = `room:user:${user}`;
    const socket = await connected(client(a.url, `good-${user}`,
                                          { reconnection: true, reconnectionDelay: 100, reconnectionDelayMax: 500 }));
    await barrier(socket);
    const received = [];
    socket.on(room, (d) => received.push(d?.n));
    const first = { n: nonce('first') };
    const gotFirst = nextEvent(socket, room, { accept: (d) => d?.n === first.n });
    await publish(controlB, room, first);
    await gotFirst;
    const down = nextEvent(socket, 'disconnect');
    // A stopped process leaves its sessions' records in Redis (a killed one
    // leaves none, and its clients start over: the test above).
    await a.stop('SIGTERM');
    await down;
    const missed = [{ n: nonce('m1') }, { n: nonce('m2') }, { n: nonce('m3') }];
    for (const m of missed) await publish(controlB, room, m);
    const back = nextEvent(socket, 'connect', { ms: 15000 });
    const last = nextEvent(socket, room, { accept: (d) => d?.n === missed[2].n, ms: 20000 });
    a = await startServer(['--redis', `127.0.0.1:${redis.port}`, '--recovery', '--port', String(portA)]);
    await back;
    assert.equal(socket.recovered, true, 'socket.recovered after a reconnect within history');
    await last;
    assert.deepEqual(received, [first.n, ...missed.map((m) => m.n)]);
    socket.disconnect();
  });
});
