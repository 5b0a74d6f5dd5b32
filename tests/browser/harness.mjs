// What the dashboard's end-to-end tests share: a free port, the real
// livecast-dashboard binary started on it and stopped.
//
//   LIVECAST_DASHBOARD_BIN   the binary (ctest passes it)
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';

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

// Starts the dashboard and resolves once it says it is listening (it prints
// the demo URLs after binding); rejects if it exits first.
export function startDashboard(port, { attempts = 5, httpPort = 0, extra = [] } = {}) {
  return new Promise((resolveStart, reject) => {
    const child = spawn(binary, ['--port', String(port), '--http-port', String(httpPort), '--address', '127.0.0.1',
                                 '--threads', '2', ...extra],
                        { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`livecast-dashboard did not start within 15 s:\n${output}`));
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
      // A port in TIME_WAIT's shadow can refuse a bind for a moment: the
      // binary exits 1 with "cannot listen", and trying again is the remedy.
      if (code === 1 && /cannot listen/.test(output) && attempts > 1) {
        resolveStart(startDashboard(port, { attempts: attempts - 1, httpPort, extra }));
      } else {
        reject(new Error(`livecast-dashboard exited with ${code} before listening:\n${output}`));
      }
    });
  });
}

export function stopDashboard(child, signal = 'SIGTERM') {
  return new Promise((resolveStop) => {
    if (!child || child.exitCode !== null || child.signalCode !== null) return resolveStop();
    child.once('exit', () => resolveStop());
    child.kill(signal);
  });
}
