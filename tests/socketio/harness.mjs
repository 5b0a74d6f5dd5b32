// What the Socket.IO end-to-end tests share: starting and stopping
// livecast-socketio-test-server (tests/socketio/socketio_test_server.cpp),
// a redis-server, and waits on events with a deadline. Nothing here sleeps
// to synchronise: every wait is on an event, with a timeout that fails the
// test with what was seen.
//
//   LIVECAST_SOCKETIO_SERVER  the test server binary (ctest passes it)
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';

export const SKIP = 77;
export const serverBinary = process.env.LIVECAST_SOCKETIO_SERVER;

// Generous: the tests must pass on a loaded two-core machine.
export const WAIT_MS = 10000;

// Every process started here, killed when this one exits however it ends
// (a failed assertion in a hook, ctest's timeout), so none outlives the test.
const children = new Set();
function track(child) {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});
for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => process.exit(1));

// Exits 77 (ctest: skipped) with a reason; never a silent pass.
export function skipAll(reason) {
  console.log(`SKIPPED: ${reason}`);
  process.exit(SKIP);
}

export function requireServerBinary() {
  if (!serverBinary || !existsSync(serverBinary)) {
    console.error('LIVECAST_SOCKETIO_SERVER must name the livecast-socketio-test-server binary ' +
                  `(got '${serverBinary ?? ''}')`);
    process.exit(1);
  }
}

// socket.io-client, or exit 77 when `npm ci` was not run here.
export async function importClient() {
  try {
    return await import('socket.io-client');
  } catch {
    skipAll('socket.io-client is not installed (run `npm ci` in tests/socketio)');
  }
  return undefined;
}

// A port the kernel just handed out and nobody holds.
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

// Rejects after `ms` with `what` and whatever `seen()` says, unless
// `promise` settles first.
export function within(ms, what, promise, seen = () => '') {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => {
      const extra = seen();
      reject(new Error(`timed out after ${ms} ms waiting for ${what}${extra ? `; seen: ${extra}` : ''}`));
    }, ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// The next `name` event on `emitter` whose arguments satisfy `accept`.
export function nextEvent(emitter, name, { accept = () => true, ms = WAIT_MS } = {}) {
  const seen = [];
  let listener;
  const got = new Promise((resolveEvent) => {
    listener = (...args) => {
      seen.push(args);
      if (accept(...args)) resolveEvent(args);
    };
    emitter.on(name, listener);
  });
  return within(ms, `event '${name}'`, got, () => JSON.stringify(seen).slice(0, 2000))
    .finally(() => emitter.off(name, listener));
}

// A running test server: its process, port and output (for failure messages).
export class TestServer {
  constructor(child, port, readyLine) {
    this.child = child;
    this.port = port;
    this.ready = readyLine;
    this.output = '';
    this.exited = new Promise((resolveExit) => {
      child.once('exit', (code, signal) => resolveExit({ code, signal }));
    });
  }

  get url() { return `${this.ready.tls ? 'https' : 'http'}://127.0.0.1:${this.port}`; }
  get alive() { return this.child.exitCode === null && this.child.signalCode === null; }

  // SIGTERM (stops transports, then the broker) or SIGKILL; resolves on exit.
  async stop(signal = 'SIGTERM') {
    if (this.alive) this.child.kill(signal);
    const result = await within(WAIT_MS, `the test server to exit on ${signal}`, this.exited, () => this.output);
    return result;
  }
}

// Starts the test server and resolves once it printed its JSON ready line;
// rejects (with its output) when it exits first or says nothing in time. A
// fixed --port may be refused for a moment after a restart: retried.
export function startServer(args = [], { attempts = 5 } = {}) {
  return new Promise((resolveStart, reject) => {
    const child = track(spawn(serverBinary, ['--address', '127.0.0.1', ...args], { stdio: ['ignore', 'pipe', 'pipe'] }));
    let output = '';
    let server = null;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the test server did not start within ${WAIT_MS} ms:\n${output}`));
    }, WAIT_MS);
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (chunk) => {
      output += chunk;
      if (server) { server.output += chunk; return; }
      const line = output.split('\n').find((l) => l.startsWith('{') && l.includes('"ready"'));
      if (!line) return;
      clearTimeout(timer);
      const ready = JSON.parse(line);
      server = new TestServer(child, ready.port, ready);
      server.output = output;
      resolveStart(server);
    });
    child.stderr.on('data', (chunk) => {
      output += chunk;
      if (server) server.output += chunk;
      if (process.env.LIVECAST_TEST_VERBOSE) process.stderr.write(chunk);
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (server) return;
      if (code === 1 && /cannot listen/.test(output) && attempts > 1) {
        resolveStart(startServer(args, { attempts: attempts - 1 }));
      } else {
        reject(new Error(`the test server exited with ${code} before it was ready:\n${output}`));
      }
    });
  });
}

// A redis-server without persistence on a free loopback port. Fails (not
// skips) without one: CI installs it.
export async function startRedis() {
  const binary = process.env.LIVECAST_REDIS_SERVER || '/usr/bin/redis-server';
  if (!existsSync(binary)) {
    throw new Error(`no redis-server at ${binary}: apt-get install redis-server (or set LIVECAST_REDIS_SERVER)`);
  }
  for (let attempt = 0; attempt < 5; ++attempt) {
    const port = await freePort();
    const child = track(spawn(binary, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
                              { stdio: ['ignore', 'pipe', 'pipe'] }));
    let output = '';
    const ready = new Promise((resolveReady, reject) => {
      child.stdout.setEncoding('utf8');
      child.stdout.on('data', (chunk) => {
        output += chunk;
        if (/Ready to accept connections/.test(output)) resolveReady(true);
      });
      child.stderr.on('data', (chunk) => { output += chunk; });
      child.on('exit', (code) => reject(new Error(`redis-server exited with ${code}:\n${output}`)));
    });
    try {
      await within(WAIT_MS, 'redis-server to accept connections', ready, () => output);
      return {
        port,
        child,
        stop: () => new Promise((resolveStop) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolveStop();
          child.once('exit', () => resolveStop());
          child.kill('SIGKILL');
        }),
      };
    } catch (e) {
      child.kill('SIGKILL');
      if (attempt === 4) throw e;
    }
  }
  throw new Error('redis-server did not start');
}

let nonceCounter = 0;
// A value no earlier publication carried, so that a latest value delivered
// on subscribe cannot be mistaken for the publication a test waits for.
export function nonce(tag = 'n') {
  return `${tag}-${process.pid}-${Date.now()}-${++nonceCounter}`;
}
