// The dashboard's charts start full (issue 14): a page opened on a demo that
// has run for two minutes draws the last two minutes of transactions per
// second, revenue and the Aggregator's latency percentiles within a second
// of opening, from the recent history its subscribes ask for, instead of
// starting empty. The real livecast-dashboard binary in Debian's headless
// Chromium, driven by playwright-core.
//
//   LIVECAST_DASHBOARD_BIN   the binary (ctest passes it)
//   LIVECAST_ARTIFACTS_DIR   where the screenshots go (as in dashboard.test.mjs)
//   LIVECAST_CHROMIUM        the browser (default /usr/bin/chromium)
//
// Exits 77 (skipped) without the browser or playwright-core. It lasts a
// little over two minutes: the demo has to have two minutes of history. That
// wait is a condition (a first page's chart spans two minutes), not a sleep.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { browserTestPrerequisites, freePort, launchChromium, startDashboard, stopDashboard } from './harness.mjs';

const WINDOW_S = 120;  // the page's CHART_WINDOW_S
const artifacts = resolve(process.env.LIVECAST_ARTIFACTS_DIR || process.env.LIVECAST_DEFAULT_ARTIFACTS_DIR ||
                          fileURLToPath(new URL('../../build/artifacts', import.meta.url)));

const { chromium, chromiumPath } = await browserTestPrerequisites('LIVECAST_DASHBOARD_BIN', 'livecast-dashboard');

describe('the dashboard charts open full', () => {
  let port;
  let server;
  let context;
  let userDataDir;
  const pageErrors = [];

  before(async () => {
    mkdirSync(artifacts, { recursive: true });
    port = await freePort();
    server = await startDashboard(port);
    ({ userDataDir, context } = await launchChromium(chromium, chromiumPath));
  });

  after(async () => {
    await context?.close().catch(() => {});
    await stopDashboard(server);
    if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
  });

  async function open(token) {
    const page = await context.newPage();
    page.on('pageerror', (error) => pageErrors.push(`${token}: ${error.message}`));
    page.on('console', (message) => {
      if (message.type() === 'error') pageErrors.push(`${token}: console: ${message.text()}`);
    });
    await page.goto(`http://127.0.0.1:${port}/?token=${token}`, { waitUntil: 'load', timeout: 15000 });
    return page;
  }

  const charts = (page) => page.evaluate(() => window.__livecast.charts);

  it('a page opened after two minutes draws every chart full within a second', async () => {
    // The demo's history reaches two minutes when a page open since its start
    // sees a chart that spans them.
    const watcher = await open('analyst-acme');
    await watcher.waitForFunction((span) => (window.__livecast.charts.tps?.spanS ?? 0) >= span,
                                  WINDOW_S - 1, { timeout: 200000, polling: 1000 });
    await watcher.close();

    const page = await open('analyst-acme');
    await page.waitForFunction(() => ['tps', 'revenue', 'latency'].every((n) => window.__livecast.charts[n]?.fullMs != null),
                               null, { timeout: 10000 });
    const drawn = await charts(page);
    for (const name of ['tps', 'revenue', 'latency']) {
      const { points, spanS, fullMs } = drawn[name];
      console.log(`${name}: full after ${fullMs.toFixed(0)} ms, ${points} points over ${spanS} s`);
      // One point a second; a window or two may still have been closing.
      assert.ok(points >= WINDOW_S - 8, `${name}: only ${points} points`);
      assert.ok(spanS >= WINDOW_S - 5, `${name}: spans ${spanS} s`);
      // performance.now() counts from the navigation's start.
      assert.ok(fullMs < 1000, `${name}: full only ${fullMs.toFixed(0)} ms after opening`);
    }
    // The recent publications came in order, once, running on into the live ones.
    const offsets = await page.evaluate(() => window.__livecast.offsets['org:acme:kpi.tps'].map((o) => o.offset));
    assert.ok(offsets.length >= WINDOW_S - 8);
    offsets.forEach((offset, i) => i === 0 || assert.equal(offset, offsets[i - 1] + 1, `tps: ${offsets[i - 1]} then ${offset}`));
    const latency = await page.evaluate(() => document.getElementById('latency-status').textContent);
    assert.match(latency, /p50 · p95 · p99/);

    const panel = join(artifacts, 'dashboard-latency-chart.png');
    await page.locator('#latency-panel').screenshot({ path: panel });
    const full = join(artifacts, 'dashboard-charts.png');
    await page.screenshot({ path: full, fullPage: true });
    console.log(`screenshot: ${panel} (page: ${full})`);
    await page.close();
  });

  it("a viewer's KPI charts open full too; the latency percentiles say they are for analysts and admins", async () => {
    const page = await open('viewer-acme');
    await page.waitForFunction(() => ['tps', 'revenue'].every((n) => window.__livecast.charts[n]?.fullMs != null) &&
                                     document.getElementById('latency-panel').dataset.state === 'forbidden',
                               null, { timeout: 10000 });
    assert.equal(await page.evaluate(() => document.getElementById('latency-status').textContent),
                 'analysts and admins only');
    assert.equal((await charts(page)).latency.points, 0);
    await page.close();
  });

  it('had no page errors', () => {
    assert.deepEqual(pageErrors, []);
  });
});
