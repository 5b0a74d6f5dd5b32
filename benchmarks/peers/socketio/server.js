// The Socket.IO 4.8 peer of benchmarks/run: rooms, websocket transport only.
// A client joins a topic's room by emitting "subscribe" with the topic name
// and an acknowledgement (answered once it is in, as livecast answers its
// Socket.IO clients); publications are io.to(topic).emit("pub", payload), Socket.IO's own
// broadcast, which encodes the packet once per emit.
//
// --redis HOST:PORT (scenario D): several instances share one Redis through
// @socket.io/redis-adapter (with the `redis` client), so that an emit to a
// room on one instance reaches that room's sockets on every instance: the
// adapter publishes each broadcast to Redis and every other instance
// delivers it to its own sockets. The port is printed once both Redis
// connections are up.
//
//   node socketio/server.js --port 9000 --topics 1 --rate 20 --payload 100 [--redis 127.0.0.1:6379]
'use strict';

const http = require('node:http');
const { Server } = require('socket.io');
const { parseFlags, startGrid, topicNames } = require('../grid.js');

const options = parseFlags(process.argv, 'socketio/server.js');
const httpServer = http.createServer();
const io = new Server(httpServer, {
  transports: ['websocket'],
  serveClient: false,
  // The benchmark's clients answer pings; keep the defaults otherwise.
});

io.on('connection', (socket) => {
  socket.on('subscribe', (topic, ack) => {
    if (typeof topic !== 'string' || topic === '') return;
    socket.join(topic);
    if (typeof ack === 'function') ack({ topic });
  });
});

const redisClients = [];

async function useRedis(where) {
  const { createClient } = require('redis');
  const { createAdapter } = require('@socket.io/redis-adapter');
  const pub = createClient({ url: where.includes('://') ? where : `redis://${where}` });
  const sub = pub.duplicate();
  for (const client of [pub, sub]) {
    client.on('error', (e) => process.stderr.write(`socket.io peer: redis: ${e.message}\n`));
    redisClients.push(client);
  }
  await Promise.all([pub.connect(), sub.connect()]);
  io.adapter(createAdapter(pub, sub));
}

async function main() {
  if (options.redis) await useRedis(options.redis);
  httpServer.listen(options.port, '127.0.0.1', () => {
    if (options.printPort) process.stdout.write(`${httpServer.address().port}\n`);
    process.stderr.write(`socket.io peer on port ${httpServer.address().port}, ${options.topics} topics x ${options.rate}/s, ` +
      `${options.payload} B payloads${options.redis ? `, redis adapter on ${options.redis}` : ''}\n`);
    const topics = topicNames(options.topics);
    startGrid(options, (data) => {
      for (const topic of topics) io.to(topic).emit('pub', data);
    });
  });
}

main().catch((e) => {
  process.stderr.write(`socket.io peer: ${e.stack || e}\n`);
  process.exit(1);
});

const stop = () => {
  io.close();
  for (const client of redisClients) client.disconnect().catch(() => {});
  process.exit(0);
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
