// End-to-end in Debian's headless Chromium: socket.io-client's own browser
// bundle (node_modules/socket.io-client/dist/socket.io.min.js) on a page this
// test serves from a tiny Node HTTP server, against livecast-socketio-test-server
// on another port (a cross-origin client, as a front end behind its own host).
// playwright-core drives /usr/bin/chromium and never downloads a browser.
//
//   LIVECAST_SOCKETIO_SERVER  the test server binary (ctest passes it)
//   LIVECAST_CHROMIUM         the browser (default /usr/bin/chromium)
//
// Exits 77 (ctest: skipped) when the browser, playwright-core or
// socket.io-client is missing. Every wait is on a condition with a timeout.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WAIT_MS, importClient, nonce, requireServerBinary, skipAll, startServer } from './harness.mjs';

requireServerBinary();
const chromiumPath = process.env.LIVECAST_CHROMIUM || '/usr/bin/chromium';
if (!existsSync(chromiumPath)) skipAll(`no browser at ${chromiumPath} (apt-get install chromium)`);
let chromium;
try {
  ({ chromium } = await import('playwright-core'));
} catch {
  skipAll('playwright-core is not installed (run `npm ci` in tests/socketio)');
}
const { io } = await importClient();
const bundlePath = fileURLToPath(new URL('./node_modules/socket.io-client/dist/socket.io.min.js', import.meta.url));
if (!existsSync(bundlePath)) skipAll(`no ${bundlePath} (run \`npm ci\` in tests/socketio)`);

// The page: the bundle, and a record of what the socket saw on window.__sio.
const page = `<!doctype html>
<html><head><meta charset="utf-8"><title>socket.io-client against livecast</title>
<script src="/socket.io.min.js"></script></head>
<body><script>
  window.__sio = { connected: false, events: [], errors: [], disconnects: [] };
  window.__start = (url, options) => {
    const socket = io(url, options);
    window.__socket = socket;
    // The transport the engine opened with (the upgrade may come before the CONNECT's answer).
    socket.io.on('open', () => { window.__sio.opened = socket.io.engine.transport.name; });
    socket.on('connect', () => { window.__sio.connected = true; window.__sio.id = socket.id;
                                 window.__sio.transport = socket.io.engine.transport.name; });
    socket.on('connect_error', (err) => window.__sio.errors.push(err.message));
    socket.on('disconnect', (reason) => { window.__sio.connected = false; window.__sio.disconnects.push(reason); });
    socket.onAny((name, ...args) => window.__sio.events.push({ name, args }));
  };
</script></body></html>`;

function servePage() {
  const bundle = readFileSync(bundlePath);
  const http = createServer((request, response) => {
    if (request.url === '/socket.io.min.js') {
      response.writeHead(200, { 'content-type': 'text/javascript' });
      response.end(bundle);
    } else if (request.url === '/') {
      response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      response.end(page);
    } else {
      response.writeHead(404);
      response.end();
    }
  });
  return new Promise((resolveListen) => http.listen(0, '127.0.0.1', () => resolveListen(http)));
}

describe('socket.io-client\'s browser bundle in headless Chromium', () => {
  let server;
  let http;
  let userDataDir;
  let context;
  let control;
  const pageErrors = [];

  before(async () => {
    server = await startServer([]);
    http = await servePage();
    userDataDir = mkdtempSync(join(tmpdir(), 'livecast-socketio-chromium-'));
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: chromiumPath,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
             '--disable-component-update', '--no-first-run', '--disable-sync', '--disable-dev-shm-usage'],
      timeout: 60000,
    });
    control = io(server.url, { forceNew: true, transports: ['websocket'], auth: { token: 'good-control' },
                               reconnection: false });
    await new Promise((resolveConnect, reject) => {
      control.once('connect', resolveConnect);
      control.once('connect_error', reject);
    });
  });
  after(async () => {
    control?.disconnect();
    await context?.close().catch(() => {});
    if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
    http?.close();
    if (server) await server.stop();
  });

  async function openPage() {
    const tab = await context.newPage();
    tab.on('pageerror', (error) => pageErrors.push(error.message));
    await tab.goto(`http://127.0.0.1:${http.address().port}/`, { waitUntil: 'load', timeout: WAIT_MS });
    return tab;
  }

  // A publication the page must show as an event. Published once (never
  // until one arrives, which would hide lost ones), after a subscribe
  // acknowledged in the page: a barrier behind the joins made at connect.
  async function publishAndSee(tab, topic, event, data) {
    await tab.evaluate(async (room) => {
      const ack = await window.__socket.timeout(10000).emitWithAck('subscribe', room);
      if (!ack || ack.error) throw new Error(`subscribe: ${JSON.stringify(ack)}`);
    }, `room:sync-${nonce()}`);
    const answer = await control.timeout(WAIT_MS).emitWithAck('publish', { topic, data });
    assert.ok(answer?.ok, JSON.stringify(answer));
    const seen = await tab.waitForFunction(([name, n]) =>
      window.__sio.events.find((e) => e.name === name && e.args[0]?.n === n)?.args, [event, data.n],
    { timeout: WAIT_MS });
    return seen.jsonValue();
  }

  it('connects over WebSocket with auth {token} and receives room broadcasts', async () => {
    const tab = await openPage();
    await tab.evaluate(([url]) => window.__start(url, { transports: ['websocket'], auth: { token: 'good-browser' } }),
                       [server.url]);
    await tab.waitForFunction(() => window.__sio.connected, null, { timeout: WAIT_MS });
    const state = await tab.evaluate(() => window.__sio);
    assert.equal(typeof state.id, 'string');
    assert.equal(state.transport, 'websocket');
    const data = { n: nonce('browser'), text: 'héllo ✓', list: [1, 2, 3] };
    assert.deepEqual(await publishAndSee(tab, 'room:all', 'room:all', data), [data]);
    const metrics = { n: nonce('metrics'), cpu: 0.5 };
    assert.deepEqual(await publishAndSee(tab, 'metrics', 'metrics-update', metrics), [metrics]);
    // An emit with an acknowledgement from the page.
    const echoed = await tab.evaluate(() => window.__socket.timeout(10000).emitWithAck('echo', { from: 'page' }));
    assert.deepEqual(echoed, { from: 'page' });
    await tab.close();
    assert.deepEqual(pageErrors, []);
  });

  it('a refused token: connect_error with the reason in the page', async () => {
    const tab = await openPage();
    await tab.evaluate(([url]) => window.__start(url, { transports: ['websocket'], auth: { token: 'forged' } }),
                       [server.url]);
    await tab.waitForFunction(() => window.__sio.errors.length > 0, null, { timeout: WAIT_MS });
    assert.deepEqual(await tab.evaluate(() => window.__sio.errors), ['invalid token']);
    await tab.close();
  });

  it('polling only, cross-origin (CORS), in the page', async () => {
    const tab = await openPage();
    await tab.evaluate(([url]) => window.__start(url, { transports: ['polling'], auth: { token: 'good-browser-poll' } }),
                       [server.url]);
    await tab.waitForFunction(() => window.__sio.connected || window.__sio.errors.length > 0, null,
                              { timeout: WAIT_MS });
    const state = await tab.evaluate(() => window.__sio);
    assert.deepEqual(state.errors, []);
    assert.equal(state.transport, 'polling');
    const data = { n: nonce('browser-polling') };
    assert.deepEqual(await publishAndSee(tab, 'room:all', 'room:all', data), [data]);
    const echoed = await tab.evaluate(() => window.__socket.timeout(10000).emitWithAck('echo', 'polled'));
    assert.equal(echoed, 'polled');
    await tab.close();
    assert.deepEqual(pageErrors, []);
  });

  it('default transports (polling, then the upgrade) in the page', async () => {
    const tab = await openPage();
    await tab.evaluate(([url]) => window.__start(url, { auth: { token: 'good-browser-upgrade' } }), [server.url]);
    await tab.waitForFunction(() => window.__sio.connected, null, { timeout: WAIT_MS });
    assert.equal(await tab.evaluate(() => window.__sio.opened), 'polling');
    const data = { n: nonce('browser-poll') };
    assert.deepEqual(await publishAndSee(tab, 'room:all', 'room:all', data), [data]);
    await tab.waitForFunction(() => window.__socket.io.engine.transport.name === 'websocket', null,
                              { timeout: WAIT_MS });
    // After the upgrade, on the WebSocket: a publication and an ack.
    const upgraded = { n: nonce('browser-upgraded') };
    assert.deepEqual(await publishAndSee(tab, 'room:all', 'room:all', upgraded), [upgraded]);
    assert.equal(await tab.evaluate(() => window.__socket.timeout(10000).emitWithAck('echo', 'upgraded')), 'upgraded');
    assert.deepEqual(await tab.evaluate(() => window.__sio.disconnects), []);
    await tab.close();
    assert.deepEqual(pageErrors, []);
  });
});
