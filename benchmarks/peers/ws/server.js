// The ws 8 peer of benchmarks/run: the usual Map<topic, Set<socket>>
// broadcast. Clients send the livecast.v1 subscribe op
// ({"op":"subscribe","id":1,"topic":"t0"}) and get {"id":1,"ok":{"topic":"t0"}};
// a publication is stringified once and sent to each subscriber, shaped like
// livecast's: {"topic":"t0","offset":N,"data":{"ts":...,"seq":...,"pad":"..."}}.
//
//   node ws/server.js --port 9000 --topics 1 --rate 20 --payload 100
'use strict';

const { WebSocketServer } = require('ws');
const { parseFlags, startGrid, topicNames } = require('../grid.js');

const options = parseFlags(process.argv, 'ws/server.js');
const subscribers = new Map(); // topic -> Set<WebSocket>
const wss = new WebSocketServer({ host: '127.0.0.1', port: options.port });

wss.on('connection', (socket) => {
  const mine = new Set();
  socket.on('message', (raw) => {
    let request;
    try { request = JSON.parse(raw); } catch { return; }
    if (!request || request.op !== 'subscribe' || typeof request.topic !== 'string') return;
    let set = subscribers.get(request.topic);
    if (!set) subscribers.set(request.topic, (set = new Set()));
    set.add(socket);
    mine.add(request.topic);
    socket.send(JSON.stringify({ id: request.id, ok: { topic: request.topic } }));
  });
  socket.on('close', () => {
    for (const topic of mine) subscribers.get(topic)?.delete(socket);
  });
});

wss.on('listening', () => {
  if (options.printPort) process.stdout.write(`${wss.address().port}\n`);
  process.stderr.write(`ws peer on port ${wss.address().port}, ${options.topics} topics x ${options.rate}/s, ${options.payload} B payloads\n`);
  const topics = topicNames(options.topics);
  let offset = 0;
  startGrid(options, (data) => {
    ++offset;
    for (const topic of topics) {
      const set = subscribers.get(topic);
      if (!set) continue;
      const message = JSON.stringify({ topic, offset, data });
      for (const socket of set) socket.send(message);
    }
  });
});

const stop = () => { wss.close(); process.exit(0); };
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
