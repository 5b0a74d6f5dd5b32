// Test doubles: a manual clock and a scripted WebSocket whose "server side"
// the test drives by hand. No network, no real time.

export class FakeClock {
  constructor() {
    this.now = 0;
    this._timers = new Map();
    this._nextId = 1;
    this.setTimeout = (fn, ms) => {
      const id = this._nextId++;
      this._timers.set(id, { at: this.now + ms, ms, fn });
      return id;
    };
    this.clearTimeout = (id) => {
      this._timers.delete(id);
    };
  }

  // Runs every timer due within `ms`, in time order, including ones they set.
  advance(ms) {
    const end = this.now + ms;
    for (;;) {
      let next = null;
      for (const entry of this._timers) {
        if (entry[1].at <= end && (next === null || entry[1].at < next[1].at)) next = entry;
      }
      if (next === null) break;
      this._timers.delete(next[0]);
      this.now = next[1].at;
      next[1].fn();
    }
    this.now = end;
  }

  pendingDelays() {
    return [...this._timers.values()].map((timer) => timer.ms);
  }

  get pendingCount() {
    return this._timers.size;
  }
}

export function fakeWebSocketClass() {
  const sockets = [];
  class FakeWebSocket {
    constructor(url, protocols) {
      this.url = url;
      this.protocols = protocols;
      this.readyState = 0;
      this.sent = [];
      this.closedWith = null;
      sockets.push(this);
    }

    send(text) {
      if (this.readyState !== 1) throw new Error('send on a socket that is not open');
      this.sent.push(JSON.parse(text));
    }

    close(code, reason) {
      this.closedWith = { code, reason };
      // Node's `ws` reports closing a connecting socket as an 'error' event,
      // which throws from its event loop when nobody listens.
      if (this.readyState === 0 && typeof this.onerror !== 'function') this.errorUnheard = true;
      this.readyState = 2;
    }

    // --- the server's side ---
    accept() {
      this.readyState = 1;
      if (this.onopen) this.onopen({});
    }

    deliver(message) {
      if (this.onmessage) this.onmessage({ data: typeof message === 'string' ? message : JSON.stringify(message) });
    }

    drop(code = 1006, reason = '') {
      this.readyState = 3;
      if (this.onclose) this.onclose({ code, reason, wasClean: code !== 1006 });
    }

    requests(op) {
      return this.sent.filter((request) => request.op === op);
    }

    lastRequest(op) {
      const list = this.requests(op);
      return list[list.length - 1];
    }
  }
  FakeWebSocket.sockets = sockets;
  FakeWebSocket.latest = () => sockets[sockets.length - 1];
  return FakeWebSocket;
}

// The wall clock (Unix ms) at the fake clock's 0, for tokens' `exp`.
export const WALL_CLOCK_AT_ZERO = 1_700_000_000_000;

// Options wiring a client to the fakes, with no online/offline source unless given.
export function harness(extra = {}) {
  const clock = new FakeClock();
  const WebSocket = fakeWebSocketClass();
  const options = {
    // The WebSocket alone unless a test asks for the fallbacks.
    transports: ['websocket'],
    WebSocket,
    timers: { setTimeout: clock.setTimeout, clearTimeout: clock.clearTimeout },
    random: () => 0.5,
    now: () => WALL_CLOCK_AT_ZERO + clock.now,
    eventTarget: null,
    isOnline: () => true,
    ...extra,
  };
  return { clock, WebSocket, options };
}

export function recorder(emitter, event) {
  const seen = [];
  emitter.on(event, (...args) => seen.push(args.length > 1 ? args : args[0]));
  return seen;
}

// A scripted EventSource: the test opens it, sends events and fails it.
export function fakeEventSourceClass() {
  const sources = [];
  class FakeEventSource {
    constructor(url) {
      this.url = url;
      this.readyState = 0;
      this.closed = false;
      this._listeners = new Map();
      sources.push(this);
    }

    addEventListener(type, listener) {
      if (!this._listeners.has(type)) this._listeners.set(type, []);
      this._listeners.get(type).push(listener);
    }

    close() {
      this.closed = true;
      this.readyState = 2;
    }

    // --- the server's side ---
    accept() {
      this.readyState = 1;
      if (this.onopen) this.onopen({});
    }

    deliver(message, id) {
      const data = typeof message === 'string' ? message : JSON.stringify(message);
      if (this.onmessage) this.onmessage({ data, lastEventId: id ?? '' });
    }

    event(type, data) {
      for (const listener of this._listeners.get(type) || []) listener({ type, data: JSON.stringify(data) });
    }

    fail() {
      this.readyState = 2;
      if (this.onerror) this.onerror({});
    }

    get query() {
      return new URL(this.url).searchParams;
    }
  }
  FakeEventSource.sources = sources;
  FakeEventSource.latest = () => sources[sources.length - 1];
  return FakeEventSource;
}

// A scripted fetch: every call waits until the test answers it.
export function fakeFetch() {
  const calls = [];
  const fetch = (url, init = {}) => new Promise((resolve, reject) => {
    const call = {
      url,
      init,
      method: init.method || 'GET',
      body: init.body,
      settled: false,
      get query() {
        return new URL(url).searchParams;
      },
      respond(status, body) {
        call.settled = true;
        resolve({ ok: status >= 200 && status < 300, status, json: async () => body });
      },
      fail(error = new Error('network down')) {
        call.settled = true;
        reject(error);
      },
    };
    if (init.signal) {
      init.signal.addEventListener('abort', () => {
        if (call.settled) return;
        call.settled = true;
        call.aborted = true;
        reject(new Error('aborted'));
      });
    }
    calls.push(call);
  });
  fetch.calls = calls;
  fetch.pending = (method) => calls.filter((c) => !c.settled && (!method || c.method === method));
  fetch.latest = (method) => {
    const list = calls.filter((c) => !method || c.method === method);
    return list[list.length - 1];
  };
  return fetch;
}

// Lets promise callbacks (fetch answers) run.
export function settle() {
  return new Promise((resolve) => setImmediate(resolve));
}
