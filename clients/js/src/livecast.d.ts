// Type declarations for @livecast/client (src/livecast.js), the livecast.v1 client.

export declare const PROTOCOL: 'livecast.v1';

/** Close codes after which the client does not reconnect, with a reason for each. */
export declare const FINAL_CLOSE_CODES: Readonly<Record<1003 | 1009 | 4001 | 4003, string>>;

/** Close code the client uses when it drops a connection that stopped answering. */
export declare const PING_TIMEOUT_CLOSE_CODE: 4000;

/**
 * Close code of a session whose token ran out with no `refresh` (also what a 401 from an HTTP
 * fallback that had been let in counts as). The client asks its token function again and reconnects;
 * with a fixed string token (or none) it is final, since that token cannot work again.
 */
export declare const TOKEN_EXPIRED_CLOSE_CODE: 4011;

/**
 * Close code of a server that drains or sheds sessions, with the reason `reconnect after <N> ms`
 * (also in an SSE stream's `event: close`). The client reconnects after exactly N ms instead of its
 * back-off and starts its attempt count afresh; a reason of another form gets the back-off.
 */
export declare const RECONNECT_AFTER_CLOSE_CODE: 4012;

/** N from a close reason `reconnect after <N> ms` (N up to an hour); null for anything else. */
export declare function reconnectAfterDelay(reason: unknown): number | null;

/** Prefix of the subprotocol entry that carries the token on a WebSocket: `livecast.bearer.<token>`. */
export declare const BEARER_PROTOCOL_PREFIX: 'livecast.bearer.';

/**
 * When a JWT's lifetime ends (Unix ms), from its payload's `exp`; null for a token that is not a JWT
 * or has no numeric `exp`. The signature is not checked (the server does that).
 */
export declare function tokenExpiresAt(token: unknown): number | null;

/** Delay before reconnect attempt `attempt` (from 0): random() * min(maxDelayMs, minDelayMs * 2^attempt). */
export declare function backoffDelay(
  attempt: number,
  bounds?: { minDelayMs?: number; maxDelayMs?: number; random?: () => number },
): number;

/** False for the close codes in FINAL_CLOSE_CODES. */
export declare function shouldReconnect(code: number): boolean;

/** Error codes the server sends (docs/protocol.md), plus those the client makes up itself. */
export type ErrorCode =
  | 'bad_request'
  | 'invalid_json'
  | 'unknown_op'
  | 'forbidden'
  | 'unauthorized'
  | 'too_many_subscriptions'
  | 'already_subscribed'
  | 'not_subscribed'
  | 'message_too_large'
  | 'rate_limited'
  | 'invalid_topic'
  | 'invalid_payload'
  | 'backend_unavailable'
  | 'shutting_down'
  | 'internal_error'
  /** client side: publish() while not connected */
  | 'not_connected'
  /** client side: the connection closed before the reply came */
  | 'disconnected'
  /** client side: close() was called */
  | 'closed'
  /** client side: the token function threw, rejected or did not answer within pingTimeoutMs */
  | 'token_unavailable'
  | (string & {});

export declare class LivecastError extends Error {
  constructor(code: ErrorCode, message?: string);
  readonly name: 'LivecastError';
  readonly code: ErrorCode;
}

/** The part of the WebSocket interface the client uses; browsers' and `ws`'s both fit. */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
}

export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

/** The part of the EventSource interface the client uses. */
export interface EventSourceLike {
  readonly readyState: number;
  close(): void;
  addEventListener(type: 'close', listener: (event: { data: string }) => void): void;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: string; lastEventId?: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
}

export type EventSourceConstructor = new (url: string) => EventSourceLike;

/** The part of fetch the client uses. */
export type FetchLike = (
  url: string,
  init: { method: string; body?: string; headers?: Record<string, string>; signal?: unknown },
) => Promise<{ ok: boolean; status: number; json(): Promise<any> }>;

/** How the client reaches the server: docs/protocol.md, "Transport" and "HTTP fallbacks". */
export type TransportName = 'websocket' | 'sse' | 'poll';

/** The default order of preference. */
export declare const TRANSPORTS: readonly TransportName[];

/** The cursor of docs/protocol.md; entries without a position are left out. */
export declare function formatCursor(positions: { topic: string; position: Position | null | undefined }[]): string;

/** The URL of `path` on the WebSocket URL's host, with http(s). */
export declare function httpUrlBeside(webSocketUrl: string, path: string): string;

export interface Timers {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** What a token function may give: a token, nothing (connect without one), or a promise of either. */
export type TokenResult = string | null | undefined;

/**
 * A token, or a function asked for one on every (re)connect, before a `refresh`, and before every SSE
 * stream, poll and POST of the HTTP fallbacks: return a cached token while it is good (and a new one
 * from `expiresAt - margin` on). Throwing or rejecting counts as a failed connection attempt.
 */
export type TokenSource = string | (() => TokenResult | PromiseLike<TokenResult>);

export interface ConnectOptions {
  /**
   * On a WebSocket the token goes in the subprotocol list as `livecast.bearer.<token>` when it is an
   * HTTP token (letters, digits and !#$%&'*+-.^_`|~: a JWT is), else in `?token=`; over SSE and
   * long-polling in `?token=`. With a fixed string, close code 4011 (token expired) is final.
   */
  token?: TokenSource;
  /** Always send the token in `?token=`, never in the subprotocol list (servers without the bearer entry). Default false. */
  tokenInQuery?: boolean;
  /**
   * How long before the session's end to send `refresh` (WebSocket only). Default: min(60 s, 10 % of
   * the lifetime left), at least 1 s.
   */
  refreshMarginMs?: number;
  /** The wall clock in Unix ms, compared with a token's `exp` and a refresh reply's `expires_at`. Default Date.now. */
  now?: () => number;
  /** Defaults to globalThis.WebSocket. */
  WebSocket?: WebSocketConstructor;
  /** Back-off ceiling of the first reconnect; doubles per attempt. Default 250. */
  minDelayMs?: number;
  /** Cap of the back-off ceiling. Default 15000. */
  maxDelayMs?: number;
  /** Silence after which a ping op is sent, and the limit on an opening handshake. Default 25000; 0 disables. */
  pingTimeoutMs?: number;
  /** How long to wait for anything after the ping before reconnecting. Default 10000. */
  pingReplyTimeoutMs?: number;
  /** On a gap, resubscribe with recover to fetch what was dropped (default true); false only reports it. */
  resubscribeOnGap?: boolean;
  /** Source of jitter in [0, 1). Default Math.random. */
  random?: () => number;
  /** Default: globalThis's setTimeout/clearTimeout. */
  timers?: Timers;
  /** Where 'online' events come from. Default globalThis when it has addEventListener; null for none. */
  eventTarget?: Pick<EventTarget, 'addEventListener' | 'removeEventListener'> | null;
  /** Whether the network is up. Default: navigator.onLine !== false. */
  isOnline?: () => boolean;
  /**
   * WebSocket subprotocols to offer. Default 'livecast.v1'; null (or []) offers none, and the token then
   * goes in `?token=`.
   */
  protocols?: string | string[] | null;
  /** Receives errors thrown by event listeners. Default: rethrown in a microtask. */
  onListenerError?: (error: unknown) => void;
  /**
   * Transports to try, in order, when one fails to open. Default ['websocket', 'sse', 'poll'] (those
   * that can run here; the default needs a WebSocket constructor).
   */
  transports?: TransportName[];
  /**
   * How long a transport that has opened before in this client is retried, with the usual back-off,
   * from the start of its first failed reconnect, before a failure falls through to the next one (a
   * transport that never opened falls through at once). Default 10000; 0 falls through on the first
   * failed reconnect.
   */
  transportRetryMs?: number;
  /** SSE endpoint. Default: the WebSocket URL's host with http(s) and path /sse. */
  sseUrl?: string;
  /** Long-polling endpoint (also takes publish and ping). Default: the WebSocket URL's host, path /poll. */
  pollUrl?: string;
  /** Defaults to globalThis.EventSource. */
  EventSource?: EventSourceConstructor;
  /** Defaults to globalThis.fetch. */
  fetch?: FetchLike;
  /** While on a fallback, how often (±20 %) to try the WebSocket again. Default 30000; 0 never. */
  upgradeIntervalMs?: number;
  /** How long a change of subscriptions waits before the SSE stream or the poll restarts. Default 50. */
  fallbackRestartDelayMs?: number;
  /** The `timeout` of each poll in ms. Default: the server's (25000). */
  pollTimeoutMs?: number;
}

export type ConnectionStateEvent =
  | { state: 'connecting'; attempt: number; transport: TransportName }
  | { state: 'connected'; attempt: number; transport: TransportName }
  | {
      state: 'disconnected';
      code: number;
      reason: string;
      willReconnect: boolean;
      /** The transport of the connection that ended or failed to open. */
      transport?: TransportName;
      /**
       * The transport tried next, at once, when the client gives up on that one: it never opened in
       * this client, or it did but its reconnects have failed for `transportRetryMs`.
       */
      fallback?: TransportName;
      /** When a reconnect is scheduled: the delay before it. */
      delayMs?: number;
      /** Reconnect attempts since the server last answered. */
      attempt?: number;
      /** True when reconnecting waits for the browser's 'online' event. */
      offline?: boolean;
    };

export type ConnectionState = ConnectionStateEvent['state'];

export interface Position {
  epoch: string;
  offset: number;
}

export interface PublicationMeta {
  topic: string;
  offset: number;
  epoch: string;
}

export type PublicationHandler<T = unknown> = (data: T, meta: PublicationMeta) => void;

export interface SubscribingEvent {
  topic: string;
  /** 'reconnect' after a lost connection, 'gap' when resubscribing to fill a gap. */
  reason?: 'reconnect' | 'gap';
}

export interface SubscribedEvent {
  topic: string;
  epoch: string;
  /** Offset of the last publication delivered, or the server's last offset when not recovered. */
  offset: number;
  /** True when the server replays exactly what was missed since the last position. */
  recovered: boolean;
  /** True when an earlier position was dropped (new epoch or history lost): a snapshot follows. */
  reset: boolean;
}

export interface UnsubscribedEvent {
  topic: string;
  reason: 'unsubscribed' | 'closed';
}

export interface SubscriptionErrorEvent {
  topic: string;
  error: LivecastError;
  /** True for transient errors (backend_unavailable, rate_limited): the client subscribes again. */
  willRetry: boolean;
}

export interface GapEvent {
  topic: string;
  expected: number;
  received: number;
  missing: number;
}

export type SubscriptionState = 'subscribing' | 'subscribed' | 'unsubscribed' | 'error';

export type SubscriptionStateEvent =
  | ({ state: 'subscribing' } & SubscribingEvent)
  | ({ state: 'subscribed' } & SubscribedEvent)
  | ({ state: 'unsubscribed' } & UnsubscribedEvent)
  | ({ state: 'error' } & SubscriptionErrorEvent);

export interface SubscriptionEvents<T = unknown> {
  subscribing: (event: SubscribingEvent) => void;
  subscribed: (event: SubscribedEvent) => void;
  unsubscribed: (event: UnsubscribedEvent) => void;
  error: (event: SubscriptionErrorEvent) => void;
  state: (event: SubscriptionStateEvent) => void;
  gap: (event: GapEvent) => void;
  publication: PublicationHandler<T>;
}

/**
 * Recent history a first subscribe asks for besides the latest value: the last `count` publications,
 * only those of the last `seconds` (either or both), within what the server's history keeps. They are
 * delivered oldest first, before the live ones, so that a chart opened now starts full.
 */
export interface RecentHistory {
  count?: number;
  seconds?: number;
}

export interface SubscribeOptions {
  recent?: RecentHistory;
}

export declare class Subscription<T = unknown> {
  readonly client: Client;
  readonly topic: string;
  readonly state: SubscriptionState;
  /** Epoch of the last subscribe reply; null before the first. */
  readonly epoch: string | null;
  /** Offset of the last publication delivered. */
  readonly offset: number;
  /** True for a topic the server subscribed this session to by itself. */
  readonly serverJoined: boolean;
  /** What the first subscribe asks for besides the latest value (SubscribeOptions.recent); null: nothing. */
  readonly recent: RecentHistory | null;
  /** {epoch, offset} sent as `recover` on the next subscribe; null before the first reply. */
  readonly position: Position | null;
  /** Returns a function that removes the listener. */
  on<E extends keyof SubscriptionEvents<T>>(event: E, listener: SubscriptionEvents<T>[E]): () => void;
  off<E extends keyof SubscriptionEvents<T>>(event: E, listener: SubscriptionEvents<T>[E]): void;
  unsubscribe(): void;
}

export interface PublishReply {
  topic: string;
  offset: number;
}

export interface ClientEvents {
  state: (event: ConnectionStateEvent) => void;
  /** The server subscribed this session to a topic by itself (a reply without id). */
  join: (subscription: Subscription) => void;
  /**
   * An error the server sent without an id (e.g. rate_limited), a refused `refresh` (the server's code,
   * e.g. unauthorized: the session ends at its old time with 4011), or `token_unavailable` when the
   * token function failed.
   */
  error: (error: LivecastError) => void;
}

export declare class Client {
  constructor(url: string, options?: ConnectOptions);
  readonly url: string;
  readonly state: ConnectionState;
  readonly connected: boolean;
  /** Reconnect attempts since the server last answered. */
  readonly attempt: number;
  /** The transport of the last connection that opened; null before the first. */
  readonly transport: TransportName | null;
  /**
   * When the server ends the current WebSocket session unless refreshed (Unix ms): from the token when
   * it is a JWT, then from each refresh reply. Null when unknown, when not connected, and on SSE or
   * long-polling.
   */
  readonly expiresAt: number | null;
  on<E extends keyof ClientEvents>(event: E, listener: ClientEvents[E]): () => void;
  off<E extends keyof ClientEvents>(event: E, listener: ClientEvents[E]): void;
  /** Throws if the topic is already subscribed. */
  subscribe<T = unknown>(topic: string, onPublication?: PublicationHandler<T>, options?: SubscribeOptions): Subscription<T>;
  getSubscription(topic: string): Subscription | undefined;
  subscriptions(): Subscription[];
  /** Resolves once the server stored the publication; rejects with a LivecastError. */
  publish(topic: string, data: unknown): Promise<PublishReply>;
  /** Connects now; connect() calls it. Use it to retry after a final close code (e.g. with a new token). */
  open(): void;
  /** Stops for good: closes the socket, rejects pending publishes, ends every subscription. */
  close(): void;
}

/** Creates a client and starts connecting; it reconnects by itself until close(). */
export declare function connect(url: string, options?: ConnectOptions): Client;

declare const livecast: {
  connect: typeof connect;
  Client: typeof Client;
  Subscription: typeof Subscription;
  LivecastError: typeof LivecastError;
  backoffDelay: typeof backoffDelay;
  shouldReconnect: typeof shouldReconnect;
  formatCursor: typeof formatCursor;
  httpUrlBeside: typeof httpUrlBeside;
  tokenExpiresAt: typeof tokenExpiresAt;
  FINAL_CLOSE_CODES: typeof FINAL_CLOSE_CODES;
  PROTOCOL: typeof PROTOCOL;
  TRANSPORTS: typeof TRANSPORTS;
  TOKEN_EXPIRED_CLOSE_CODE: typeof TOKEN_EXPIRED_CLOSE_CODE;
  BEARER_PROTOCOL_PREFIX: typeof BEARER_PROTOCOL_PREFIX;
  RECONNECT_AFTER_CLOSE_CODE: typeof RECONNECT_AFTER_CLOSE_CODE;
  reconnectAfterDelay: typeof reconnectAfterDelay;
};
export default livecast;
