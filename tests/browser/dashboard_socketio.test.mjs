// The dashboard demo as a Socket.IO server: the real livecast-dashboard
// binary and the real socket.io-client (4.8.x, from npm) in Node, the way a
// Socket.IO front end uses its gateway (seed 000, 003): the demo token in
// `auth: {token}`, listeners for events, nothing else. The server puts the
// socket in its org's rooms on connect, so a client that only connects
// receives the KPIs as events named after their topics.
//
//   LIVECAST_DASHBOARD_BIN   the binary (ctest passes it)
//
// Exits 77, which ctest reports as skipped, when socket.io-client (`npm ci`
// here) is missing. Every wait is on an event or a condition with a timeout.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { binary, freePort, startDashboard, stopDashboard } from './harness.mjs';

const SKIP = 77;
if (!binary || !existsSync(binary)) {
  console.error(`LIVECAST_DASHBOARD_BIN must name the livecast-dashboard binary (got '${binary ?? ''}')`);
  process.exit(1);
}
let io;
try {
  ({ io } = await import('socket.io-client'));
} catch {
  console.log('SKIPPED: socket.io-client is not installed (run `npm ci` in tests/browser)');
  process.exit(SKIP);
}

const KPIS = ['kpi.revenue', 'kpi.tps', 'kpi.active_users', 'kpi.error_rate', 'kpi.viewers'];

// A socket.io-client socket that records every event it receives, with the
// time it came, and can be waited on.
function connectClient(port, token, options = {}) {
  const socket = io(`http://127.0.0.1:${port}`, {
    // The WebSocket alone, as seed 003 does; the default transports (polling) have a test of their own.
    transports: ['websocket'],
    auth: { token },
    reconnection: false,
    forceNew: true,
    ...options,
  });
  const events = [];  // [{event, data, at}]
  socket.onAny((event, data) => events.push({ event, data, at: performance.now() }));
  const waiters = new Set();
  socket.onAny(() => { for (const check of waiters) check(); });
  // Resolves once `predicate(events)` holds; rejects after `timeoutMs`, saying what came.
  const until = (predicate, timeoutMs, what) => new Promise((resolve, reject) => {
    const check = () => {
      if (!predicate(events)) return;
      waiters.delete(check);
      clearTimeout(timer);
      resolve(events);
    };
    const timer = setTimeout(() => {
      waiters.delete(check);
      const seen = {};
      for (const { event } of events) seen[event] = (seen[event] ?? 0) + 1;
      reject(new Error(`${token}: ${what} within ${timeoutMs} ms; received ${JSON.stringify(seen)}`));
    }, timeoutMs);
    waiters.add(check);
    check();
  });
  return { socket, events, until };
}

function connected({ socket }, timeoutMs = 5000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no connect within 5 s')), timeoutMs);
    socket.once('connect', () => { clearTimeout(timer); resolve(); });
    socket.once('connect_error', (error) => { clearTimeout(timer); reject(error); });
  });
}

const named = (events, name) => events.filter((e) => e.event === name);

describe('livecast-dashboard serves socket.io-client 4.8 at /socket.io/', () => {
  let port;
  let server;
  const clients = [];

  before(async () => {
    port = await freePort();
    server = await startDashboard(port);
  });

  after(async () => {
    for (const { socket } of clients) socket.close();
    await stopDashboard(server);
  });

  const open = (token, options) => {
    const client = connectClient(port, token, options);
    clients.push(client);
    return client;
  };

  it('announces Socket.IO on its one port', () => {
    assert.match(server.output(), /Socket\.IO on \/socket\.io\//);
  });

  it('sends a client that only connects its KPIs as events named after the topics, several per second', async () => {
    const analyst = open('analyst-acme');
    await connected(analyst);
    assert.equal(analyst.socket.connected, true);
    assert.equal(analyst.socket.io.engine.transport.name, 'websocket');
    const start = performance.now();
    // Active users, a gauge, goes out every 500 ms; the counted KPIs once a
    // second, as the Aggregator's windows close.
    await analyst.until((events) => named(events, 'org:acme:kpi.active_users').length >= 6, 5000,
                        'six org:acme:kpi.active_users events');
    const users = named(analyst.events, 'org:acme:kpi.active_users');
    // The first may be the latest value handed over at the join; the rest are live.
    const live = users.slice(1);
    const perSecond = ((live.length - 1) * 1000) / (live[live.length - 1].at - live[0].at);
    console.log(`org:acme:kpi.active_users: ${users.length} events in ${(performance.now() - start).toFixed(0)} ms ` +
                `(${perSecond.toFixed(1)} per second once live)`);
    assert.ok(perSecond >= 1.5, `only ${perSecond.toFixed(2)} org:acme:kpi.active_users events per second`);
    await analyst.until((events) => named(events, 'org:acme:kpi.tps').length >= 3, 8000, 'three org:acme:kpi.tps events');
    const tps = named(analyst.events, 'org:acme:kpi.tps');
    for (const { data } of [...tps, ...users]) {
      assert.equal(typeof data.value, 'number', JSON.stringify(data));
      assert.equal(typeof data.ts, 'number', JSON.stringify(data));
    }
    // Every KPI room, the feed (the role may read it) and nothing of another org.
    await analyst.until((events) => KPIS.every((k) => named(events, `org:acme:${k}`).length > 0), 3000, 'every KPI');
    await analyst.until((events) => named(events, 'org:acme:transactions').length >= 10, 3000, 'ten transactions');
    const other = analyst.events.filter(({ event }) => !event.startsWith('org:acme'));
    assert.deepEqual(other.map((e) => e.event), []);
  });

  it('keeps the transaction feed from a viewer, who still gets the KPIs, and refuses its subscribe', async () => {
    const viewer = open('viewer-acme');
    await connected(viewer);
    await viewer.until((events) => named(events, 'org:acme:kpi.tps').length >= 3, 8000, 'three org:acme:kpi.tps events');
    // Transactions come 20-50 a second: three KPI ticks with none is a refusal, not bad luck.
    assert.equal(named(viewer.events, 'org:acme:transactions').length, 0);
    const answer = await viewer.socket.timeout(5000).emitWithAck('subscribe', 'org:acme:transactions');
    assert.equal(answer?.error?.code, 'forbidden', JSON.stringify(answer));
  });

  it('answers a client subscribe in its acknowledgement: already joined, forbidden, or subscribed', async () => {
    const analyst = open('analyst-acme');
    await connected(analyst);
    const ask = (event, name) => analyst.socket.timeout(5000).emitWithAck(event, name);
    // The server joined it already.
    assert.equal((await ask('subscribe', 'org:acme:kpi.tps'))?.error?.code, 'already_subscribed');
    // Another org's room: the Authorizer says no.
    assert.equal((await ask('subscribe', 'org:globex:kpi.tps'))?.error?.code, 'forbidden');
    // Out of a room and back in.
    const left = await ask('unsubscribe', 'org:acme:kpi.revenue');
    assert.equal(left?.error, undefined, JSON.stringify(left));
    const joined = await ask('subscribe', 'org:acme:kpi.revenue');
    assert.equal(joined.topic, 'org:acme:kpi.revenue', JSON.stringify(joined));
    assert.equal(typeof joined.epoch, 'string');
    assert.equal(typeof joined.offset, 'number');
    assert.equal(joined.recovered, false);
    const from = analyst.events.length;
    await analyst.until((events) => named(events.slice(from), 'org:acme:kpi.revenue').length >= 2, 3000,
                        'org:acme:kpi.revenue after subscribing again');
  });

  it('refuses an unknown token with connect_error and its reason, and does not retry', async () => {
    const stranger = open('root-acme', { reconnection: true });
    const error = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no connect_error within 5 s')), 5000);
      stranger.socket.once('connect', () => { clearTimeout(timer); reject(new Error('a bad token connected')); });
      stranger.socket.once('connect_error', (e) => { clearTimeout(timer); resolve(e); });
    });
    assert.match(error.message, /unknown token/);
    // Refused by the server (CONNECT_ERROR), not a network failure: socket.io-client gives up.
    assert.equal(stranger.socket.active, false);
    assert.equal(stranger.socket.connected, false);
    assert.deepEqual(stranger.events, []);
  });

  // socket.io-client's defaults: Engine.IO polling first (served by the
  // HTTP transport at /socket.io/), then the upgrade to a WebSocket on the
  // same port, which the polling open packet offers.
  it('serves socket.io-client with its default transports: polling, then the upgrade to a WebSocket', async () => {
    const client = open('analyst-acme', { transports: undefined });
    const opened = new Promise((resolve) => client.socket.io.once('open', () => resolve(client.socket.io.engine)));
    await connected(client);
    const engine = await opened;
    const upgraded = engine.transport.name === 'websocket' ? Promise.resolve() : new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no upgrade to websocket within 5 s')), 5000);
      engine.once('upgrade', () => { clearTimeout(timer); resolve(); });
      engine.once('upgradeError', (error) => { clearTimeout(timer); reject(error); });
    });
    await upgraded;
    assert.equal(engine.transport.name, 'websocket');
    const at = client.events.length;
    // The room keeps delivering across the handover, each KPI once and in order.
    await client.until((events) => named(events.slice(at), 'org:acme:kpi.tps').length >= 3, 8000,
                       'three org:acme:kpi.tps events after the upgrade');
    const stamps = named(client.events, 'org:acme:kpi.tps').map((e) => e.data.ts);
    for (let i = 1; i < stamps.length; i++) assert.ok(stamps[i] > stamps[i - 1], `kpi.tps out of order: ${stamps}`);
    await client.until((events) => named(events, 'org:acme:transactions').length >= 10, 3000, 'ten transactions');
    console.log(`default transports: polling, upgraded to websocket; ${stamps.length} org:acme:kpi.tps events ` +
                'in order across the upgrade');
    // A refused token over polling too.
    const stranger = open('root-acme', { transports: undefined });
    await assert.rejects(connected(stranger), /unknown token/);
  });

  it('refuses a connect with no auth at all', async () => {
    const anonymous = open(undefined, { auth: undefined });
    const error = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no connect_error within 5 s')), 5000);
      anonymous.socket.once('connect', () => { clearTimeout(timer); reject(new Error('no token connected')); });
      anonymous.socket.once('connect_error', (e) => { clearTimeout(timer); resolve(e); });
    });
    assert.match(error.message, /unknown token/);
  });
});
