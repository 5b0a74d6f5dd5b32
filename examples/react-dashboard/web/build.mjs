// Bundles the page into dist/, which is committed so that the C++ build
// needs no npm; CMake embeds it into livecast-react-dashboard:
//   dist/react-dashboard.js   src/main.jsx: the page, React (production build),
//                             @livecast/react and @livecast/client
//   dist/react-dashboard.css  src/style.css
//
//   node build.mjs           rewrite dist/
//   node build.mjs --check   build into a temporary folder and compare with dist/:
//                            exit 0 when equal, 1 when dist/ is stale, 77 (ctest's
//                            skip) when esbuild is not installed (npm ci not run)
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const check = process.argv.includes('--check');

let esbuild;
try {
  esbuild = await import('esbuild');
} catch {
  console.error('esbuild is not installed: run `npm ci` in examples/react-dashboard/web');
  process.exit(check ? 77 : 1);
}

const modules = join(here, 'node_modules');
const version = (name) => JSON.parse(readFileSync(join(modules, name, 'package.json'), 'utf8')).version;
const notice = `/*! livecast React dashboard page, @livecast/react and @livecast/client (MIT); React ${version('react')}, ` +
  `react-dom ${version('react-dom')} and scheduler ${version('scheduler')} (MIT), Copyright (c) Meta Platforms, Inc. ` +
  'and affiliates, https://github.com/facebook/react */';

const outdir = check ? mkdtempSync(join(tmpdir(), 'livecast-react-dashboard-')) : join(here, 'dist');
try {
  await esbuild.build({
    absWorkingDir: here,
    entryPoints: { 'react-dashboard': 'src/main.jsx' },
    bundle: true,
    minify: true,
    format: 'esm',
    target: ['es2022', 'chrome100', 'firefox100', 'safari15'],
    jsx: 'automatic',
    // React's production build: no development checks, a fraction of the size.
    define: { 'process.env.NODE_ENV': '"production"' },
    // @livecast/react is a link to clients/react, whose own node_modules may
    // hold another React (its tests'): one copy of each, this folder's.
    alias: {
      react: join(modules, 'react'),
      'react-dom': join(modules, 'react-dom'),
      '@livecast/client': join(modules, '@livecast', 'client'),
    },
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
      console.error(`dist/ is out of date with src/ (${stale.join(', ')}): run \`npm run build\` in examples/react-dashboard/web and commit dist/`);
      process.exit(1);
    }
    console.log('dist/ matches a fresh build of src/');
  }
} finally {
  if (check) rmSync(outdir, { recursive: true, force: true });
}
