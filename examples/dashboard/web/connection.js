// A livecast.v1 client: one WebSocket, subscriptions that survive reconnects,
// and no duplicate or out-of-order publication handed to the application.
//
// It remembers {epoch, offset} per topic and resubscribes with "recover"
// after a reconnect, so the server replays what was missed. Reconnects use
// capped exponential back-off with full jitter, so a restarted server is not
// hit by every client at once.

// Close codes after which reconnecting with the same token cannot help.
const FINAL_CLOSE_CODES = new Map([
  [4001, 'unknown or expired token'],
  [4003, 'origin not allowed'],
  [1009, 'message too large'],
  [1003, 'unsupported data'],
]);

const BACKOFF_BASE_MS = 500;
const BACKOFF_CAP_MS = 15000;
const PING_INTERVAL_MS = 20000;  // an application-level ping finds half-open connections...
const PING_TIMEOUT_MS = 10000;   // ...the browser would otherwise keep for minutes

export class LivecastConnection {
  // handlers: onStatus(status), onPublication(topic, data, offset),
  // onSubscribed(topic, info), onSubscribeError(topic, code, message)
  constructor(url, handlers) {
    this.url = url;
    this.handlers = handlers;
    this.ws = null;
    this.topics = new Set();        // what the application wants
    this.backfill = new Map();      // topic -> publications to replay on the first subscribe
    this.positions = new Map();     // topic -> {epoch, offset, fresh}
    this.pending = new Map();       // request id -> {topic, op}
    this.nextId = 1;
    this.attempt = 0;
    this.reconnectTimer = null;
    this.pingTimer = null;
    this.pingDeadline = null;
    this.closedForGood = false;
    this.stats = { messages: 0, duplicates: 0, gaps: 0, reconnects: 0, recovered: 0 };
    addEventListener('online', () => { if (this.reconnectTimer) this.reconnectNow(); });
  }

  // With `backfill`, the first subscribe also replays up to that many past
  // publications from the server's history (e.g. to fill a chart at once).
  subscribe(topic, { backfill = 0 } = {}) {
    if (this.topics.has(topic)) return;
    this.topics.add(topic);
    if (backfill > 0) this.backfill.set(topic, backfill);
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.sendSubscribe(topic);
  }

  connect() {
    this.closedForGood = false;
    this.setStatus({ state: this.attempt === 0 ? 'connecting' : 'reconnecting', attempt: this.attempt });
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch (error) {
      this.setStatus({ state: 'disconnected', reason: String(error) });
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      this.pending.clear();
      this.setStatus({ state: 'connected', attempt: this.attempt });
      for (const topic of this.topics) this.sendSubscribe(topic);
      this.startPings();
    };
    ws.onmessage = (event) => this.receive(event.data);
    ws.onclose = (event) => this.closed(event);
    ws.onerror = () => {};  // onclose follows with the code
  }

  // Ends the connection and does not come back.
  close() {
    this.closedForGood = true;
    clearTimeout(this.reconnectTimer);
    this.stopPings();
    if (this.ws) this.ws.close(1000, 'bye');
  }

  reconnectNow() {
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    this.connect();
  }

  sendSubscribe(topic) {
    const id = this.nextId++;
    const request = { op: 'subscribe', id, topic };
    const position = this.positions.get(topic);
    if (position) request.recover = { epoch: position.epoch, offset: position.offset };
    this.pending.set(id, { topic, op: 'subscribe' });
    this.ws.send(JSON.stringify(request));
  }

  receive(text) {
    this.stats.messages++;
    let message;
    try {
      message = JSON.parse(text);
    } catch {
      return;
    }
    if ('topic' in message && 'offset' in message && 'data' in message) {
      this.publication(message);
    } else if ('ok' in message || 'error' in message) {
      this.reply(message);
    }
  }

  publication({ topic, offset, data }) {
    const position = this.positions.get(topic);
    if (position) {
      if (position.backfilling) return;  // the replay that follows covers it
      if (offset <= position.offset) {  // already seen: a recovery overlapped the live stream
        this.stats.duplicates++;
        return;
      }
      // A gap: the server's slow-consumer policy dropped (or conflated) some.
      if (!position.fresh && offset > position.offset + 1) this.stats.gaps += offset - position.offset - 1;
      position.offset = offset;
      position.fresh = false;
    }
    this.handlers.onPublication(topic, data, offset);
  }

  reply(message) {
    const request = message.id !== undefined ? this.pending.get(message.id) : undefined;
    if (message.id !== undefined) this.pending.delete(message.id);

    if (request && request.op === 'unsubscribe') return;
    if (request && request.op === 'ping') {
      clearTimeout(this.pingDeadline);
      this.pingDeadline = null;
      return;
    }
    if ('error' in message) {
      const { code, message: text } = message.error;
      if (!request) return;  // e.g. rate_limited without an id
      if (code === 'already_subscribed') return;
      if (code === 'forbidden' || code === 'invalid_topic') this.topics.delete(request.topic);
      this.handlers.onSubscribeError(request.topic, code, text);
      // A transient failure: ask again a little later.
      if (code === 'backend_unavailable') setTimeout(() => this.retrySubscribe(request.topic), 2000);
      return;
    }

    // A subscribe reply, or a notice (no id) for a server-side join.
    const ok = message.ok;
    if (!ok || typeof ok.topic !== 'string' || ok.epoch === undefined) return;
    const position = this.positions.get(ok.topic);
    const backfill = this.backfill.get(ok.topic);
    if (!position && request && backfill && ok.offset > 1) {
      // The first answer tells where the stream stands: subscribe again from
      // `backfill` publications earlier. Until that answer, drop what arrives.
      this.positions.set(ok.topic, { epoch: ok.epoch, offset: Math.max(0, ok.offset - backfill), fresh: true,
                                     backfilling: true });
      const id = this.nextId++;
      this.pending.set(id, { topic: ok.topic, op: 'unsubscribe' });
      this.ws.send(JSON.stringify({ op: 'unsubscribe', id, topic: ok.topic }));
      this.sendSubscribe(ok.topic);
      return;
    }
    if (position) position.backfilling = false;
    let reset = false;
    if (!position || position.epoch !== ok.epoch) {
      // New to us, or the history was lost (server restart): start over.
      reset = position !== undefined;
      this.positions.set(ok.topic, { epoch: ok.epoch, offset: 0, fresh: true });
    } else if (!ok.recovered && ok.offset > position.offset) {
      // We missed more than the server keeps: only the latest value follows.
      reset = true;
      position.offset = 0;
      position.fresh = true;
    } else if (ok.recovered) {
      this.stats.recovered++;
    }
    this.attempt = 0;  // the server is answering: the next outage starts the back-off afresh
    this.handlers.onSubscribed(ok.topic, { epoch: ok.epoch, recovered: !!ok.recovered, reset, serverJoin: !request });
  }

  retrySubscribe(topic) {
    if (this.topics.has(topic) && this.ws && this.ws.readyState === WebSocket.OPEN) this.sendSubscribe(topic);
  }

  closed(event) {
    this.stopPings();
    this.ws = null;
    if (this.closedForGood) return;
    const final = FINAL_CLOSE_CODES.get(event.code);
    if (final) {
      this.setStatus({ state: 'disconnected', code: event.code, reason: event.reason || final });
      return;
    }
    this.attempt++;
    this.stats.reconnects++;
    const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** Math.min(this.attempt, 16));
    const delay = Math.random() * ceiling;  // full jitter
    this.setStatus({ state: 'reconnecting', attempt: this.attempt, retryAt: Date.now() + delay,
                     code: event.code, reason: event.reason });
    this.reconnectTimer = setTimeout(() => this.reconnectNow(), delay);
  }

  startPings() {
    this.stopPings();
    this.pingTimer = setInterval(() => {
      if (!this.ws || this.ws.readyState !== WebSocket.OPEN || this.pingDeadline) return;
      const id = this.nextId++;
      this.pending.set(id, { op: 'ping' });
      this.ws.send(JSON.stringify({ op: 'ping', id }));
      // No answer in time: drop the connection; onclose reconnects.
      this.pingDeadline = setTimeout(() => { if (this.ws) this.ws.close(4000, 'ping timeout'); }, PING_TIMEOUT_MS);
    }, PING_INTERVAL_MS);
  }

  stopPings() {
    clearInterval(this.pingTimer);
    clearTimeout(this.pingDeadline);
    this.pingTimer = null;
    this.pingDeadline = null;
  }

  setStatus(status) {
    this.handlers.onStatus(status);
  }
}
