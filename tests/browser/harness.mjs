// What the dashboard's end-to-end tests share: a free port, the real
// livecast-dashboard binary started on it and stopped (and any demo binary
// that prints "Press Ctrl+C" once listening, through startProgram).
//
//   LIVECAST_DASHBOARD_BIN   the binary (ctest passes it)
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const binary = process.env.LIVECAST_DASHBOARD_BIN;

// A port the kernel just handed out and nobody holds; the dashboard binds it
// next. Restarting on the same port is part of the tests, so it must be fixed.
export function freePort() {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolvePort(port));
    });
  });
}

// Starts `program` with `args` and resolves with the child once it prints
// "Press Ctrl+C" (the demos print it after binding); its output so far is
// child.output(). Rejects if it exits first (error.code: its exit code,
// error.output) or takes over 15 s.
export function startProgram(program, args) {
  return new Promise((resolveStart, reject) => {
    const child = spawn(program, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${program} did not start within 15 s:\n${output}`));
    }, 15000);
    const onData = (chunk) => {
      output += chunk;
      if (output.includes('Press Ctrl+C')) {
        clearTimeout(timer);
        child.output = () => output;
        resolveStart(child);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', (chunk) => { output += chunk; });
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (output.includes('Press Ctrl+C')) return;
      reject(Object.assign(new Error(`${program} exited with ${code} before listening:\n${output}`), { code, output }));
    });
  });
}

// Starts the dashboard on `port` and resolves once it says it is listening.
export async function startDashboard(port, { attempts = 5, httpPort = 0, extra = [] } = {}) {
  try {
    return await startProgram(binary, ['--port', String(port), '--http-port', String(httpPort), '--address', '127.0.0.1',
                                       '--threads', '2', ...extra]);
  } catch (error) {
    // A port in TIME_WAIT's shadow can refuse a bind for a moment: the
    // binary exits 1 with "cannot listen", and trying again is the remedy.
    if (error.code === 1 && /cannot listen/.test(error.output) && attempts > 1) {
      return startDashboard(port, { attempts: attempts - 1, httpPort, extra });
    }
    throw error;
  }
}

export function stopDashboard(child, signal = 'SIGTERM') {
  return new Promise((resolveStop) => {
    if (!child || child.exitCode !== null || child.signalCode !== null) return resolveStop();
    child.once('exit', () => resolveStop());
    child.kill(signal);
  });
}

// Debian's Chromium, headless, in a fresh profile; nothing downloaded.
// Resolves with {context, userDataDir}; the caller closes the context and
// removes the folder.
export async function launchChromium(chromium, executablePath) {
  const userDataDir = mkdtempSync(join(tmpdir(), 'livecast-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath,
    headless: true,
    viewport: { width: 1440, height: 1000 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
           '--disable-component-update', '--no-first-run', '--disable-sync', '--disable-quic',
           '--disable-dev-shm-usage'],
    timeout: 60000,
  });
  return { userDataDir, context };
}

// What every browser test checks first: the program under test (named by
// the environment variable `variable`; ctest sets it) must exist, and
// without Chromium or playwright-core the test is skipped (exit 77, which
// ctest reports as skipped), never passed in silence. Resolves with
// {program, chromium, chromiumPath}.
export const SKIP = 77;
export async function browserTestPrerequisites(variable, what) {
  const program = process.env[variable];
  if (!program || !existsSync(program)) {
    console.error(`${variable} must name the ${what} binary (got '${program ?? ''}')`);
    process.exit(1);
  }
  const chromiumPath = process.env.LIVECAST_CHROMIUM || '/usr/bin/chromium';
  if (!existsSync(chromiumPath)) {
    console.log(`SKIPPED: no browser at ${chromiumPath} (apt-get install chromium)`);
    process.exit(SKIP);
  }
  try {
    const { chromium } = await import('playwright-core');
    return { program, chromium, chromiumPath };
  } catch {
    console.log('SKIPPED: playwright-core is not installed (run `npm ci` in tests/browser)');
    process.exit(SKIP);
  }
  return null;
}
