// Bundles the page (src/main.js), the livecast JS client and uPlot into
// dist/dashboard.js and dist/dashboard.css, which are committed so that the
// C++ build needs no npm; CMake embeds them into livecast-dashboard.
//
//   node build.mjs           rewrite dist/
//   node build.mjs --check   build into a temporary folder and compare with dist/:
//                            exit 0 when equal, 1 when dist/ is stale, 77 (ctest's
//                            skip) when esbuild is not installed (npm ci not run)
import { mkdtempSync, readFileSync, readdirSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const check = process.argv.includes('--check');

let esbuild;
try {
  esbuild = await import('esbuild');
} catch {
  console.error('esbuild is not installed: run `npm ci` in examples/dashboard/web');
  process.exit(check ? 77 : 1);
}

// uPlot's own header is not a legal comment to esbuild, so keep its notice here.
const uplot = JSON.parse(readFileSync(join(here, 'node_modules/uplot/package.json'), 'utf8'));
const notice = `/*! livecast dashboard page + livecast JS client (MIT); uPlot ${uplot.version} (MIT), ` +
  'Copyright (c) Leon Sorokin, https://github.com/leeoniya/uPlot */';

const outdir = check ? mkdtempSync(join(tmpdir(), 'livecast-dashboard-')) : join(here, 'dist');
try {
  await esbuild.build({
    absWorkingDir: here,
    entryPoints: { dashboard: 'src/main.js' },
    bundle: true,
    minify: true,
    format: 'esm',
    target: ['es2022', 'chrome100', 'firefox100', 'safari15'],
    // Byte-identical output on every machine, so --check can compare bytes.
    legalComments: 'none',
    banner: { js: notice, css: notice },
    charset: 'utf8',
    sourcemap: false,
    logLevel: 'warning',
    outdir,
  });
  if (check) {
    const stale = [];
    for (const name of readdirSync(outdir)) {
      const committed = join(here, 'dist', name);
      if (!existsSync(committed) || !readFileSync(committed).equals(readFileSync(join(outdir, name)))) stale.push(name);
    }
    if (stale.length) {
      console.error(`dist/ is out of date with src/ (${stale.join(', ')}): run \`npm run build\` in examples/dashboard/web and commit dist/`);
      process.exit(1);
    }
    console.log('dist/ matches a fresh build of src/');
  }
} finally {
  if (check) rmSync(outdir, { recursive: true, force: true });
}
