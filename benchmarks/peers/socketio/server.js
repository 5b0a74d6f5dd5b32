// The Socket.IO 4.8 peer of benchmarks/run: rooms, websocket transport only.
// A client joins a topic's room by emitting "subscribe" with the topic name
// and an acknowledgement (answered once it is in, as livecast answers its
// Socket.IO clients); publications are io.to(topic).emit("pub", payload), Socket.IO's own
// broadcast, which encodes the packet once per emit.
//
//   node socketio/server.js --port 9000 --topics 1 --rate 20 --payload 100
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

httpServer.listen(options.port, '127.0.0.1', () => {
  if (options.printPort) process.stdout.write(`${httpServer.address().port}\n`);
  process.stderr.write(`socket.io peer on port ${httpServer.address().port}, ${options.topics} topics x ${options.rate}/s, ${options.payload} B payloads\n`);
  const topics = topicNames(options.topics);
  startGrid(options, (data) => {
    for (const topic of topics) io.to(topic).emit('pub', data);
  });
});

const stop = () => { io.close(); process.exit(0); };
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
