// test_react_hooks: the hooks' Node tests (test/node, jsdom + React's act)
// once with React 18 and once with React 19, from the npm projects
// test/react18 and test/react19; then the hand-written types against
// @types/react with tsc. Exits 77 (ctest: skipped) when an npm project it
// needs has no node_modules.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const SKIP = 77;
const here = dirname(fileURLToPath(import.meta.url));
const packageRoot = resolve(here, '..');
const versions = [
  { major: '18', project: join(here, 'react18') },
  { major: '19', project: join(here, 'react19') },
];
const tsc = join(packageRoot, 'node_modules', 'typescript', 'bin', 'tsc');

const missing = [
  ...versions.flatMap(({ project }) => ['react', 'react-dom', 'jsdom']
    .filter((name) => !existsSync(join(project, 'node_modules', name, 'package.json')))
    .map((name) => `${name} in ${project} (npm ci there)`)),
  ...[tsc, join(packageRoot, 'node_modules', '@types', 'react', 'index.d.ts')]
    .filter((path) => !existsSync(path))
    .map((path) => `${path} (npm ci in ${packageRoot})`),
];
if (missing.length > 0) {
  console.log(`SKIPPED: missing ${missing.join(', ')}`);
  process.exit(SKIP);
}

const testFiles = readdirSync(join(here, 'node'))
  .filter((name) => name.endsWith('.test.js'))
  .sort()
  .map((name) => join(here, 'node', name));

let failed = false;
for (const { major, project } of versions) {
  console.log(`# React ${major} (${project})`);
  const run = spawnSync(process.execPath, ['--import', join(here, 'react-version.mjs'), '--test', ...testFiles], {
    cwd: packageRoot,
    stdio: 'inherit',
    env: { ...process.env, LIVECAST_REACT_PROJECT: project, LIVECAST_REACT_MAJOR: major },
  });
  if (run.status !== 0) {
    console.log(`# React ${major}: the tests failed (exit ${run.status ?? run.signal})`);
    failed = true;
  }
}

console.log('# types: tsc --noEmit -p test/types');
const types = spawnSync(process.execPath, [tsc, '--noEmit', '-p', join(here, 'types')], { cwd: packageRoot, stdio: 'inherit' });
if (types.status !== 0) {
  console.log('# types: tsc found errors');
  failed = true;
}
process.exit(failed ? 1 : 0);
