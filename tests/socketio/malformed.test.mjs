// Malformed Engine.IO and Socket.IO input against livecast-socketio-test-server,
// from raw clients (socket.io-client never sends it): a WebSocket of the `ws`
// package speaking Engine.IO by hand (raw_engineio.mjs), and plain HTTP
// requests for polling. Each case must get a clear error (a CONNECT_ERROR
// "44...", the event "livecast:error", an HTTP status) and/or a close, never
// a crash, a hang or unbounded memory; the server stays up and a fresh
// socket.io-client connects afterwards.
//
//   LIVECAST_SOCKETIO_SERVER  the test server binary (ctest passes it)
//
// Exits 77 (ctest: skipped) when socket.io-client or ws is missing (`npm ci`
// here). Every wait is on an event with a deadline.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { WAIT_MS, requireServerBinary, skipAll, startServer, within } from './harness.mjs';

requireServerBinary();
const { Control, client, connected, disconnectAll, useTransports } = await import('./clients.mjs');
let RawEngineIo;
try {
  ({ RawEngineIo } = await import('./raw_engineio.mjs'));  // needs the `ws` package
} catch {
  skipAll('ws is not installed (run `npm ci` in tests/socketio)');
}

after(disconnectAll);

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

  it('a binary WebSocket frame (an attachment livecast does not take): dropped, the connection goes on', async () => {
    const raw = new RawEngineIo(server.port);
    await raw.connect();
    raw.send(Buffer.from([0x04, 0x01, 0x02, 0x03]));
    raw.send('421["echo","after the binary frame"]');
    const ack = await raw.after((m) => m.startsWith('431') || m.startsWith('44'), 'the echo after a binary frame');
    assert.equal(ack, '431["after the binary frame"]');
    raw.close();
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
    useTransports(['polling']);
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

  it('a kicked session: the DISCONNECT alone, then the close in the next answer', async () => {
    const sid = await open();
    const control = await Control.open(server.url);
    await control.kick('raw-poll');  // no GET waits now
    const first = await request(`EIO=4&transport=polling&sid=${sid}`);
    assert.equal(first.body, '41', 'the farewell must come alone: the client handles it a microtask later');
    const second = await request(`EIO=4&transport=polling&sid=${sid}`);
    assert.ok(second.body === '1' || second.status === 400, `${second.status} ${second.body}`);
    control.socket.disconnect();
  });

  it('a refused CONNECT while no GET waits: the CONNECT_ERROR alone, then the close', async () => {
    const sid = await open({ connect: false });
    await request(`EIO=4&transport=polling&sid=${sid}`, { method: 'POST', body: '40{"token":"nope"}' });
    const first = await request(`EIO=4&transport=polling&sid=${sid}`);
    assert.equal(first.body, '44{"message":"invalid token"}');
    const second = await request(`EIO=4&transport=polling&sid=${sid}`);
    assert.ok(second.body === '1' || second.status === 400, `${second.status} ${second.body}`);
  });

  it('the upgrade: after 3probe the waiting GET is released at once, then 5 moves the session', async () => {
    const sid = await open();
    const waiting = request(`EIO=4&transport=polling&sid=${sid}`);  // as engine.io-client always has one
    const probe = new RawEngineIo(server.port, { query: `EIO=4&transport=websocket&sid=${encodeURIComponent(sid)}` });
    await within(WAIT_MS, 'the probe WebSocket to open', probe.opened);
    probe.send('2probe');
    await probe.next((m) => m === '3probe', '3probe');
    // engine.io-client pauses polling and sends 5 only once this GET returns.
    const released = await within(2000, 'the waiting GET after 3probe, before 5', waiting);
    assert.equal(released.status, 200);
    assert.match(released.body, /(^|\x1e)6($|\x1e)/, `a noop releases the GET: ${released.body}`);
    probe.send('5');
    probe.send('421["echo","over the upgrade"]');
    assert.equal(await probe.next((m) => m.startsWith('431'), 'the echo over the WebSocket'), '431["over the upgrade"]');
    await probe.close();
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

