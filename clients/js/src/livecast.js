// A client for the livecast.v1 protocol (docs/protocol.md): one WebSocket,
// or Server-Sent Events or long-polling where a WebSocket cannot get through,
// subscriptions that survive reconnects, and no publication handed to the
// application twice or out of offset order.
//
// No dependencies: it runs in browsers and in Node >= 18 given a WebSocket
// constructor (and EventSource/fetch for the fallbacks). Timers, randomness and the network-status source can be
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

// Close code of a session whose token ran out before a `refresh`. Not final:
// the client asks its token function for a new one and reconnects; with a
// fixed string token it is final, since that token cannot work again.
export const TOKEN_EXPIRED_CLOSE_CODE = 4011;

// Close code of a server that drains (restarts) or sheds sessions: its
// reason is "reconnect after <N> ms", a delay the server drew for this client
// so that its clients do not all come back in the same second. The client
// waits exactly that long (instead of its back-off) and starts its attempt
// count afresh; a reason of another form gets the usual back-off.
export const RECONNECT_AFTER_CLOSE_CODE = 4012;

// The longest server-named delay honoured (an hour); a longer one is taken
// as malformed.
const MAX_RECONNECT_AFTER_MS = 3600000;

// N from a 4012 close reason "reconnect after <N> ms"; null for anything else.
export function reconnectAfterDelay(reason) {
  const match = /^reconnect after (\d{1,10}) ms$/.exec(typeof reason === 'string' ? reason : '');
  if (!match) return null;
  const delayMs = Number(match[1]);
  return delayMs <= MAX_RECONNECT_AFTER_MS ? delayMs : null;
}

// A WebSocket subprotocol entry `livecast.bearer.<token>`, offered after the
// real protocol(s), carries the token in the handshake's headers: browsers
// cannot set Authorization on a WebSocket, and a query string reaches access
// logs. The server reads it and never selects (echoes) it.
export const BEARER_PROTOCOL_PREFIX = 'livecast.bearer.';

// What RFC 6455 allows in a subprotocol name: an HTTP token (RFC 7230's
// tchar), so no '/', '=', ',', space or other separator. A browser throws a
// SyntaxError for anything else, so such a token goes in the query instead.
const SUBPROTOCOL_TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

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
  constructor(client, topic, { serverJoined = false, recent = null } = {}) {
    super();
    this.client = client;
    this.topic = topic;
    // {count, seconds}: what the first subscribe asks for besides the latest
    // value; later ones recover from the position instead.
    this.recent = recent;
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

// A socket we stop listening to keeps a no-op error listener: Node's `ws`
// reports closing a socket that is still connecting as an 'error' event,
// and an 'error' event with no listener throws from its event loop.
function ignoreErrors() {}

function probeClose(ws) {
  ws.onopen = ws.onmessage = ws.onclose = null;
  ws.onerror = ignoreErrors;
  try {
    ws.close(1000, 'not needed');
  } catch { /* already closing */ }
}

function urlWithToken(url, token) {
  if (token === undefined || token === null || token === '') return url;
  const hash = url.indexOf('#');
  const base = hash >= 0 ? url.slice(0, hash) : url;
  const separator = base.includes('?') ? '&' : '?';
  return `${base}${separator}token=${encodeURIComponent(token)}${hash >= 0 ? url.slice(hash) : ''}`;
}


function isThenable(value) {
  return value !== null && (typeof value === 'object' || typeof value === 'function') && typeof value.then === 'function';
}

function messageOf(error) {
  return String(error && error.message ? error.message : error);
}

// A token function may give a string, nothing (no token) or something else
// that is sent as its string form.
function normaliseToken(value) {
  if (value === undefined || value === null || value === '') return undefined;
  return String(value);
}

// Calls use(token) with what ask() gives: at once for a value, so a string or
// a synchronous function connects synchronously as it always did; once
// settled for a promise (an async token provider). failed(error) when ask
// throws or its promise rejects. Returns null when it already called one of
// them, else a function that cancels the callback still to come.
function obtainToken(ask, use, failed) {
  let token;
  try {
    token = ask();
  } catch (error) {
    failed(error);
    return null;
  }
  if (!isThenable(token)) {
    use(normaliseToken(token));
    return null;
  }
  let live = true;
  Promise.resolve(token).then((value) => {
    if (!live) return;
    live = false;
    use(normaliseToken(value));
  }, (error) => {
    if (!live) return;
    live = false;
    failed(error);
  });
  return () => { live = false; };
}

// When a JWT's lifetime ends (Unix ms), from its payload's `exp`; null for a
// token that is not a JWT or has no `exp`. Nothing is verified (the server
// does that): the client only needs to know when to refresh.
export function tokenExpiresAt(token) {
  if (typeof token !== 'string' || typeof globalThis.atob !== 'function' || typeof TextDecoder !== 'function') return null;
  const parts = token.split('.');
  if (parts.length !== 3 || !/^[A-Za-z0-9_-]+$/.test(parts[1])) return null;
  try {
    const base64 = parts[1].replace(/-/g, '+').replace(/_/g, '/');
    const binary = globalThis.atob(base64 + '='.repeat((4 - (base64.length % 4)) % 4));
    const payload = JSON.parse(new TextDecoder().decode(Uint8Array.from(binary, (c) => c.charCodeAt(0))));
    const exp = payload !== null && typeof payload === 'object' ? payload.exp : undefined;
    return typeof exp === 'number' && Number.isFinite(exp) ? exp * 1000 : null;
  } catch {
    return null;  // not base64url, not JSON: no known end
  }
}

// How long before a session's end the client refreshes its token: 10 % of the
// lifetime left, at most a minute, at least a second.
function refreshMargin(remainingMs) {
  return Math.max(1000, Math.min(60000, remainingMs * 0.1));
}

// Transports in the default order of preference.
export const TRANSPORTS = Object.freeze(['websocket', 'sse', 'poll']);

// The cursor of docs/protocol.md: `<topic>:<epoch>:<offset>` items joined by ','.
export function formatCursor(positions) {
  return positions
    .filter(({ position }) => position)
    .map(({ topic, position }) => `${encodeURIComponent(topic)}:${encodeURIComponent(position.epoch)}:${position.offset}`)
    .join(',');
}

// A subscribe's `recent` option as the protocol takes it ({count, seconds},
// whole non-negative numbers), or null when it asks for nothing.
function recentHistory(recent) {
  if (recent === undefined || recent === null) return null;
  const whole = (n) => n === undefined || (Number.isInteger(n) && n >= 0);
  if (typeof recent !== 'object' || !whole(recent.count) || !whole(recent.seconds)) {
    throw new TypeError('livecast: recent must be {count, seconds} with whole non-negative numbers');
  }
  const out = {};
  if (recent.count !== undefined) out.count = recent.count;
  if (recent.seconds !== undefined) out.seconds = recent.seconds;
  return Object.keys(out).length > 0 ? out : null;
}

// The fallbacks' `recent` parameter: `<topic>:<count>:<seconds>` items joined by ','.
function formatRecent(subscriptions) {
  return subscriptions
    .map(({ topic, recent }) => `${encodeURIComponent(topic)}:${recent.count ?? 0}:${recent.seconds ?? 0}`)
    .join(',');
}

// The HTTP endpoint beside a WebSocket URL: same host, http(s), another path.
export function httpUrlBeside(webSocketUrl, path) {
  const match = /^(wss?):\/\/([^/?#]+)/i.exec(resolveUrl(webSocketUrl));
  if (!match) return path;
  return `${match[1].toLowerCase() === 'wss' ? 'https' : 'http'}://${match[2]}${path}`;
}

function withQuery(url, parameters) {
  const hash = url.indexOf('#');
  let base = hash >= 0 ? url.slice(0, hash) : url;
  for (const [name, value] of parameters) {
    if (value === undefined || value === null || value === '') continue;
    base += `${base.includes('?') ? '&' : '?'}${name}=${value}`;
  }
  return base;
}

// Close codes for HTTP statuses that end a fallback, so that the client
// treats a refused token like a WebSocket's 4001. A 401 after the fallback
// had been let in means the token ran out (a poll or POST after its `exp`):
// like the WebSocket's 4011, reconnect with a new token.
function closeCodeOfStatus(status, everAnswered) {
  if (status === 401) return everAnswered ? TOKEN_EXPIRED_CLOSE_CODE : 4001;
  if (status === 403) return 4003;
  return 1006;
}

// SSE or long-polling behind the WebSocket-like interface the client drives:
// send() takes the client's livecast.v1 requests and turns them into streams,
// polls and POSTs; what the server answers comes back through onmessage with
// the client's own request ids.
//
// Each stream, poll and POST carries the token of the moment: the client's
// token function is asked again for each (the first excepted: the client has
// just asked), so a session outlives the rotation of its token.
class HttpFallback {
  constructor(client, kind, token) {
    this.kind = kind;
    this.readyState = 0;
    this.onopen = this.onmessage = this.onclose = this.onerror = null;
    this._client = client;
    this._options = client.options;
    this._firstToken = { token };  // for the first request; later ones ask again
    this._everAnswered = false;    // whether the server has let a request of ours in
    const base = kind === 'sse' ? this._options.sseUrl : this._options.pollUrl;
    this._url = base || httpUrlBeside(client.url, kind === 'sse' ? '/sse' : '/poll');
    this._postUrl = this._options.pollUrl || httpUrlBeside(client.url, '/poll');
    // The topics the server should stream, in request order; ids 1..N of a
    // stream or poll refer to the list it was opened with.
    this._topics = client.subscriptions().filter((s) => !s.serverJoined).map((s) => s.topic);
    this._waiting = new Map();     // topic -> the client's subscribe id awaiting a reply
    this._unanswered = new Set();  // topics of the running stream whose reply has not come
    this._eventSource = null;
    this._streamOpening = null;    // {cancel}: a stream waiting for its token
    this._poll = null;             // {controller, topics, cancelToken} of the poll in flight
    this._restartTimer = null;
    this._closed = false;
    if (kind === 'sse' && this._topics.length > 0) this._openStream();
    else this._probe();
  }

  send(text) {
    if (this.readyState !== 1) throw new Error('livecast: send on a fallback that is not open');
    const message = JSON.parse(text);
    switch (message.op) {
      case 'subscribe':
        if (message.id !== undefined) this._waiting.set(message.topic, message.id);
        if (this._unanswered.has(message.topic)) return;  // the running stream answers it
        if (!this._topics.includes(message.topic)) this._topics.push(message.topic);
        this._scheduleRestart();
        return;
      case 'unsubscribe':
        this._topics = this._topics.filter((topic) => topic !== message.topic);
        this._waiting.delete(message.topic);
        this._unanswered.delete(message.topic);
        this._scheduleRestart();
        if (message.id !== undefined) this._later([{ id: message.id, ok: { topic: message.topic } }]);
        return;
      default:
        // publish and ping run on the server as they are.
        this._post(text);
    }
  }

  close() {
    if (this._closed) return;
    this._closed = true;
    this.readyState = 3;
    this._stopStream();
    this._stopPoll();
    if (this._restartTimer !== null) this._options.timers.clearTimeout(this._restartTimer);
    this._restartTimer = null;
  }

  // --- opening ---

  // With nothing to stream yet, a ping shows the endpoint answers.
  _probe() {
    this._withToken((token) => {
      this._request(urlWithToken(this._postUrl, token), { method: 'POST', body: '{"op":"ping"}' }).then((body) => {
        if (body === undefined || this._closed) return;
        this._opened();
        if (this._topics.length > 0) this._scheduleRestart();
      });
    });
  }

  // use(token) with the token for the next request, unless the fallback
  // closed meanwhile; a token function that throws or rejects ends the
  // fallback like a failed request. Returns a cancel function, or null.
  _withToken(use) {
    const first = this._firstToken;
    this._firstToken = null;
    const ask = first ? () => first.token : () => this._client._askToken();
    return obtainToken(ask, (token) => {
      if (!this._closed) use(token);
    }, (error) => this._fail(1006, `token function failed: ${messageOf(error)}`));
  }

  _opened() {
    if (this.readyState !== 0) return;
    this.readyState = 1;
    if (this.onopen) this.onopen({});
  }

  _fail(code, reason) {
    if (this._closed) return;
    this.close();
    if (this.onclose) this.onclose({ code, reason });
  }

  // For a failure inside the constructor, before the client set onclose.
  _failSoon(code, reason) {
    Promise.resolve().then(() => this._fail(code, reason));
  }

  // --- the subscription set ---

  // Debounced: subscribing to ten topics restarts the stream or poll once.
  _scheduleRestart() {
    if (this._restartTimer !== null || this._closed) return;
    this._restartTimer = this._options.timers.setTimeout(() => {
      this._restartTimer = null;
      if (this._closed) return;
      if (this.kind === 'sse') this._openStream();
      else this._startPoll();
    }, this._options.fallbackRestartDelayMs);
  }

  _cursor(topics) {
    return formatCursor(topics.map((topic) => ({ topic, position: this._client.getSubscription(topic)?.position })));
  }

  _target(topics, extra, token) {
    const recent = formatRecent(topics.map((topic) => this._client.getSubscription(topic))
      .filter((s) => s && s.recent && !s.position));
    return urlWithToken(withQuery(this._url, [
      ['topics', topics.map(encodeURIComponent).join(',')],
      ['cursor', encodeURIComponent(this._cursor(topics))],
      ...(recent ? [['recent', encodeURIComponent(recent)]] : []),
      ...extra,
    ]), token);
  }

  // A server message of a stream or poll opened with `topics`: its id, if
  // any, becomes the id of the client's waiting subscribe, or goes away so
  // that the client takes the reply as a notice.
  _deliver(message, topics) {
    if (message && typeof message === 'object' && ('ok' in message || 'error' in message) &&
        typeof message.id === 'number') {
      const topic = topics[message.id - 1];
      if (topic === undefined || !this._topics.includes(topic)) return;  // a set we have left
      this._unanswered.delete(topic);
      // A refused topic would be refused on every restart: drop it until the client asks again.
      if ('error' in message) this._topics = this._topics.filter((t) => t !== topic);
      const waiting = this._waiting.get(topic);
      this._waiting.delete(topic);
      if (waiting !== undefined) message.id = waiting;
      else delete message.id;
    }
    if (this.onmessage) this.onmessage({ data: JSON.stringify(message) });
  }

  // Replies made up locally, delivered after the call that caused them returns.
  _later(messages) {
    Promise.resolve().then(() => {
      if (this._closed) return;
      for (const message of messages) if (this.onmessage) this.onmessage({ data: JSON.stringify(message) });
    });
  }

  // --- SSE ---

  _openStream() {
    this._stopStream();
    const topics = [...this._topics];
    if (topics.length === 0) return;
    this._unanswered = new Set(topics);
    const opening = { cancel: null };
    this._streamOpening = opening;
    opening.cancel = this._withToken((token) => {
      if (this._streamOpening !== opening) return;
      this._streamOpening = null;
      this._startStream(topics, token);
    });
  }

  _startStream(topics, token) {
    const EventSource = this._options.EventSource;
    let eventSource;
    try {
      eventSource = new EventSource(this._target(topics, [], token));
    } catch (error) {
      this._failSoon(1006, messageOf(error));
      return;
    }
    this._eventSource = eventSource;
    eventSource.onopen = () => {
      if (this._eventSource !== eventSource) return;
      this._everAnswered = true;
      this._opened();
    };
    eventSource.onmessage = (event) => {
      if (this._eventSource !== eventSource) return;
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return;
      }
      this._deliver(message, topics);
    };
    eventSource.addEventListener('close', (event) => {
      if (this._eventSource !== eventSource) return;
      let info = {};
      try {
        info = JSON.parse(event.data);
      } catch { /* a close without details */ }
      this._fail(typeof info.code === 'number' ? info.code : 1006, info.reason || 'stream closed');
    });
    // EventSource would retry by itself, unseen; the client's own reconnect
    // (with back-off, and the fallback order when it never opened) decides instead.
    eventSource.onerror = () => {
      if (this._eventSource === eventSource) this._fail(1006, 'event stream failed');
    };
  }

  _stopStream() {
    const opening = this._streamOpening;
    this._streamOpening = null;
    if (opening && opening.cancel) opening.cancel();
    const eventSource = this._eventSource;
    this._eventSource = null;
    if (eventSource) {
      eventSource.onopen = eventSource.onmessage = eventSource.onerror = null;
      eventSource.close();
    }
  }

  // --- long-polling ---

  _startPoll() {
    this._stopPoll();
    const topics = [...this._topics];
    if (topics.length === 0) return;
    const controller = typeof AbortController === 'function' ? new AbortController() : null;
    const poll = { controller, topics, cancelToken: null };
    this._poll = poll;
    poll.cancelToken = this._withToken((token) => {
      if (this._poll === poll) this._runPoll(poll, token);
    });
  }

  _runPoll(poll, token) {
    const { controller, topics } = poll;
    const url = this._target(topics, [['timeout', this._options.pollTimeoutMs]], token);
    this._request(url, { method: 'GET', signal: controller?.signal }, poll).then((body) => {
      if (body === undefined || this._poll !== poll) return;
      this._poll = null;
      const answered = new Set();
      for (const message of Array.isArray(body.messages) ? body.messages : []) {
        if (message && typeof message.id === 'number' && ('ok' in message || 'error' in message)) {
          answered.add(topics[message.id - 1]);
        }
        this._deliver(message, topics);
      }
      // A poll leaves out replies that only confirm the cursor; the client
      // still waits for one, and its position is right as it is.
      for (const topic of topics) {
        const id = this._waiting.get(topic);
        const position = this._client.getSubscription(topic)?.position;
        if (id === undefined || answered.has(topic) || !position) continue;
        this._waiting.delete(topic);
        const reply = { id, ok: { topic, epoch: position.epoch, offset: position.offset, recovered: true } };
        if (this.onmessage) this.onmessage({ data: JSON.stringify(reply) });
        if (this._poll !== null || this._closed) return;  // the client moved on meanwhile
      }
      this._startPoll();
    });
  }

  _stopPoll() {
    const poll = this._poll;
    this._poll = null;
    if (poll && poll.cancelToken) poll.cancelToken();
    if (poll && poll.controller) poll.controller.abort();
  }

  // --- requests ---

  _post(text) {
    // A refused request (too large, malformed) answers that request only;
    // the connection stays.
    const refused = (status) => {
      if (status === 401 || status === 403) return false;
      let id;
      try {
        id = JSON.parse(text).id;
      } catch { /* no id to answer */ }
      const code = status === 413 ? 'message_too_large' : status === 400 ? 'bad_request' : 'backend_unavailable';
      if (id !== undefined) this._later([{ id, error: { code, message: `HTTP ${status}` } }]);
      return true;
    };
    this._withToken((token) => {
      this._request(urlWithToken(this._postUrl, token), { method: 'POST', body: text }, undefined, refused).then((body) => {
        if (body === undefined) return;
        for (const message of Array.isArray(body.messages) ? body.messages : []) {
          if (this.onmessage && !this._closed) this.onmessage({ data: JSON.stringify(message) });
        }
      });
    });
  }

  // Resolves with the JSON body, or undefined after failing the fallback (or
  // when `poll` was superseded meanwhile, or `refused(status)` took a
  // non-2xx answer and returned true).
  _request(url, init, poll, refused) {
    const superseded = () => this._closed || (poll !== undefined && this._poll !== poll);
    const headers = init.method === 'POST' ? { 'Content-Type': 'text/plain;charset=UTF-8' } : undefined;
    let request;
    try {
      request = Promise.resolve(this._options.fetch(url, { ...init, headers }));
    } catch (error) {
      request = Promise.reject(error);
    }
    return request.then(async (response) => {
      if (response.ok) this._everAnswered = true;
      if (superseded()) return undefined;
      if (!response.ok) {
        if (!refused || !refused(response.status)) {
          this._fail(closeCodeOfStatus(response.status, this._everAnswered), `HTTP ${response.status}`);
        }
        return undefined;
      }
      const body = await response.json();
      return superseded() ? undefined : (body || {});
    }).catch((error) => {
      if (!superseded()) this._fail(1006, String(error && error.message ? error.message : error));
      return undefined;
    });
  }
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
      EventSource: options.EventSource || globalThis.EventSource,
      fetch: options.fetch || (typeof globalThis.fetch === 'function' ? globalThis.fetch.bind(globalThis) : undefined),
      // Default: beside the WebSocket URL, same host, paths /sse and /poll.
      sseUrl: options.sseUrl,
      pollUrl: options.pollUrl,
      // While on a fallback, try the WebSocket again this often (±20 %); 0 never.
      upgradeIntervalMs: options.upgradeIntervalMs ?? 30000,
      // How long a transport that has opened before is retried (with back-off)
      // from its first failed reconnect before the next one is tried; see _keepRetrying.
      transportRetryMs: options.transportRetryMs ?? 10000,
      // How long a change of subscriptions waits before the stream or poll restarts.
      fallbackRestartDelayMs: options.fallbackRestartDelayMs ?? 50,
      // The `timeout` of each poll; undefined lets the server choose (25 s).
      pollTimeoutMs: options.pollTimeoutMs,
      // How long before the session's end to refresh; undefined: refreshMargin().
      refreshMarginMs: options.refreshMarginMs,
      // True: the token always goes in ?token=, never in the subprotocol list.
      tokenInQuery: options.tokenInQuery ?? false,
      // Unix ms; compared with a token's `exp` and a refresh reply's `expires_at`.
      now: options.now || (() => Date.now()),
    };
    const available = {
      websocket: typeof this.options.WebSocket === 'function',
      sse: typeof this.options.EventSource === 'function' && typeof this.options.fetch === 'function',
      poll: typeof this.options.fetch === 'function',
    };
    if (options.transports === undefined && !available.websocket) {
      throw new TypeError('livecast: no WebSocket constructor; pass one in options.WebSocket (or name the transports to use in options.transports)');
    }
    this._transports = (options.transports ?? TRANSPORTS).filter((name) => available[name]);
    if (this._transports.length === 0) {
      throw new TypeError(`livecast: none of the transports ${JSON.stringify(options.transports)} can run here; pass options.WebSocket, options.EventSource or options.fetch`);
    }
    this._transportIndex = 0;          // in _transports: the one in use or being tried
    this.transport = null;             // its name once a connection opens
    this._everOpened = false;          // whether the current connection attempt opened
    this._openedTransports = new Set(); // those that opened at least once in this client's life
    this._attemptStartedAt = null;     // now() when the current connection attempt began
    this._failingSince = null;         // when the first failed attempt on the current transport began (since it opened or was chosen)
    this._upgradeTimer = null;
    this._upgradeProbe = null;
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
    this._tokenWait = null;            // cancels the token open() waits for
    this._token = undefined;           // the token of the current connection (or its last refresh)
    this.expiresAt = null;             // when the server ends this WebSocket session unless refreshed (Unix ms)
    this._refreshTimer = null;
    this._refreshWait = null;          // cancels the token a refresh waits for
    this._upgradeTokenWait = null;     // cancels the token an upgrade probe waits for
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
  // options.recent ({count, seconds}, either or both): the first subscribe also
  // asks for the topic's recent publications, delivered oldest first before
  // the live ones, so that a chart starts full.
  subscribe(topic, onPublication, options = {}) {
    if (typeof topic !== 'string' || topic === '') throw new TypeError('livecast: topic must be a non-empty string');
    if (this._closed) throw new LivecastError('closed', 'livecast: the client is closed');
    if (this._subscriptions.has(topic)) throw new Error(`livecast: already subscribed to "${topic}"`);
    const subscription = new Subscription(this, topic, { recent: recentHistory(options.recent) });
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
    this._cancelTokenWait();
    this._stopWatchdog();
    this._cancelUpgrade();
    this._cancelRefresh();
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
    if (this._closed || this._ws || this._tokenWait) return;
    this._cancelReconnect();
    this._waitingForNetwork = false;
    const transport = this._transports[this._transportIndex];
    this._everOpened = false;
    this._attemptStartedAt = this.options.now();
    this._setState('connecting', { attempt: this.attempt, transport });
    this._tokenWait = obtainToken(() => this._askToken(), (token) => {
      this._cancelTokenWait();
      this._connectWith(transport, token);
    }, (error) => {
      this._cancelTokenWait();
      this._tokenUnavailable(transport, `token function failed: ${messageOf(error)}`);
    });
    // A provider that never answers counts as a failed attempt too.
    if (this._tokenWait && this.options.pingTimeoutMs > 0) {
      this._pingDeadline = this.options.timers.setTimeout(() => {
        this._pingDeadline = null;
        this._cancelTokenWait();
        this._tokenUnavailable(transport, 'token function timed out');
      }, this.options.pingTimeoutMs);
    }
  }

  // The token to connect or refresh with: the option, or what its function
  // gives now (a value or a promise; it may throw).
  _askToken() {
    const source = this.options.token;
    return typeof source === 'function' ? source() : source;
  }

  _cancelTokenWait() {
    const cancel = this._tokenWait;
    this._tokenWait = null;
    if (cancel) cancel();
    if (this._pingDeadline !== null) this.options.timers.clearTimeout(this._pingDeadline);
    this._pingDeadline = null;
  }

  // No token to connect with: a failed attempt (back-off), but not the
  // transport's fault, so no fallback to the next one.
  _tokenUnavailable(transport, reason) {
    if (this._closed) return;
    this._emit('error', new LivecastError('token_unavailable', `livecast: ${reason}`));
    this._scheduleReconnect({ code: 1006, reason, transport });
  }

  _connectWith(transport, token) {
    if (this._closed || this._ws) return;
    let ws;
    try {
      ws = transport === 'websocket' ? this._newWebSocket(token) : new HttpFallback(this, transport, token);
    } catch (error) {
      this._connectionLost(1006, messageOf(error));
      return;
    }
    this._ws = ws;
    this._token = token;
    // A handshake that never completes (a black-holed SYN) counts as a dead connection too.
    if (this.options.pingTimeoutMs > 0) {
      this._pingDeadline = this.options.timers.setTimeout(() => this._abandonSocket('connect timeout'), this.options.pingTimeoutMs);
    }
    ws.onopen = () => this._opened();
    ws.onmessage = (event) => this._receive(event.data);
    ws.onclose = (event) => this._connectionLost(event.code, event.reason);
    ws.onerror = () => {};  // onclose follows with the code
  }

  // The token goes in the subprotocol list where it can (out of URLs, and so
  // out of access logs), else in ?token=.
  _newWebSocket(token) {
    const url = resolveUrl(this.url);
    const { protocols } = this.options;
    const offered = !protocols ? [] : Array.isArray(protocols) ? protocols : [protocols];
    if (token !== undefined && offered.length > 0 && !this.options.tokenInQuery && SUBPROTOCOL_TOKEN.test(token)) {
      return new this.options.WebSocket(url, [...offered, BEARER_PROTOCOL_PREFIX + token]);
    }
    const withToken = urlWithToken(url, token);
    return protocols ? new this.options.WebSocket(withToken, protocols) : new this.options.WebSocket(withToken);
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
    this._everOpened = true;
    this._failingSince = null;
    this.transport = this._transports[this._transportIndex];
    this._openedTransports.add(this.transport);
    this._setState('connected', { attempt: this.attempt, transport: this.transport });
    this._resetWatchdog();
    this._scheduleUpgrade();
    for (const subscription of this._subscriptions.values()) {
      // A server-side join is renewed by the server on every connection.
      if (subscription.serverJoined) continue;
      this._clearRetry(subscription);
      this._sendSubscribe(subscription);
    }
    // Only a WebSocket can send `refresh`; the fallbacks ask the token
    // function for every request instead.
    if (this.transport === 'websocket') this._scheduleRefresh(tokenExpiresAt(this._token));
  }

  _sendSubscribe(subscription, reason) {
    const id = this._nextId++;
    const request = { op: 'subscribe', id, topic: subscription.topic };
    if (subscription.epoch !== null) request.recover = { epoch: subscription.epoch, offset: subscription.offset };
    else if (subscription.recent) request.recent = subscription.recent;
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
      case 'refresh':
        if ('error' in message) {
          // The session keeps its old end: the server closes it with 4011
          // then, and the reconnect asks the token function again.
          this._emit('error', new LivecastError(message.error?.code || 'unknown', message.error?.message));
        } else {
          this._token = request.token;
          const end = message.ok?.expires_at;
          // At least a second apart: with a clock far ahead of the server's
          // every end looks past, and a token function that mints a new token
          // each time would otherwise refresh in a tight loop.
          this._scheduleRefresh(typeof end === 'number' && Number.isFinite(end) ? end : null, 1000);
        }
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
      ws.onopen = ws.onmessage = ws.onclose = null;
      ws.onerror = ignoreErrors;
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
    this._cancelUpgrade();
    this._cancelRefresh();
    if (this._closed) return;
    this._failPending('disconnected', `livecast: connection closed (${code})`);
    for (const subscription of this._subscriptions.values()) {
      this._clearRetry(subscription);
      subscription._resyncing = false;
      // Server-joined topics too: the server renews them once we are back.
      subscription._setState('subscribing', { topic: subscription.topic, reason: 'reconnect' });
    }
    // An expired session reconnects with what the token function gives now;
    // a fixed token cannot work again.
    const expiredForGood = code === TOKEN_EXPIRED_CLOSE_CODE && typeof this.options.token !== 'function';
    if (!shouldReconnect(code) || expiredForGood) {
      const fallbackReason = expiredForGood ? 'token expired' : FINAL_CLOSE_CODES[code];
      this._setState('disconnected', { code, reason: reason || fallbackReason, willReconnect: false });
      return;
    }
    const failedTransport = this._transports[this._transportIndex];
    // The server asked to come back after a delay of its choosing: the
    // transport works, and this is no failure to back off from.
    const serverDelayMs = code === RECONNECT_AFTER_CLOSE_CODE ? reconnectAfterDelay(reason) : null;
    if (serverDelayMs !== null) {
      this.attempt = 0;
      this._scheduleReconnect({ code, reason, transport: failedTransport }, serverDelayMs);
      return;
    }
    if (this._everOpened) {
      // A connection that worked dropped: the same transport is retried first.
      this._scheduleReconnect({ code, reason: reason || '', transport: failedTransport });
      return;
    }
    if (this._keepRetrying(failedTransport)) {
      this._scheduleReconnect({ code, reason: reason || '', transport: failedTransport });
      return;
    }
    this._failingSince = null;
    if (this._transportIndex + 1 < this._transports.length) {
      // This transport cannot get through: try the next one at once.
      this._transportIndex++;
      this._setState('disconnected', {
        code, reason: reason || '', willReconnect: true, delayMs: 0,
        transport: failedTransport, fallback: this._transports[this._transportIndex],
      });
      this.open();
      return;
    }
    // Every transport failed: start over from the first after the back-off.
    this._transportIndex = 0;
    this._scheduleReconnect({ code, reason: reason || '', transport: failedTransport });
  }

  // Whether a failed attempt on `transport` is retried on it, with back-off,
  // rather than followed at once by the next transport.
  //
  // A transport that never opened in this client is taken as blocked (a proxy
  // that strips WebSocket upgrades): the next one is tried at once. One that
  // has opened before is not given up on one failure: after a server crash
  // every reconnect fails until the server is back, and a client that fell
  // through at once would stay on whichever fallback got in first (CI saw
  // long-polling win a few milliseconds after the WebSocket's refused retry)
  // until the next upgrade probe, 30 s later. So it is retried with the usual
  // back-off for transportRetryMs (10 s) from the start of its first failed
  // reconnect: a server back within that time is reached over the same
  // transport.
  //
  // The bound is for a transport that worked and is now blocked for good (the
  // device moved to a network whose proxy blocks WebSockets): the first failure
  // after the window falls through, so the fallback takes over within
  // transportRetryMs plus one back-off delay and one attempt, and the upgrade
  // probe returns to the WebSocket if it comes back. A time bound rather than a
  // count of failures caps that outage alike whether attempts fail at once (a
  // refused upgrade) or only at the connect timeout (a black hole: the window
  // counts from the start of the attempt, so one timeout fills it). Each
  // transport chosen anew (the next one, or the first again after all failed)
  // starts with no failures.
  _keepRetrying(transport) {
    if (!this._openedTransports.has(transport)) return false;
    const now = this.options.now();
    if (this._failingSince === null) this._failingSince = this._attemptStartedAt ?? now;
    return now - this._failingSince < this.options.transportRetryMs;
  }

  // --- going back to the WebSocket ---

  _scheduleUpgrade() {
    this._cancelUpgrade();
    const websocket = this._transports.indexOf('websocket');
    if (websocket < 0 || this._transportIndex === websocket || !(this.options.upgradeIntervalMs > 0)) return;
    const delay = this.options.upgradeIntervalMs * (0.8 + 0.4 * this.options.random());
    this._upgradeTimer = this.options.timers.setTimeout(() => this._probeWebSocket(), delay);
  }

  _cancelUpgrade() {
    if (this._upgradeTimer !== null) this.options.timers.clearTimeout(this._upgradeTimer);
    this._upgradeTimer = null;
    const cancel = this._upgradeTokenWait;
    this._upgradeTokenWait = null;
    if (cancel) cancel();
    const probe = this._upgradeProbe;
    this._upgradeProbe = null;
    if (probe) probeClose(probe);
  }

  _probeWebSocket() {
    this._upgradeTimer = null;
    if (this._closed || !this._isOpen()) return;
    this._upgradeTokenWait = obtainToken(() => this._askToken(), (token) => {
      this._upgradeTokenWait = null;
      if (!this._closed && this._isOpen()) this._openProbe(token);
    }, () => {
      this._upgradeTokenWait = null;
      this._scheduleUpgrade();
    });
  }

  _openProbe(token) {
    let probe;
    try {
      probe = this._newWebSocket(token);
    } catch {
      this._scheduleUpgrade();
      return;
    }
    this._upgradeProbe = probe;
    probe.onerror = () => {};
    probe.onclose = () => {
      if (this._upgradeProbe !== probe) return;
      this._upgradeProbe = null;
      this._scheduleUpgrade();
    };
    probe.onopen = () => {
      if (this._upgradeProbe !== probe) return;
      this._upgradeProbe = null;
      this._upgradeTo(probe, token);
    };
  }

  // The WebSocket opened beside the fallback: move over and resubscribe with
  // recovery; offsets already delivered are skipped, so nothing shows twice.
  _upgradeTo(ws, token) {
    const publishing = [...this._pending.values()].some((request) => request.kind === 'publish');
    if (publishing || !this._isOpen()) {
      // A publish's answer would be lost with the fallback: try again soon.
      probeClose(ws);
      if (this._isOpen()) this._upgradeTimer = this.options.timers.setTimeout(() => this._probeWebSocket(), 1000);
      return;
    }
    const fallback = this._detachSocket();
    if (fallback) fallback.close(1000, 'upgraded to websocket');
    this._pending.clear();
    this._stopWatchdog();
    this._transportIndex = this._transports.indexOf('websocket');
    this._ws = ws;
    this._token = token;
    ws.onmessage = (event) => this._receive(event.data);
    ws.onclose = (event) => this._connectionLost(event.code, event.reason);
    ws.onerror = () => {};
    ws.onopen = null;
    this._opened();
  }

  // --- refreshing the token before the session ends ---

  // Plans the refresh of a WebSocket session that ends at `end` (Unix ms; null:
  // no known end, nothing to do), not sooner than `atLeastMs` from now.
  _scheduleRefresh(end, atLeastMs = 0) {
    this._cancelRefresh();
    this.expiresAt = end;
    if (end === null) return;
    const remaining = end - this.options.now();
    const margin = this.options.refreshMarginMs ?? refreshMargin(remaining);
    this._refreshIn(Math.max(atLeastMs, remaining - margin), end);
  }

  _refreshIn(delayMs, end) {
    this._refreshTimer = this.options.timers.setTimeout(() => {
      this._refreshTimer = null;
      this._refresh(end);
    }, Math.max(0, delayMs));
  }

  // Asks the token function; a token other than the session's goes to the
  // server in a `refresh`, whose reply plans the next one.
  _refresh(end) {
    if (!this._isOpen() || this.transport !== 'websocket') return;
    const ws = this._ws;
    this._refreshWait = obtainToken(() => this._askToken(), (token) => {
      this._refreshWait = null;
      if (this._ws !== ws || !this._isOpen()) return;
      if (token === undefined || token === this._token) {
        this._refreshLater(end);
        return;
      }
      const id = this._nextId++;
      this._pending.set(id, { kind: 'refresh', token });
      this._send({ op: 'refresh', id, token });
    }, (error) => {
      this._refreshWait = null;
      if (this._ws !== ws) return;
      this._emit('error', new LivecastError('token_unavailable', `livecast: token function failed: ${messageOf(error)}`));
      this._refreshLater(end);
    });
  }

  // No new token yet (a provider that renews late): ask again halfway to the
  // end while two seconds or more are left, a handful of times at most.
  // After that the server closes with 4011 and the reconnect asks once more.
  _refreshLater(end) {
    const remaining = end - this.options.now();
    if (remaining >= 2000) this._refreshIn(remaining / 2, end);
  }

  _cancelRefresh() {
    if (this._refreshTimer !== null) this.options.timers.clearTimeout(this._refreshTimer);
    this._refreshTimer = null;
    const cancel = this._refreshWait;
    this._refreshWait = null;
    if (cancel) cancel();
    this.expiresAt = null;
  }

  // After `serverDelayMs` when the server named the delay (4012), else the back-off.
  _scheduleReconnect(info, serverDelayMs = null) {
    if (!this.options.isOnline()) {
      // No network: retrying only burns battery. The 'online' event resumes.
      this._waitingForNetwork = true;
      this._setState('disconnected', { ...info, willReconnect: true, offline: true });
      return;
    }
    const delayMs = serverDelayMs ?? backoffDelay(this.attempt, this.options);
    if (serverDelayMs === null) this.attempt++;
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
    if (this._closed || this._ws || this._tokenWait) return;
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

export default {
  connect, Client, Subscription, LivecastError, backoffDelay, shouldReconnect, formatCursor, httpUrlBeside,
  tokenExpiresAt, FINAL_CLOSE_CODES, PROTOCOL, TRANSPORTS, TOKEN_EXPIRED_CLOSE_CODE, BEARER_PROTOCOL_PREFIX,
  RECONNECT_AFTER_CLOSE_CODE, reconnectAfterDelay,
};
