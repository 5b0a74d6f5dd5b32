// test_react_browser: the hooks in Debian's headless Chromium, with React 18
// and with React 19. page.js is bundled by esbuild once per version (react
// and react-dom from test/react18 or test/react19) and run on a blank page;
// playwright-core drives /usr/bin/chromium and never downloads a browser.
//
//   LIVECAST_CHROMIUM  the browser (default /usr/bin/chromium)
//
// Exits 77 (ctest: skipped) when the browser or an npm project's
// node_modules is missing. Every wait is on a condition with a timeout.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const SKIP = 77;
const WAIT_MS = 10000;
const here = dirname(fileURLToPath(import.meta.url));
const packageRoot = resolve(here, '..', '..');
const projects = { 18: join(here, '..', 'react18'), 19: join(here, '..', 'react19') };

function skipAll(reason) {
  console.log(`SKIPPED: ${reason}`);
  process.exit(SKIP);
}

const chromiumPath = process.env.LIVECAST_CHROMIUM || '/usr/bin/chromium';
if (!existsSync(chromiumPath)) skipAll(`no browser at ${chromiumPath} (apt-get install chromium)`);
for (const [major, project] of Object.entries(projects)) {
  for (const name of ['react', 'react-dom']) {
    if (!existsSync(join(project, 'node_modules', name, 'package.json'))) {
      skipAll(`React ${major}: no ${name} in ${project} (run \`npm ci\` there)`);
    }
  }
}
if (!existsSync(join(packageRoot, 'node_modules', '@livecast', 'client', 'package.json'))) {
  skipAll(`no @livecast/client link in ${packageRoot}/node_modules (run \`npm ci\` there)`);
}
let chromium;
let esbuild;
try {
  ({ chromium } = await import('playwright-core'));
  esbuild = await import('esbuild');
} catch {
  skipAll(`playwright-core or esbuild is not installed (run \`npm ci\` in ${packageRoot})`);
}

// The page with React `major`: react and react-dom (and what they require)
// come from that version's project, whatever node_modules is nearer.
async function bundle(major) {
  const modules = join(projects[major], 'node_modules');
  const result = await esbuild.build({
    entryPoints: [join(here, 'page.js')],
    bundle: true,
    format: 'iife',
    write: false,
    // React's development build: its warnings (an unstable getSnapshot, a
    // missing key) reach console.error, which fails the test.
    define: { 'process.env.NODE_ENV': '"development"' },
    alias: { react: join(modules, 'react'), 'react-dom': join(modules, 'react-dom') },
    logLevel: 'silent',
  });
  return result.outputFiles[0].text;
}

describe('@livecast/react in headless Chromium', () => {
  let userDataDir;
  let context;

  before(async () => {
    userDataDir = mkdtempSync(join(tmpdir(), 'livecast-react-chromium-'));
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: chromiumPath,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
             '--disable-component-update', '--no-first-run', '--disable-sync', '--disable-dev-shm-usage'],
      timeout: 60000,
    });
  });
  after(async () => {
    await context?.close().catch(() => {});
    if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
  });

  for (const major of ['18', '19']) {
    it(`React ${major}: one subscribe for many components, one render per frame for a burst, one unsubscribe`, async (t) => {
      const problems = [];
      const tab = await context.newPage();
      tab.on('pageerror', (error) => problems.push(`pageerror: ${error.message}`));
      tab.on('console', (message) => {
        if (message.type() === 'error' || message.type() === 'warning') problems.push(`${message.type()}: ${message.text()}`);
      });
      await tab.setContent('<!doctype html><html><body><div id="root"></div><div id="control"></div></body></html>');
      await tab.addScriptTag({ content: await bundle(major) });
      assert.equal((await tab.evaluate(() => window.__page.reactVersion)).split('.')[0], major);

      // Five numbers and three windows on one topic: one subscribe.
      await tab.evaluate(() => window.__page.render(5, 3));
      await tab.waitForFunction(() => window.__page.requests('subscribe').length > 0, null, { timeout: WAIT_MS });
      await tab.evaluate(() => window.__page.answerSubscribe());
      await tab.waitForFunction(() => window.__page.text().filter((line) => line.includes('subscribed')).length === 5,
        null, { timeout: WAIT_MS });
      await tab.evaluate(() => window.__page.mountUnbatched());
      await tab.waitForFunction(() => window.__page.commits.unbatched?.length === 1, null, { timeout: WAIT_MS });

      // Fifty publications, each in a task of its own: the unbatched control
      // commits fifty times; the hooks once per frame that began meanwhile
      // (plus one for the frame after the last).
      const before = await tab.evaluate(() => structuredClone(window.__page.commits));
      const { firstFrame, lastFrame } = await tab.evaluate(() => window.__page.burst(1, 50));
      await tab.waitForFunction(() => window.__page.text().filter((line) => line.endsWith('50 @50')).length === 5,
        null, { timeout: WAIT_MS });
      const after = await tab.evaluate(() => structuredClone(window.__page.commits));
      const during = (name) => after[name].slice(before[name].length);
      assert.equal(during('unbatched').length, 50);
      const frames = lastFrame - firstFrame + 1;
      t.diagnostic(`50 publications over ${frames} frames: ${during('value0').length} commits of value0, `
                   + `${during('unbatched').length} of the unbatched control`);
      // Fifty tasks take a few frames; half of them would mean a machine too
      // slow for this test to show anything.
      assert.ok(frames <= 25, `the burst took ${frames} frames`);
      for (const name of ['value0', 'value4', 'window0', 'window2']) {
        const commitFrames = during(name);
        assert.ok(commitFrames.length >= 1 && commitFrames.length <= frames,
          `${name}: ${commitFrames.length} commits for 50 publications over ${frames} frames`);
        assert.equal(new Set(commitFrames).size, commitFrames.length, `${name} committed twice in one frame: ${commitFrames}`);
      }
      const lines = await tab.evaluate(() => window.__page.text());
      assert.deepEqual(lines.filter((line) => line.startsWith('window')), [
        'window0=10: 41,42,43,44,45,46,47,48,49,50',
        'window1=11: 40,41,42,43,44,45,46,47,48,49,50',
        'window2=12: 39,40,41,42,43,44,45,46,47,48,49,50',
      ]);
      assert.deepEqual(await tab.evaluate(() => window.__page.requests('subscribe')), ['kpi']);

      // Every component unmounted: one unsubscribe.
      await tab.evaluate(() => window.__page.unmountUnbatched());
      await tab.evaluate(() => window.__page.render(0, 0));
      await tab.waitForFunction(() => window.__page.requests('unsubscribe').length > 0, null, { timeout: WAIT_MS });
      await tab.evaluate(() => new Promise((resolveFrame) => requestAnimationFrame(() => resolveFrame())));
      assert.deepEqual(await tab.evaluate(() => window.__page.requests('unsubscribe')), ['kpi']);
      assert.deepEqual(problems, []);
      await tab.close();
    });
  }
});
