// Bundles the page into dist/, which is committed so that the C++ build
// needs no npm; CMake embeds it into livecast-dashboard:
//   dist/dashboard.js           src/main.js: the page on the livecast JS client, with uPlot
//   dist/dashboard.css          its styles (uPlot's and src/style.css), for both pages
//   dist/dashboard-socketio.js  src/socketio.js: the page on socket.io-client (/?client=socketio)
// Two bundles rather than one with a switch: the default page does not carry
// socket.io-client, and the Socket.IO page not the livecast client.
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
const version = (name) => JSON.parse(readFileSync(join(here, `node_modules/${name}/package.json`), 'utf8')).version;
const uplotNotice = `uPlot ${version('uplot')} (MIT), Copyright (c) Leon Sorokin, https://github.com/leeoniya/uPlot`;
const notice = `/*! livecast dashboard page + livecast JS client (MIT); ${uplotNotice} */`;
const socketioNotice = `/*! livecast dashboard page (MIT); socket.io-client ${version('socket.io-client')}, ` +
  `engine.io-client ${version('engine.io-client')}, socket.io-parser ${version('socket.io-parser')}, ` +
  `engine.io-parser ${version('engine.io-parser')} and @socket.io/component-emitter (MIT), Copyright (c) ` +
  `Guillermo Rauch and Socket.IO contributors, https://github.com/socketio/socket.io; ${uplotNotice} */`;

const outdir = check ? mkdtempSync(join(tmpdir(), 'livecast-dashboard-')) : join(here, 'dist');
try {
  const build = (entryPoints, banner) => esbuild.build({
    absWorkingDir: here,
    entryPoints,
    bundle: true,
    minify: true,
    format: 'esm',
    target: ['es2022', 'chrome100', 'firefox100', 'safari15'],
    // Byte-identical output on every machine, so --check can compare bytes.
    legalComments: 'none',
    banner: { js: banner, css: banner },
    charset: 'utf8',
    sourcemap: false,
    logLevel: 'warning',
    outdir,
  });
  await build({ dashboard: 'src/main.js' }, notice);
  await build({ 'dashboard-socketio': 'src/socketio.js' }, socketioNotice);
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
