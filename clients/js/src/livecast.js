// A client for the livecast.v1 protocol (docs/protocol.md): one WebSocket,
// subscriptions that survive reconnects, and no publication handed to the
// application twice or out of offset order.
//
// No dependencies: it runs in browsers and in Node >= 18 given a WebSocket
// constructor. Timers, randomness and the network-status source can be
// injected, which is how the unit tests drive it without a network or a clock.

export const PROTOCOL = 'livecast.v1';

// Close codes after which reconnecting with the same token cannot help
// (the "no" rows of the close-code table in docs/protocol.md).
export const FINAL_CLOSE_CODES = Object.freeze({
  1003: 'unsupported data',
  1009: 'message too large',
  4001: 'unauthorized',
  4003: 'origin not allowed',
});

// Close code this client uses when it drops a connection that stopped answering.
export const PING_TIMEOUT_CLOSE_CODE = 4000;

const OPEN = 1;  // WebSocket.OPEN; injected constructors need not define it

// Capped exponential back-off with full jitter: a restarted server is not hit
// by every client at the same instant. `attempt` counts from 0.
export function backoffDelay(attempt, { minDelayMs = 250, maxDelayMs = 15000, random = Math.random } = {}) {
  const ceiling = Math.min(maxDelayMs, minDelayMs * 2 ** Math.min(attempt, 30));
  return random() * ceiling;
}

export function shouldReconnect(code) {
  return !Object.prototype.hasOwnProperty.call(FINAL_CLOSE_CODES, code);
}

// An error reply from the server ({code, message}), or a request that the
// client gave up on (code "disconnected", "not_connected", "closed").
export class LivecastError extends Error {
  constructor(code, message) {
    super(message || code);
    this.name = 'LivecastError';
    this.code = code;
  }
}

// The smallest event emitter that works the same in browsers and Node.
class Emitter {
  constructor() {
    this._listeners = new Map();
  }

  on(event, listener) {
    if (!this._listeners.has(event)) this._listeners.set(event, new Set());
    this._listeners.get(event).add(listener);
    return () => this.off(event, listener);
  }

  off(event, listener) {
    const set = this._listeners.get(event);
    if (set) set.delete(listener);
  }

  _emit(event, ...args) {
    const set = this._listeners.get(event);
    if (!set) return;
    for (const listener of [...set]) {
      try {
        listener(...args);
      } catch (error) {
        // One faulty listener must not break the client's bookkeeping.
        this._reportListenerError(error);
      }
    }
  }

  _reportListenerError(error) {
    reportListenerError(error);
  }
}

// Rethrown outside the client's call stack, so it still shows as uncaught.
function reportListenerError(error) {
  if (typeof queueMicrotask === 'function') {
    queueMicrotask(() => { throw error; });
  } else if (typeof console !== 'undefined') {
    console.error(error);
  }
}

// One topic the client wants to hear. Its position ({epoch, offset}) outlives
// connections so that a reconnect recovers what was missed.
export class Subscription extends Emitter {
  constructor(client, topic, { serverJoined = false } = {}) {
    super();
    this.client = client;
    this.topic = topic;
    this.state = 'unsubscribed';
    this.epoch = null;   // from the last subscribe reply
    this.offset = 0;     // of the last publication delivered (or the reply's)
    this.serverJoined = serverJoined;
    this._awaitingSnapshot = false;  // after a reply without recovery: the next one may jump
    this._resyncing = false;         // after a gap: drop until the recovering reply arrives
    this._retryTimer = null;
    this._retryAttempt = 0;
  }

  _reportListenerError(error) {
    this.client._reportListenerError(error);
  }

  get position() {
    return this.epoch === null ? null : { epoch: this.epoch, offset: this.offset };
  }

  unsubscribe() {
    this.client._unsubscribe(this);
  }

  _setState(state, info) {
    if (this.state === state && state !== 'subscribed') return;
    this.state = state;
    this._emit(state, info);
    this._emit('state', { state, ...info });
  }
}

function defaultTimers() {
  return {
    setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
    clearTimeout: (handle) => globalThis.clearTimeout(handle),
  };
}

function defaultEventTarget() {
  return typeof globalThis.addEventListener === 'function' ? globalThis : null;
}

function defaultIsOnline() {
  const navigator = globalThis.navigator;
  return !(navigator && navigator.onLine === false);
}

// Relative URLs ("/ws") resolve against the page, with ws: or wss: to match.
function resolveUrl(url) {
  const location = globalThis.location;
  if (typeof url === 'string' && url.startsWith('/') && location && location.host) {
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    return `${scheme}//${location.host}${url}`;
  }
  return String(url);
}

function withToken(url, token) {
  if (token === undefined || token === null || token === '') return url;
  const hash = url.indexOf('#');
  const base = hash >= 0 ? url.slice(0, hash) : url;
  const separator = base.includes('?') ? '&' : '?';
  return `${base}${separator}token=${encodeURIComponent(token)}${hash >= 0 ? url.slice(hash) : ''}`;
}

export class Client extends Emitter {
  constructor(url, options = {}) {
    super();
    this.url = url;
    this.options = {
      token: options.token,
      WebSocket: options.WebSocket || globalThis.WebSocket,
      minDelayMs: options.minDelayMs ?? 250,
      maxDelayMs: options.maxDelayMs ?? 15000,
      // A little over the server's 20 s ping interval: browsers hide WebSocket
      // pings, so silence this long is when we ask with a livecast ping op.
      pingTimeoutMs: options.pingTimeoutMs ?? 25000,
      pingReplyTimeoutMs: options.pingReplyTimeoutMs ?? 10000,
      resubscribeOnGap: options.resubscribeOnGap ?? true,
      random: options.random || Math.random,
      timers: options.timers || defaultTimers(),
      eventTarget: options.eventTarget !== undefined ? options.eventTarget : defaultEventTarget(),
      isOnline: options.isOnline || defaultIsOnline,
      protocols: options.protocols !== undefined ? options.protocols : PROTOCOL,
      onListenerError: options.onListenerError || reportListenerError,
    };
    if (typeof this.options.WebSocket !== 'function') {
      throw new TypeError('livecast: no WebSocket constructor; pass one in options.WebSocket');
    }
    this.state = 'disconnected';
    this.attempt = 0;                  // reconnects since the server last answered
    this._ws = null;
    this._subscriptions = new Map();   // topic -> Subscription
    this._pending = new Map();         // request id -> {kind, subscription?, resolve?, reject?}
    this._nextId = 1;
    this._reconnectTimer = null;
    this._watchdogTimer = null;
    this._pingDeadline = null;
    this._waitingForNetwork = false;
    this._closed = false;
    this._onOnline = () => this._networkCameBack();
    if (this.options.eventTarget) this.options.eventTarget.addEventListener('online', this._onOnline);
  }

  _reportListenerError(error) {
    this.options.onListenerError(error);
  }

  get connected() {
    return this.state === 'connected';
  }

  subscriptions() {
    return [...this._subscriptions.values()];
  }

  getSubscription(topic) {
    return this._subscriptions.get(topic);
  }

  // onPublication(data, {topic, offset, epoch}) is called once per publication, in offset order.
  subscribe(topic, onPublication) {
    if (typeof topic !== 'string' || topic === '') throw new TypeError('livecast: topic must be a non-empty string');
    if (this._closed) throw new LivecastError('closed', 'livecast: the client is closed');
    if (this._subscriptions.has(topic)) throw new Error(`livecast: already subscribed to "${topic}"`);
    const subscription = new Subscription(this, topic);
    if (onPublication) subscription.on('publication', onPublication);
    this._subscriptions.set(topic, subscription);
    subscription._setState('subscribing', { topic });
    if (this._isOpen()) this._sendSubscribe(subscription);
    return subscription;
  }

  // Resolves with the server's reply ({topic, offset}) once the publication is stored.
  publish(topic, data) {
    if (!this._isOpen()) {
      return Promise.reject(new LivecastError('not_connected', 'livecast: not connected'));
    }
    return new Promise((resolve, reject) => {
      const id = this._nextId++;
      this._pending.set(id, { kind: 'publish', resolve, reject });
      this._send({ op: 'publish', id, topic, data });
    });
  }

  // Stops for good: no reconnect, every subscription ends.
  close() {
    if (this._closed) return;
    this._closed = true;
    this._cancelReconnect();
    this._stopWatchdog();
    if (this.options.eventTarget) this.options.eventTarget.removeEventListener('online', this._onOnline);
    const ws = this._detachSocket();
    if (ws) {
      try {
        ws.close(1000, 'client closed');
      } catch { /* already closing */ }
    }
    this._failPending('closed', 'livecast: the client was closed');
    for (const subscription of this._subscriptions.values()) {
      this._clearRetry(subscription);
      subscription._setState('unsubscribed', { topic: subscription.topic, reason: 'closed' });
    }
    this._subscriptions.clear();
    this._setState('disconnected', { code: 1000, reason: 'client closed', willReconnect: false });
  }

  // Opens the socket; connect() calls it, later reconnects do too.
  open() {
    if (this._closed || this._ws) return;
    this._cancelReconnect();
    this._waitingForNetwork = false;
    this._setState('connecting', { attempt: this.attempt });
    const token = typeof this.options.token === 'function' ? this.options.token() : this.options.token;
    const url = withToken(resolveUrl(this.url), token);
    let ws;
    try {
      ws = this.options.protocols ? new this.options.WebSocket(url, this.options.protocols)
                                  : new this.options.WebSocket(url);
    } catch (error) {
      this._connectionLost(1006, String(error && error.message ? error.message : error));
      return;
    }
    this._ws = ws;
    // A handshake that never completes (a black-holed SYN) counts as a dead connection too.
    if (this.options.pingTimeoutMs > 0) {
      this._pingDeadline = this.options.timers.setTimeout(() => this._abandonSocket('connect timeout'), this.options.pingTimeoutMs);
    }
    ws.onopen = () => this._opened();
    ws.onmessage = (event) => this._receive(event.data);
    ws.onclose = (event) => this._connectionLost(event.code, event.reason);
    ws.onerror = () => {};  // onclose follows with the code
  }

  _isOpen() {
    return this.state === 'connected' && this._ws !== null && this._ws.readyState === OPEN;
  }

  _send(message) {
    this._ws.send(JSON.stringify(message));
  }

  _setState(state, info = {}) {
    this.state = state;
    this._emit('state', { state, ...info });
  }

  _opened() {
    this._setState('connected', { attempt: this.attempt });
    this._resetWatchdog();
    for (const subscription of this._subscriptions.values()) {
      // A server-side join is renewed by the server on every connection.
      if (subscription.serverJoined) continue;
      this._clearRetry(subscription);
      this._sendSubscribe(subscription);
    }
  }

  _sendSubscribe(subscription, reason) {
    const id = this._nextId++;
    const request = { op: 'subscribe', id, topic: subscription.topic };
    if (subscription.epoch !== null) request.recover = { epoch: subscription.epoch, offset: subscription.offset };
    this._pending.set(id, { kind: 'subscribe', subscription });
    subscription._setState('subscribing', { topic: subscription.topic, reason });
    this._send(request);
  }

  _unsubscribe(subscription) {
    if (this._subscriptions.get(subscription.topic) !== subscription) return;
    this._subscriptions.delete(subscription.topic);
    this._clearRetry(subscription);
    if (this._isOpen()) {
      const id = this._nextId++;
      this._pending.set(id, { kind: 'unsubscribe' });
      this._send({ op: 'unsubscribe', id, topic: subscription.topic });
    }
    subscription._setState('unsubscribed', { topic: subscription.topic, reason: 'unsubscribed' });
  }

  _receive(text) {
    // Anything from the server proves the connection alive.
    this.attempt = 0;
    this._resetWatchdog();
    let message;
    try {
      message = JSON.parse(text);
    } catch {
      return;
    }
    if (message === null || typeof message !== 'object') return;
    if ('ok' in message || 'error' in message) {
      this._reply(message);
    } else if (typeof message.topic === 'string' && typeof message.offset === 'number') {
      this._publication(message);
    }
  }

  _publication({ topic, offset, data }) {
    const subscription = this._subscriptions.get(topic);
    if (!subscription || subscription.state === 'unsubscribed') return;
    if (subscription._resyncing || subscription.epoch === null) return;  // the recovery replays it
    if (subscription._awaitingSnapshot) {
      // The first one after a reply without recovery may jump ahead: not a gap.
      if (offset < subscription.offset) return;
      subscription._awaitingSnapshot = false;
    } else {
      if (offset <= subscription.offset) return;  // already delivered: a replay overlapped
      if (offset > subscription.offset + 1) {
        const gap = { topic, expected: subscription.offset + 1, received: offset, missing: offset - subscription.offset - 1 };
        subscription._emit('gap', gap);
        if (this.options.resubscribeOnGap && this._isOpen()) {
          this._resync(subscription);
          return;
        }
      }
    }
    subscription.offset = offset;
    subscription._emit('publication', data, { topic, offset, epoch: subscription.epoch });
  }

  // Missed publications: subscribe again from the last offset delivered so the
  // server replays the rest in order; what arrives until its reply is dropped.
  _resync(subscription) {
    subscription._resyncing = true;
    const id = this._nextId++;
    this._pending.set(id, { kind: 'unsubscribe' });
    this._send({ op: 'unsubscribe', id, topic: subscription.topic });
    this._sendSubscribe(subscription, 'gap');
  }

  _reply(message) {
    const hasId = message.id !== undefined && message.id !== null;
    const request = hasId ? this._pending.get(message.id) : undefined;
    if (hasId) this._pending.delete(message.id);

    if (!request) {
      if ('ok' in message) this._serverJoin(message.ok);
      else this._emit('error', new LivecastError(message.error?.code || 'unknown', message.error?.message));
      return;
    }
    switch (request.kind) {
      case 'publish':
        if ('error' in message) request.reject(new LivecastError(message.error?.code, message.error?.message));
        else request.resolve(message.ok);
        return;
      case 'ping':
        return;  // _receive already reset the watchdog
      case 'unsubscribe':
        return;
      case 'subscribe':
        if ('error' in message) this._subscribeFailed(request.subscription, message.error || {});
        else this._subscribed(request.subscription, message.ok || {});
        return;
    }
  }

  // A reply with no id shaped like a subscribe reply: the server subscribed us itself.
  _serverJoin(ok) {
    if (!ok || typeof ok.topic !== 'string' || ok.epoch === undefined) return;
    let subscription = this._subscriptions.get(ok.topic);
    if (!subscription) {
      subscription = new Subscription(this, ok.topic, { serverJoined: true });
      this._subscriptions.set(ok.topic, subscription);
      this._emit('join', subscription);
    }
    this._subscribed(subscription, ok);
  }

  _subscribed(subscription, ok) {
    if (this._subscriptions.get(subscription.topic) !== subscription) return;  // unsubscribed meanwhile
    const recovered = ok.recovered === true && subscription.epoch === ok.epoch;
    const hadPosition = subscription.epoch !== null;
    if (!recovered) {
      // New to us, a new epoch, or history lost: only the latest value follows.
      subscription.epoch = ok.epoch;
      subscription.offset = typeof ok.offset === 'number' ? ok.offset : 0;
    }
    subscription._awaitingSnapshot = !recovered;
    subscription._resyncing = false;
    subscription._retryAttempt = 0;
    subscription._setState('subscribed', {
      topic: subscription.topic,
      epoch: subscription.epoch,
      offset: subscription.offset,
      recovered,
      reset: hadPosition && !recovered,
    });
  }

  _subscribeFailed(subscription, { code, message }) {
    if (this._subscriptions.get(subscription.topic) !== subscription) return;
    subscription._resyncing = false;
    const error = new LivecastError(code, message);
    if (code === 'already_subscribed') return;  // the server holds it: its reply or join notice says where
    if (code === 'backend_unavailable' || code === 'rate_limited') {
      // Transient: the server dropped the subscription, so ask again later.
      subscription._setState('error', { topic: subscription.topic, error, willRetry: true });
      const delay = backoffDelay(subscription._retryAttempt++, this.options);
      subscription._retryTimer = this.options.timers.setTimeout(() => {
        subscription._retryTimer = null;
        if (this._isOpen() && this._subscriptions.get(subscription.topic) === subscription) this._sendSubscribe(subscription);
      }, delay);
      return;
    }
    this._subscriptions.delete(subscription.topic);
    subscription._setState('error', { topic: subscription.topic, error, willRetry: false });
  }

  _clearRetry(subscription) {
    if (subscription._retryTimer !== null) this.options.timers.clearTimeout(subscription._retryTimer);
    subscription._retryTimer = null;
  }

  _detachSocket() {
    const ws = this._ws;
    this._ws = null;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
    }
    return ws;
  }

  _failPending(code, text) {
    const pending = [...this._pending.values()];
    this._pending.clear();
    for (const request of pending) {
      if (request.reject) request.reject(new LivecastError(code, text));
    }
  }

  _connectionLost(code, reason) {
    this._detachSocket();
    this._stopWatchdog();
    if (this._closed) return;
    this._failPending('disconnected', `livecast: connection closed (${code})`);
    for (const subscription of this._subscriptions.values()) {
      this._clearRetry(subscription);
      subscription._resyncing = false;
      // Server-joined topics too: the server renews them once we are back.
      subscription._setState('subscribing', { topic: subscription.topic, reason: 'reconnect' });
    }
    if (!shouldReconnect(code)) {
      this._setState('disconnected', { code, reason: reason || FINAL_CLOSE_CODES[code], willReconnect: false });
      return;
    }
    this._scheduleReconnect({ code, reason: reason || '' });
  }

  _scheduleReconnect(info) {
    if (!this.options.isOnline()) {
      // No network: retrying only burns battery. The 'online' event resumes.
      this._waitingForNetwork = true;
      this._setState('disconnected', { ...info, willReconnect: true, offline: true });
      return;
    }
    const delayMs = backoffDelay(this.attempt, this.options);
    this.attempt++;
    this._setState('disconnected', { ...info, willReconnect: true, delayMs, attempt: this.attempt });
    this._reconnectTimer = this.options.timers.setTimeout(() => {
      this._reconnectTimer = null;
      if (!this.options.isOnline()) {
        this._waitingForNetwork = true;
        return;
      }
      this.open();
    }, delayMs);
  }

  _networkCameBack() {
    if (this._closed || this._ws) return;
    if (this._reconnectTimer === null && !this._waitingForNetwork) return;  // gave up for good
    this._cancelReconnect();
    this.open();
  }

  _cancelReconnect() {
    if (this._reconnectTimer !== null) this.options.timers.clearTimeout(this._reconnectTimer);
    this._reconnectTimer = null;
  }

  // Silence for pingTimeoutMs: ask with a ping op. No answer within
  // pingReplyTimeoutMs: the connection is half-open, drop it and reconnect.
  _resetWatchdog() {
    this._stopWatchdog();
    if (!this._ws || !(this.options.pingTimeoutMs > 0)) return;
    this._watchdogTimer = this.options.timers.setTimeout(() => this._watchdogFired(), this.options.pingTimeoutMs);
  }

  _watchdogFired() {
    this._watchdogTimer = null;
    if (!this._isOpen()) return;
    const id = this._nextId++;
    this._pending.set(id, { kind: 'ping' });
    this._send({ op: 'ping', id });
    this._pingDeadline = this.options.timers.setTimeout(() => this._abandonSocket('ping timeout'), this.options.pingReplyTimeoutMs);
  }

  _abandonSocket(reason) {
    this._pingDeadline = null;
    // Browsers may wait minutes for the closing handshake of a dead
    // connection, so stop listening to it and reconnect at once.
    const ws = this._detachSocket();
    if (ws) {
      try {
        ws.close(PING_TIMEOUT_CLOSE_CODE, reason);
      } catch { /* already closing */ }
    }
    this._connectionLost(PING_TIMEOUT_CLOSE_CODE, reason);
  }

  _stopWatchdog() {
    if (this._watchdogTimer !== null) this.options.timers.clearTimeout(this._watchdogTimer);
    if (this._pingDeadline !== null) this.options.timers.clearTimeout(this._pingDeadline);
    this._watchdogTimer = null;
    this._pingDeadline = null;
  }
}

// Creates a client and starts connecting; it reconnects by itself until close().
export function connect(url, options = {}) {
  const client = new Client(url, options);
  client.open();
  return client;
}

export default { connect, Client, Subscription, LivecastError, backoffDelay, shouldReconnect, FINAL_CLOSE_CODES, PROTOCOL };
