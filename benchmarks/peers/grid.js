// The publication schedule and flags shared by the Node peers; the same rules
// as ../publication_grid.hpp so that every server offers the same load:
// publications due on a fixed grid, "ts" = the due time in integer
// microseconds since the Unix epoch (a late tick still stamps its due time),
// "seq" counting ticks, padded to --payload bytes. SIGUSR2 doubles the rate
// from the next due tick on (Node keeps SIGUSR1 for its debugger); with
// --paused the first SIGUSR2 starts the publications instead.
'use strict';

const { performance } = require('node:perf_hooks');

function parseFlags(argv, name) {
  const o = { port: 9000, topics: 1, rate: 20, payload: 100, printPort: false, paused: false, redis: '' };
  for (let i = 2; i < argv.length; ++i) {
    const k = argv[i];
    if (k === '--print-port') { o.printPort = true; continue; }
    if (k === '--paused') { o.paused = true; continue; }
    const v = argv[++i];
    if (v === undefined) usage(name);
    if (k === '--port') o.port = Number(v);
    else if (k === '--topics') o.topics = Number(v);
    else if (k === '--rate') o.rate = Number(v);
    else if (k === '--payload') o.payload = Number(v);
    else if (k === '--redis' && name.startsWith('socketio')) o.redis = v;
    else usage(name);
  }
  return o;
}

function usage(name) {
  const redis = name.startsWith('socketio') ? ' [--redis HOST:PORT]' : '';
  process.stderr.write(`usage: node ${name} [--port N] [--topics K] [--rate R] [--payload BYTES] [--print-port] [--paused]${redis}\n`);
  process.exit(2);
}

// Calls publish(data, seq) on the grid, where data is the object to send.
function startGrid(options, publish) {
  if (!(options.rate > 0)) {
    // Still take SIGUSR2, whose default action would end the process.
    process.on('SIGUSR2', () => {});
    return;
  }
  const pad = 'x'.repeat(Math.max(0, options.payload - 40));
  let periodMs = 1000 / options.rate;
  // performance.now() is monotonic; timeOrigin + now() is the wall clock it
  // corresponds to, fixed once so the grid never jumps with NTP.
  let paused = options.paused;
  let anchorMono = performance.now();
  let anchorWallUs = Math.round((performance.timeOrigin + anchorMono) * 1000);
  let ticks = 0;
  let seq = 0;
  let timer = null;
  const nextDue = () => anchorMono + ticks * periodMs;
  const tick = () => {
    // Node's timers run on the event loop's cached millisecond clock and may
    // fire up to a millisecond before the due time; publishing early would
    // flatter the peer's latency, so wait out the rest.
    const early = nextDue() - performance.now();
    if (early > 0) {
      timer = setTimeout(tick, Math.ceil(early));
      return;
    }
    const ts = anchorWallUs + Math.round(ticks * periodMs * 1000);
    publish({ ts, seq, pad }, seq);
    ++ticks;
    ++seq;
    schedule();
  };
  const schedule = () => {
    timer = setTimeout(tick, Math.max(0, nextDue() - performance.now()));
  };
  process.on('SIGUSR2', () => {
    clearTimeout(timer);
    if (paused) {
      // The grid starts now, not at start-up, so no backlog is due.
      paused = false;
      anchorMono = performance.now();
      anchorWallUs = Math.round((performance.timeOrigin + anchorMono) * 1000);
      schedule();
      return;
    }
    const due = nextDue();
    anchorWallUs += Math.round((due - anchorMono) * 1000);
    anchorMono = due;
    ticks = 0;
    periodMs /= 2;
    schedule();
  });
  if (!paused) schedule();
}

function topicNames(k) {
  return Array.from({ length: k }, (_, i) => `t${i}`);
}

module.exports = { parseFlags, startGrid, topicNames };
