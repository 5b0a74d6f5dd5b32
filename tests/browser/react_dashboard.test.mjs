// End-to-end: the real livecast-react-dashboard binary (examples/react-dashboard),
// its embedded page on @livecast/react in Debian's headless Chromium, driven
// by playwright-core (which never downloads a browser of its own).
//
//   LIVECAST_REACT_DASHBOARD_BIN   the binary (ctest passes it)
//   LIVECAST_CHROMIUM              the browser (default /usr/bin/chromium)
//
// Exits 77, which ctest reports as skipped, when the browser or
// playwright-core (`npm ci` here) is missing. Every wait is on a condition
// with a timeout; nothing sleeps to synchronise.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { browserTestPrerequisites, launchChromium, startProgram, stopDashboard } from './harness.mjs';

// Generous for a loaded 2-core machine; the simulation publishes KPIs every
// 500 ms and the aggregates every second.
const WAIT_MS = 20000;

const { program: binary, chromium, chromiumPath } = await browserTestPrerequisites('LIVECAST_REACT_DASHBOARD_BIN', 'livecast-react-dashboard');

const KPIS = ['revenue', 'tps', 'active_users', 'error_rate'];

// What a tab sent on its WebSockets: the URL of each, and the topic of each
// subscribe op. Registered before the page loads, so nothing is missed.
function recordWebSockets(page) {
  const sockets = [];
  const subscribes = [];
  page.on('websocket', (socket) => {
    sockets.push(socket.url());
    socket.on('framesent', ({ payload }) => {
      let message;
      try {
        message = JSON.parse(typeof payload === 'string' ? payload : payload.toString('utf8'));
      } catch {
        return;  // not one of the protocol's JSON ops
      }
      if (message.op === 'subscribe') subscribes.push(message.topic);
    });
  });
  return { sockets, subscribes };
}

// The text and data-offset of each KPI tile, by name.
const readTiles = (page) => page.evaluate((names) => Object.fromEntries(names.map((name) => {
  const tile = document.querySelector(`[data-kpi="${name}"]`);
  return [name, { text: tile?.querySelector('[data-field="value"]')?.textContent ?? '', offset: Number(tile?.dataset.offset) }];
})), KPIS);

describe('livecast-react-dashboard in headless Chromium', () => {
  let server;
  let baseUrl;
  let context;
  let userDataDir;

  before(async () => {
    server = await startProgram(binary, ['--port', '0', '--address', '127.0.0.1']);
    // The first line names the page: "livecast-react-dashboard <version>: http://127.0.0.1:<port>/?token=...".
    baseUrl = server.output().match(/(http:\/\/127\.0\.0\.1:\d+\/)/)?.[1];
    assert.ok(baseUrl, `no URL in the binary's output:\n${server.output()}`);
    ({ userDataDir, context } = await launchChromium(chromium, chromiumPath));
  });

  after(async () => {
    await context?.close().catch(() => {});
    await stopDashboard(server);
    if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
  });

  async function open(token) {
    const page = await context.newPage();
    const problems = [];
    page.on('pageerror', (error) => problems.push(`pageerror: ${error.message}`));
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(`console: ${message.text()}`);
    });
    const websockets = recordWebSockets(page);
    const started = Date.now();
    await page.goto(`${baseUrl}?token=${token}`, { waitUntil: 'load', timeout: 15000 });
    return { page, problems, websockets, started };
  }

  it('analyst: KPI tiles change, the feed fills, the aggregate charts get points, over one WebSocket', async (t) => {
    const { page, problems, websockets, started } = await open('analyst-acme');

    await page.waitForFunction(() => document.getElementById('connection')?.dataset.state === 'connected',
      null, { timeout: WAIT_MS });

    // Every tile shows a number...
    await page.waitForFunction((names) => names.every((name) =>
      /\d/.test(document.querySelector(`[data-kpi="${name}"] [data-field="value"]`)?.textContent ?? '')),
    KPIS, { timeout: WAIT_MS });
    const firstKpiMs = Date.now() - started;
    const first = await readTiles(page);
    // ...then a later publication's, different from the first one shown.
    await page.waitForFunction(({ names, seen }) => names.every((name) => {
      const tile = document.querySelector(`[data-kpi="${name}"]`);
      return Number(tile.dataset.offset) > seen[name].offset &&
             tile.querySelector('[data-field="value"]').textContent !== seen[name].text;
    }), { names: KPIS, seen: first }, { timeout: WAIT_MS });
    const later = await readTiles(page);
    for (const name of KPIS) assert.notEqual(later[name].text, first[name].text, `${name} did not change`);

    // The feed receives transactions, newest first, and keeps receiving.
    await page.waitForFunction(() => document.querySelectorAll('#feed tbody tr').length >= 10, null, { timeout: WAIT_MS });
    const newest = await page.evaluate(() => Number(document.querySelector('#feed tbody tr').dataset.offset));
    await page.waitForFunction((offset) => Number(document.querySelector('#feed tbody tr')?.dataset.offset) > offset,
      newest, { timeout: WAIT_MS });
    const rows = await page.evaluate(() => [...document.querySelectorAll('#feed tbody tr')].map((row) => ({
      offset: Number(row.dataset.offset), id: row.querySelector('.id').textContent })));
    for (let i = 1; i < rows.length; i++) assert.ok(rows[i - 1].offset > rows[i].offset, 'feed not newest first');
    assert.match(rows[0].id, /^tx_acme_\d+$/);

    // The charts of the Aggregator's 1 s windows get points, with a drawn line.
    await page.waitForFunction(() => ['chart-throughput', 'chart-latency'].every((id) =>
      Number(document.querySelector(`#${id} figure`)?.dataset.points) >= 3 &&
      [...document.querySelectorAll(`#${id} path.line`)].every((path) => (path.getAttribute('d') ?? '').includes('L'))),
    null, { timeout: WAIT_MS });
    const readout = await page.evaluate(() => Object.fromEntries(['tps', 'p50', 'p95', 'p99'].map((field) =>
      [field, Number(document.querySelector(`[data-field="${field}"]`).textContent.replace(/,/g, ''))])));
    assert.ok(readout.tps > 0, `tps readout ${readout.tps}`);
    assert.ok(readout.p50 > 0 && readout.p50 <= readout.p95 && readout.p95 <= readout.p99,
      `latency quantiles out of order: ${JSON.stringify(readout)}`);

    // One WebSocket for the whole page, one subscribe per topic however many
    // components show it (tiles: useTopic + useStream; charts: useAggregate + useStream).
    assert.equal(websockets.sockets.length, 1, `WebSockets opened: ${websockets.sockets.join(', ')}`);
    assert.match(websockets.sockets[0], /\/ws$/);
    const expected = [...KPIS.map((name) => `org:acme:kpi.${name}`), 'org:acme:transactions',
                      'org:acme:agg.amount.1s', 'org:acme:agg.latency_ms.1s'].sort();
    assert.deepEqual([...websockets.subscribes].sort(), expected);
    assert.deepEqual(problems, []);
    t.diagnostic(`load-to-first-KPI ${firstKpiMs} ms; ${rows.length} feed rows; readout ${JSON.stringify(readout)}`);
    await page.close();
  });

  it('viewer: the tiles update, the feed and the aggregates are refused with forbidden', async () => {
    const { page, problems, websockets } = await open('viewer-globex');
    await page.waitForFunction(() => document.querySelector('#feed')?.dataset.state === 'error' &&
      ['chart-throughput', 'chart-latency'].every((id) => document.getElementById(id)?.dataset.state === 'error'),
    null, { timeout: WAIT_MS });
    for (const id of ['feed', 'chart-throughput', 'chart-latency']) {
      assert.equal(await page.textContent(`#${id} .refused code`), 'forbidden');
    }
    assert.equal(await page.locator('#feed tbody tr').count(), 0);
    await page.waitForFunction((names) => names.every((name) =>
      /\d/.test(document.querySelector(`[data-kpi="${name}"] [data-field="value"]`)?.textContent ?? '')),
    KPIS, { timeout: WAIT_MS });
    assert.equal(websockets.sockets.length, 1);
    assert.ok(websockets.subscribes.every((topic) => topic.startsWith('org:globex:')), websockets.subscribes.join());
    assert.deepEqual(problems, []);
    await page.close();
  });
});
