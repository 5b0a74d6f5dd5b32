// End-to-end: the real livecast-dashboard binary, its embedded page and the
// livecast JS client in Debian's headless Chromium, driven by playwright-core
// (which never downloads a browser of its own).
//
//   LIVECAST_DASHBOARD_BIN   the binary (ctest passes it)
//   LIVECAST_ARTIFACTS_DIR   where the screenshots go (default: <build>/artifacts, which
//                            ctest passes as LIVECAST_DEFAULT_ARTIFACTS_DIR; else ../../build/artifacts)
//   LIVECAST_CHROMIUM        the browser (default /usr/bin/chromium)
//
// Exits 77, which ctest reports as skipped, when the browser or
// playwright-core (`npm ci` here) is missing: never a silent pass.
// Every wait is on a condition with a timeout; nothing sleeps to synchronise.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { browserTestPrerequisites, freePort, launchChromium, startDashboard, stopDashboard } from './harness.mjs';

const artifacts = resolve(process.env.LIVECAST_ARTIFACTS_DIR || process.env.LIVECAST_DEFAULT_ARTIFACTS_DIR ||
                          fileURLToPath(new URL('../../build/artifacts', import.meta.url)));

const { chromium, chromiumPath } = await browserTestPrerequisites('LIVECAST_DASHBOARD_BIN', 'livecast-dashboard');

// The page's record of delivered publications for one topic must show, per
// epoch: a snapshot first (after a subscribe reply with recovered:false),
// then consecutive offsets, and no (epoch, offset) twice.
function checkOffsets(name, deliveries, subscribed) {
  assert.ok(deliveries.length > 0, `${name}: nothing delivered`);
  const seen = new Set();
  for (const { epoch, offset } of deliveries) {
    const key = `${epoch}/${offset}`;
    assert.ok(!seen.has(key), `${name}: offset ${offset} of epoch ${epoch} delivered twice`);
    seen.add(key);
  }
  const epochs = [];
  for (let i = 0; i < deliveries.length; i++) {
    const { epoch, offset } = deliveries[i];
    if (i === 0 || deliveries[i - 1].epoch !== epoch) {
      assert.ok(!epochs.includes(epoch), `${name}: epoch ${epoch} came back after another one`);
      epochs.push(epoch);
      const reply = subscribed.find((s) => s.epoch === epoch);
      assert.ok(reply, `${name}: publications of epoch ${epoch} without a subscribe reply for it`);
      assert.equal(reply.recovered, false, `${name}: a new epoch must start from a snapshot (recovered:false)`);
      continue;
    }
    assert.equal(offset, deliveries[i - 1].offset + 1,
                 `${name}: gap in epoch ${epoch}: ${deliveries[i - 1].offset} then ${offset}`);
  }
  return epochs;
}

const launchBrowser = () => launchChromium(chromium, chromiumPath);

async function closeAll(context, server, userDataDir) {
  await context?.close().catch(() => {});
  await stopDashboard(server);
  if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
}

describe('livecast-dashboard in headless Chromium', () => {
  let port;
  let server;
  let context;
  let userDataDir;
  const pageErrors = [];

  before(async () => {
    mkdirSync(artifacts, { recursive: true });
    port = await freePort();
    server = await startDashboard(port);
    ({ userDataDir, context } = await launchBrowser());
  });

  after(() => closeAll(context, server, userDataDir));

  async function open(token) {
    const page = await context.newPage();
    page.on('pageerror', (error) => pageErrors.push(`${token}: ${error.message}`));
    page.on('console', (message) => {
      if (message.type() === 'error') {
        pageErrors.push(`${token}: console: ${message.text()} (at ${message.location()?.url ?? 'unknown'})`);
      }
    });
    await page.goto(`http://127.0.0.1:${port}/?token=${token}`, { waitUntil: 'load', timeout: 15000 });
    return page;
  }

  const connected = (page) =>
    page.waitForFunction(() => document.getElementById('connection')?.dataset.state === 'connected',
                         null, { timeout: 10000 });

  let admin;

  it('loads for an admin, connects over the WebSocket and reports the first KPI', async () => {
    admin = await open('admin-acme');
    await connected(admin);
    assert.match(await admin.textContent('#connection'), /Connected\s*via websocket/);
    const config = await admin.evaluate(() => window.__livecast.config);
    assert.deepEqual(config, { url: `http://127.0.0.1:${port}` });  // one URL: WebSocket, SSE and polling
    const firstKpiMs = await (await admin.waitForFunction(() => window.__livecast.firstKpiMs,
                                                          null, { timeout: 10000 })).jsonValue();
    console.log(`load-to-first-KPI: ${firstKpiMs.toFixed(1)} ms from navigation start to the first KPI value in the DOM`);
  });

  it('changes the KPI tile values within a second', async () => {
    const tiles = () => [...document.querySelectorAll('.tile')].map((t) => t.textContent).join('|');
    await admin.waitForFunction(() => !document.querySelector('#tile-revenue .value').textContent.includes('—'),
                                null, { timeout: 5000 });
    const before = await admin.evaluate(tiles);
    await admin.waitForFunction((previous) =>
      [...document.querySelectorAll('.tile')].map((t) => t.textContent).join('|') !== previous,
    before, { timeout: 1000 });
  });

  it('draws both charts on their canvases', async () => {
    // Two points make a line; KPIs come every 500 ms.
    await admin.waitForFunction(() => {
      const count = (id, [r, g, b]) => {
        const canvas = document.querySelector(`#${id} canvas`);
        if (!canvas || canvas.width === 0) return 0;
        const { data } = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height);
        let hits = 0;
        for (let i = 0; i < data.length; i += 4) {
          if (data[i + 3] > 200 && Math.abs(data[i] - r) < 40 && Math.abs(data[i + 1] - g) < 40 &&
              Math.abs(data[i + 2] - b) < 40) hits++;
        }
        return hits;
      };
      // The series' stroke colours (src/main.js): blue for tps, green for revenue.
      return count('chart-tps', [79, 156, 249]) > 50 && count('chart-revenue', [52, 211, 153]) > 50;
    }, null, { timeout: 10000, polling: 250 });
  });

  it('shows the transaction feed to an admin, virtualised', async () => {
    await admin.waitForFunction(() => document.querySelectorAll('#feed-rows .feed-row').length > 0,
                                null, { timeout: 5000 });
    assert.equal(await admin.isVisible('#feed'), true);
    assert.equal(await admin.isHidden('#feed-blocked'), true);
    // Once more transactions arrived than fit, the DOM still holds only a screenful.
    await admin.waitForFunction(() => (window.__livecast.offsets['org:acme:transactions']?.length ?? 0) > 100,
                                null, { timeout: 10000 });
    const { rows, fits } = await admin.evaluate(() => ({
      rows: document.querySelectorAll('#feed-rows .feed-row').length,
      fits: Math.ceil(document.getElementById('feed-viewport').clientHeight / 30),
    }));
    assert.ok(rows <= fits + 8, `${rows} rows in the DOM for a viewport of ${fits}`);

    // Scrolled down, the rows in the DOM are the ones at that position.
    await admin.evaluate(() => { document.getElementById('feed-viewport').scrollTop = 40 * 30; });
    await admin.waitForFunction(() => {
      const viewport = document.getElementById('feed-viewport');
      const top = viewport.getBoundingClientRect().top;
      return [...document.querySelectorAll('#feed-rows .feed-row')].some((row) => {
        const box = row.getBoundingClientRect();
        return box.top >= top - 1 && box.top < top + 30 && row.textContent.includes('tx_');
      });
    }, null, { timeout: 5000 });
    await admin.evaluate(() => { document.getElementById('feed-viewport').scrollTop = 0; });

    // Publications are applied once per animation frame, not one by one.
    const { frames, messages } = await admin.evaluate(() => ({
      frames: window.__livecast.frames,
      messages: Object.values(window.__livecast.offsets).reduce((sum, list) => sum + list.length, 0),
    }));
    console.log(`${messages} publications applied in ${frames} animation frames`);
    assert.ok(frames < messages, `${frames} renders for ${messages} publications`);
  });

  it('keeps the feed from a viewer, who still gets KPIs', async () => {
    // Switch roles the way a person would: the token links in the top bar.
    const viewer = await open('analyst-globex');
    await connected(viewer);
    await Promise.all([viewer.waitForURL(/token=viewer-acme/, { timeout: 10000 }),
                       viewer.click('a[data-token="viewer-acme"]')]);
    await connected(viewer);
    assert.equal(await viewer.textContent('#principal'), 'viewer@acme');
    await viewer.waitForFunction(() => {
      const blocked = document.getElementById('feed-blocked');
      return blocked && !blocked.hidden && !document.getElementById('feed') &&
        document.querySelectorAll('.feed-row').length === 0;
    }, null, { timeout: 10000 });
    assert.match(await viewer.textContent('#feed-error-code'), /forbidden/);
    await viewer.waitForFunction(() => window.__livecast.firstKpiMs !== null, null, { timeout: 10000 });
    await viewer.screenshot({ path: join(artifacts, 'dashboard-viewer.png') });
    await viewer.close();
  });

  it('reconnects by itself after a server restart on the same port, with no gap and no duplicate', async () => {
    const mark = await admin.evaluate(() => window.__livecast.states.length);
    await stopDashboard(server, 'SIGKILL');
    await admin.waitForFunction((from) => window.__livecast.states.slice(from).some((s) => s.state === 'reconnecting') &&
      document.getElementById('connection').dataset.state !== 'connected', mark, { timeout: 10000 });
    server = await startDashboard(port);
    // The back-off tops out at 15 s; a retry is due well before that.
    await admin.waitForFunction((from) => {
      const states = window.__livecast.states.slice(from).map((s) => s.state);
      return states.includes('reconnecting') && states[states.length - 1] === 'connected';
    }, mark, { timeout: 20000 });
    await connected(admin);

    // Wait for a few publications of the new epoch on each checked topic.
    const topics = ['org:acme:kpi.tps', 'org:acme:kpi.revenue', 'org:acme:transactions'];
    await admin.waitForFunction((names) => names.every((name) => {
      const list = window.__livecast.offsets[name];
      const epochs = new Set(list.map((d) => d.epoch));
      return epochs.size >= 2 && list.filter((d) => d.epoch === list[list.length - 1].epoch).length >= 4;
    }), topics, { timeout: 10000 });

    const { offsets, subscribed, states } = await admin.evaluate(() => window.__livecast);
    for (const name of topics) {
      const epochs = checkOffsets(name, offsets[name], subscribed[name]);
      assert.equal(epochs.length, 2, `${name}: expected one epoch per server run, got ${epochs.join(', ')}`);
      const last = subscribed[name][subscribed[name].length - 1];
      assert.equal(last.epoch, epochs[1]);
      assert.equal(last.recovered, false);
      assert.equal(last.reset, true, `${name}: the client should report the dropped position`);
    }
    const sequence = states.slice(mark).map((s) => s.state);
    console.log(`indicator after the restart: ${[...new Set(sequence)].join(' -> ')}`);
    assert.equal(sequence[sequence.length - 1], 'connected');
    assert.equal(states[states.length - 1].transport, 'websocket');
  });

  it('renders a screenshot and had no page errors', async () => {
    // Let the restarted server's KPIs refill the tiles before the picture.
    await admin.waitForFunction(() => document.querySelectorAll('#feed-rows .feed-row').length > 5,
                                null, { timeout: 5000 });
    const path = join(artifacts, 'dashboard.png');
    await admin.screenshot({ path, fullPage: true });
    console.log(`screenshot: ${path} (viewer: ${join(artifacts, 'dashboard-viewer.png')})`);
    // A killed server makes the browser log the failed reconnect attempts; those are expected. The
    // page has the SSE and polling fallbacks on the same port, and a reconnect that cannot open the
    // WebSocket tries them too; the admin's metrics view polls /admin/metrics.json. Their refused connections
    // while the server is down are expected as well, nothing else is.
    const unexpected = pageErrors.filter((e) => !/WebSocket connection to .* failed/.test(e) &&
      !/ERR_CONNECTION_REFUSED \(at http:\/\/127\.0\.0\.1:\d+\/(sse|poll|admin\/metrics\.json)\?/.test(e));
    assert.deepEqual(unexpected, []);
  });
});

// WebSockets refused by the server (a proxy that blocks upgrades): the page
// falls back to SSE on the same port; with SSE refused as well after a
// restart, to long-polling; it keeps updating all along.
describe('livecast-dashboard without WebSockets, in headless Chromium', () => {
  let port;
  let server;
  let context;
  let userDataDir;
  const pageErrors = [];

  before(async () => {
    port = await freePort();
    server = await startDashboard(port, { extra: ['--refuse-websocket'] });
    ({ userDataDir, context } = await launchBrowser());
  });

  after(() => closeAll(context, server, userDataDir));

  const tilesChange = async (page) => {
    await page.waitForFunction(() => !document.querySelector('#tile-tps .value').textContent.includes('—'),
                               null, { timeout: 10000 });
    const before = await page.evaluate(() => [...document.querySelectorAll('.tile')].map((t) => t.textContent).join('|'));
    await page.waitForFunction((previous) =>
      [...document.querySelectorAll('.tile')].map((t) => t.textContent).join('|') !== previous,
    before, { timeout: 5000 });
  };

  let page;

  it('falls back to SSE and keeps updating', async () => {
    page = await context.newPage();
    page.on('pageerror', (error) => pageErrors.push(error.message));
    await page.goto(`http://127.0.0.1:${port}/?token=admin-acme`, { waitUntil: 'load', timeout: 15000 });
    await page.waitForFunction(() => document.getElementById('connection')?.dataset.state === 'connected' &&
      window.__livecast.states.at(-1)?.transport === 'sse', null, { timeout: 15000 });
    const config = await page.evaluate(() => window.__livecast.config);
    assert.deepEqual(config, { url: `http://127.0.0.1:${port}` });
    assert.match(await page.textContent('#connection'), /via sse/);
    await tilesChange(page);
    const firstKpiMs = await page.evaluate(() => window.__livecast.firstKpiMs);
    console.log(`load-to-first-KPI over SSE (after the refused WebSocket): ${firstKpiMs.toFixed(1)} ms`);
  });

  it('falls back to long-polling when SSE is refused too, and keeps updating', async () => {
    const mark = await page.evaluate(() => window.__livecast.states.length);
    await stopDashboard(server, 'SIGKILL');
    server = await startDashboard(port, { extra: ['--refuse-websocket', '--refuse-sse'] });
    // SSE had worked, so the client retries it with back-off for its
    // transportRetryMs (10 s) before it gives up on it: up to about 25 s.
    await page.waitForFunction((from) => {
      const states = window.__livecast.states.slice(from);
      return states.length > 0 && states.at(-1).state === 'connected' && states.at(-1).transport === 'poll';
    }, mark, { timeout: 45000 });
    assert.match(await page.textContent('#connection'), /via poll/);
    await tilesChange(page);

    // Long-polling delivers every publication of a topic in order, once.
    const name = 'org:acme:kpi.tps';
    const from = await page.evaluate((n) => window.__livecast.offsets[n].length, name);
    await page.waitForFunction(([n, start]) => window.__livecast.offsets[n].length >= start + 4, [name, from],
                               { timeout: 10000 });
    const { offsets } = await page.evaluate(() => window.__livecast);
    const recent = offsets[name].slice(from);
    for (let i = 1; i < recent.length; i++) {
      if (recent[i].epoch !== recent[i - 1].epoch) continue;
      assert.equal(recent[i].offset, recent[i - 1].offset + 1, `${name}: gap over long-polling`);
    }
    await page.screenshot({ path: join(artifacts, 'dashboard-long-polling.png') });
    assert.deepEqual(pageErrors, []);
  });
});

// /?client=socketio: the same page on socket.io-client (4.8.x, bundled into
// dist/dashboard-socketio.js), against the binary's Socket.IO protocol at
// /socket.io/: the server joins the socket to its org's rooms on connect and
// the page only listens, plus one `subscribe` emit for the feed.
describe('the dashboard on socket.io-client (/?client=socketio), in headless Chromium', () => {
  let port;
  let server;
  let context;
  let userDataDir;
  const pageErrors = [];

  before(async () => {
    port = await freePort();
    server = await startDashboard(port);
    ({ userDataDir, context } = await launchBrowser());
  });

  after(() => closeAll(context, server, userDataDir));

  async function open(token) {
    const page = await context.newPage();
    page.on('pageerror', (error) => pageErrors.push(`${token}: ${error.message}`));
    page.on('console', (message) => {
      if (message.type() === 'error') {
        pageErrors.push(`${token}: console: ${message.text()} (at ${message.location()?.url ?? 'unknown'})`);
      }
    });
    await page.goto(`http://127.0.0.1:${port}/?client=socketio&token=${token}`, { waitUntil: 'load', timeout: 15000 });
    return page;
  }

  const connected = (page) =>
    page.waitForFunction(() => document.getElementById('connection')?.dataset.state === 'connected',
                         null, { timeout: 10000 });
  const tiles = () => [...document.querySelectorAll('.tile')].map((t) => t.textContent).join('|');
  const tilesChange = async (page) => {
    await page.waitForFunction(() => !document.querySelector('#tile-tps .value').textContent.includes('—'),
                               null, { timeout: 10000 });
    const before = await page.evaluate(tiles);
    await page.waitForFunction((previous) =>
      [...document.querySelectorAll('.tile')].map((t) => t.textContent).join('|') !== previous,
    before, { timeout: 2000 });
  };

  let admin;

  it('connects over socket.io and its tiles, charts and feed update', async () => {
    admin = await open('admin-acme');
    await connected(admin);
    // The page takes socket.io-client's default transports: polling first,
    // then the upgrade to a WebSocket, which the indicator follows.
    await admin.waitForFunction(() => /via socket\.io \(websocket\)/.test(document.getElementById('connection').textContent),
                                null, { timeout: 10000 });
    assert.equal(await admin.textContent('#footer-transport'), 'socket.io over websocket');
    // Connected over polling, unless the upgrade was quicker than the CONNECT's answer.
    const shown = [...new Set(await admin.evaluate(() => window.__livecast.states.map((s) => s.transport)))];
    assert.ok(['polling,websocket', 'websocket'].includes(shown.join()), `transports shown: ${shown}`);
    console.log(`socket.io page transports: ${shown.join(' -> ')}`);
    const scripts = await admin.evaluate(() => [...document.scripts].map((s) => new URL(s.src).pathname));
    assert.deepEqual(scripts, ['/dist/dashboard-socketio.js']);
    const { protocol, socket } = await admin.evaluate(() => window.__livecast);
    assert.equal(protocol, 'socket.io');
    assert.ok(socket.id, 'the page records its socket id');
    await tilesChange(admin);
    const firstKpiMs = await admin.evaluate(() => window.__livecast.firstKpiMs);
    console.log(`socket.io page: load-to-first-KPI ${firstKpiMs.toFixed(1)} ms`);
    // The feed: the server joined an admin to it; the page's subscribe emit is told so.
    await admin.waitForFunction(() => document.querySelectorAll('#feed-rows .feed-row').length > 0 &&
      document.getElementById('feed-status').dataset.state === 'live', null, { timeout: 5000 });
    const { socket: after } = await admin.evaluate(() => window.__livecast);
    assert.equal(after.acks[0]?.error?.code, 'already_subscribed', JSON.stringify(after.acks));
    // The error rate is the Aggregator's 5 s window: it may not have closed yet.
    const names = ['kpi.tps', 'kpi.revenue', 'kpi.active_users', 'kpi.error_rate', 'transactions'];
    await admin.waitForFunction((list) => list.every((n) => window.__livecast.events[`org:acme:${n}`] > 0), names,
                                { timeout: 10000 })
      .catch(async () => assert.fail(`missing events: ${JSON.stringify(await admin.evaluate(() => window.__livecast.events))}`));
    // uPlot draws from the same events: the tps series' blue on its canvas.
    await admin.waitForFunction(() => {
      const canvas = document.querySelector('#chart-tps canvas');
      if (!canvas || canvas.width === 0) return false;
      const { data } = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height);
      let hits = 0;
      for (let i = 0; i < data.length; i += 4) {
        if (data[i + 3] > 200 && Math.abs(data[i] - 79) < 40 && Math.abs(data[i + 1] - 156) < 40 &&
            Math.abs(data[i + 2] - 249) < 40) hits++;
      }
      return hits > 50;
    }, null, { timeout: 10000, polling: 250 });
  });

  it('keeps the feed from a viewer, and its role links stay on socket.io', async () => {
    const viewer = await open('analyst-globex');
    await connected(viewer);
    await Promise.all([viewer.waitForURL(/client=socketio&token=viewer-acme/, { timeout: 10000 }),
                       viewer.click('a[data-token="viewer-acme"]')]);
    await connected(viewer);
    assert.equal(await viewer.textContent('#principal'), 'viewer@acme');
    await viewer.waitForFunction(() => {
      const blocked = document.getElementById('feed-blocked');
      return blocked && !blocked.hidden && !document.getElementById('feed');
    }, null, { timeout: 10000 });
    assert.match(await viewer.textContent('#feed-error-code'), /forbidden/);
    await tilesChange(viewer);
    assert.equal(await viewer.evaluate(() => window.__livecast.events['org:acme:transactions'] ?? 0), 0);
    await viewer.screenshot({ path: join(artifacts, 'dashboard-socketio-viewer.png') });
    await viewer.close();
  });

  it('reconnects by itself after a server restart and updates again', async () => {
    const mark = await admin.evaluate(() => window.__livecast.states.length);
    await stopDashboard(server, 'SIGKILL');
    await admin.waitForFunction((from) => window.__livecast.states.slice(from).some((s) => s.state === 'reconnecting') &&
      document.getElementById('connection').dataset.state !== 'connected', mark, { timeout: 10000 });
    server = await startDashboard(port);
    // socket.io-client's back-off: 1 s, doubling, at most 5 s (randomised).
    await admin.waitForFunction((from) => {
      const states = window.__livecast.states.slice(from).map((s) => s.state);
      return states.includes('reconnecting') && states[states.length - 1] === 'connected';
    }, mark, { timeout: 20000 });
    await connected(admin);
    await tilesChange(admin);
    const sequence = await admin.evaluate((from) => window.__livecast.states.slice(from).map((s) => s.state), mark);
    console.log(`socket.io page after the restart: ${[...new Set(sequence)].join(' -> ')}`);
    await admin.screenshot({ path: join(artifacts, 'dashboard-socketio.png'), fullPage: true });
    // Only the reconnect attempts to the killed server may have failed
    // (WebSocket or Engine.IO polling), and the admin panel's polls of
    // /admin/metrics.json meanwhile.
    const unexpected = pageErrors.filter((e) => !/WebSocket connection to .* failed/.test(e) &&
      !/ERR_CONNECTION_REFUSED \(at http:\/\/127\.0\.0\.1:\d+\/(socket\.io\/|admin\/metrics\.json)\?/.test(e));
    assert.deepEqual(unexpected, []);
  });
});
