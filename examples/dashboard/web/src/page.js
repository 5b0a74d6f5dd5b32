// The dashboard page without its connection: one org's tiles, charts, feed
// and alerts, drawn with uPlot. Publications only land in `state`; the DOM
// and the charts are touched once per animation frame, however many messages
// arrived since the last one. Each entry point connects it its own way:
// main.js with the livecast JS client (the default page, dist/dashboard.js),
// socketio.js with socket.io-client (/?client=socketio, dist/dashboard-socketio.js).
import uPlot from 'uplot';

const ROLES = ['admin', 'analyst', 'viewer'];
const ORGS = ['acme', 'globex'];
const CHART_WINDOW_S = 120;
const FEED_KEEP = 2000;        // transactions kept in memory; only the visible rows are in the DOM
const FEED_ROW_PX = 30;        // must match .feed-row's height in style.css
const FEED_OVERSCAN = 4;       // rows rendered above and below the viewport so fast scrolls show no holes
const ALERT_ROWS = 20;
const TREND_WINDOW_MS = 5000;

// --- who we are: the token in the URL, e.g. ?token=analyst-acme ---
const params = new URLSearchParams(location.search);
if (!params.get('token')) {
  params.set('token', 'analyst-acme');
  history.replaceState(null, '', `${location.pathname}?${params}`);
}
export const token = params.get('token');
const [role, ...orgParts] = token.split('-');
export const org = orgParts.join('-');
export const topic = (name) => `org:${org}:${name}`;
// The topics the page shows, besides the feed and the org's announcements.
export const TILE_TOPICS = ['kpi.revenue', 'kpi.tps', 'kpi.active_users', 'kpi.viewers', 'kpi.error_rate', 'alerts'];
// Topics drawn as two-minute charts: asked with recent history on subscribe,
// so a page opened now draws the last two minutes at once. The latency
// percentiles are the Aggregator's 1 s summaries, which viewers may not read.
export const CHART_TOPICS = ['kpi.tps', 'kpi.revenue'];
export const LATENCY_TOPIC = 'agg.latency_ms.1s';
export const CHART_RECENT = { seconds: CHART_WINDOW_S };
const $ = (id) => document.getElementById(id);

// What the end-to-end test (tests/browser) reads: per-topic delivery order,
// subscribe replies and indicator states, so it can prove "no gap, no
// duplicate" across a server restart without scraping the DOM.
export const debug = {
  protocol: null,     // 'livecast.v1' or 'socket.io'
  events: {},         // topic -> publications received, either protocol
  offsets: {},        // topic -> [{epoch, offset}] in delivery order (livecast.v1: socket.io events carry none)
  subscribed: {},     // topic -> [{epoch, offset, recovered, reset}] (socket.io: the subscribe acks)
  states: [],         // [{state, transport, at}] as shown by the indicator
  firstKpiMs: null,   // performance.now() when a KPI value first reached the DOM
  charts: {},         // chart -> {points, spanS, drawnMs, fullMs}: its last draw, and its first full one (performance.now())
  kpiUpdates: 0,
  frames: 0,          // render() calls: far fewer than publications, since they are batched
  transport: null,
  config: null,
};
window.__livecast = debug;

// --- state: written by message handlers, read by render() ---
const state = {
  connection: { state: 'connecting', transport: null },
  kpi: {},
  history: {},        // kpi name -> [{t, v}] for trend arrows
  // uPlot's [xs in seconds, ys...]: one x per window start, a y per series.
  series: { tps: [[], []], revenue: [[], []], latency: [[], [], [], []] },
  latencyStatus: null,  // why the latency chart is empty: 'forbidden', 'unavailable'
  feed: [],           // newest first
  feedAdded: 0,       // rows added since the last frame (to keep a scrolled view steady)
  feedStatus: { state: 'subscribing' },
  alerts: [],
  announcement: null,
  metrics: null,
  stats: { messages: 0, perSecond: 0, gaps: 0, reconnects: 0 },
};
const dirty = new Set();
let frameRequested = false;

function invalidate(...parts) {
  for (const part of parts) dirty.add(part);
  if (!frameRequested) {
    frameRequested = true;
    requestAnimationFrame(render);
  }
}

// --- formatting ---
const currencyFormats = new Map();
function money(value, currency, digits = 2) {
  const key = `${currency}/${digits}`;
  if (!currencyFormats.has(key)) {
    currencyFormats.set(key, new Intl.NumberFormat('en-US', {
      style: 'currency', currency, minimumFractionDigits: digits, maximumFractionDigits: digits,
    }));
  }
  return currencyFormats.get(key).format(value);
}
const integer = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
const compact = new Intl.NumberFormat('en-US', { notation: 'compact', maximumFractionDigits: 1 });
const percent = (ratio, digits = 2) => `${(ratio * 100).toFixed(digits)}%`;
const clock = (ts) => {
  const d = new Date(ts);
  return `${d.toLocaleTimeString('en-GB', { hour12: false })}.${String(d.getMilliseconds()).padStart(3, '0')}`;
};

// --- the page's fixed parts ---
$('org-name').textContent = org ? org[0].toUpperCase() + org.slice(1) : 'no org';
$('principal').textContent = `${role}@${org}`;
$('feed-topic').textContent = topic('transactions');
{
  const switcher = $('token-switcher');
  for (const o of ORGS) {
    const group = document.createElement('div');
    group.className = 'token-group';
    const label = document.createElement('span');
    label.className = 'token-org';
    label.textContent = o;
    group.append(label);
    for (const r of ROLES) {
      const link = document.createElement('a');
      // Other parameters (?client=socketio) stay as they are.
      const query = new URLSearchParams(params);
      query.set('token', `${r}-${o}`);
      link.href = `?${query}`;
      link.textContent = r;
      link.dataset.token = `${r}-${o}`;
      if (`${r}-${o}` === token) link.setAttribute('aria-current', 'page');
      group.append(link);
    }
    switcher.append(group);
  }
}

// --- charts ---
function makeChart(element, colors, format, axisSize = 56) {
  const style = getComputedStyle(document.documentElement);
  const grid = { stroke: 'rgba(255,255,255,0.06)', width: 1 };
  const axis = { stroke: style.getPropertyValue('--muted').trim() || '#7d8799', grid, ticks: grid };
  return new uPlot({
    width: Math.max(200, element.clientWidth - 16),
    height: 200,
    legend: { show: false },
    cursor: { show: true, drag: { x: false, y: false } },
    // The x range grows with the data up to the window, then slides. It is
    // taken from the data itself: for a lone point uPlot would offer a day.
    scales: {
      x: {
        time: true,
        range: (u) => {
          const xs = u.data[0];
          const max = xs.length ? xs[xs.length - 1] : Date.now() / 1000;
          const span = xs.length ? Math.min(CHART_WINDOW_S, Math.max(10, max - xs[0])) : 10;
          return [max - span, max];
        },
      },
      y: { range: (u, min, max) => [0, max > 0 ? max * 1.15 : 1] },
    },
    axes: [axis, { ...axis, size: axisSize, values: (u, ticks) => ticks.map(format) }],
    // One series fills its area; several (percentiles) are lines only.
    series: [{}, ...colors.map((color) => ({
      stroke: color, width: 2, fill: colors.length === 1 ? `${color}22` : undefined, points: { show: false },
    }))],
  }, [[], ...colors.map(() => [])], element);
}
const charts = {
  tps: makeChart($('chart-tps'), ['#4f9cf9'], (v) => compact.format(v)),
  revenue: makeChart($('chart-revenue'), ['#34d399'], (v) => compact.format(v)),
  latency: makeChart($('chart-latency'), ['#4f9cf9', '#f5b94f', '#f06a6a'], (v) => `${integer.format(v)} ms`, 76),
};
new ResizeObserver(() => invalidate('resize')).observe($('chart-tps'));

function addPoint(name, tsMs, ...values) {
  const [xs, ...ys] = state.series[name];
  const x = tsMs / 1000;
  // A snapshot after a reconnect may repeat the last point; keep x increasing.
  if (xs.length && x <= xs[xs.length - 1]) return;
  xs.push(x);
  ys.forEach((series, i) => series.push(values[i]));
  const oldest = x - CHART_WINDOW_S;
  let drop = 0;
  while (drop < xs.length && xs[drop] < oldest) drop++;
  if (drop) {
    xs.splice(0, drop);
    for (const series of ys) series.splice(0, drop);
  }
}

function remember(key, t, v) {
  const series = (state.history[key] ??= []);
  series.push({ t, v });
  while (series.length > 2 && series[0].t < t - TREND_WINDOW_MS * 2 - 1000) series.shift();
}

// --- data in: the entry point connects and calls these ---

// Where to connect: the server's /config.json names its host and port (an
// older server has none: then the page's own host). The server only sees its
// own plain-HTTP side; behind a TLS proxy an http: or ws: URL would be
// blocked as mixed content, so the page's scheme is followed and only the
// host taken from the server.
export async function loadConfig() {
  let config = null;
  try {
    const response = await fetch('/config.json', { cache: 'no-store' });
    if (response.ok) config = await response.json();
  } catch { /* an older server without /config.json: use the defaults */ }
  debug.config = config;
  let host = location.host;
  try {
    if (config?.url) host = new URL(config.url).host;
  } catch { /* a malformed URL: stay on the page's host */ }
  return { config, host, secure: location.protocol === 'https:' };
}

// The protocol named in the footer.
let protocolName = 'livecast.v1';
export function setProtocol(name) {
  protocolName = name;
  debug.protocol = name;
}

// A connection state in the livecast client's terms: {state: 'connecting' |
// 'connected' | 'disconnected', transport, willReconnect, delayMs, attempt,
// code, reason}, and `via`, what the indicator says the connection runs
// over (default: the transport).
let everConnected = false;
export function showConnection(event) {
  let shown = event.state;
  if (event.state === 'connecting' && everConnected) shown = 'reconnecting';
  if (event.state === 'disconnected' && event.willReconnect) shown = 'reconnecting';
  if (event.state === 'connected') {
    if (everConnected) state.stats.reconnects++;
    everConnected = true;
  }
  // Transports other than the WebSocket report themselves; older clients do not.
  const connected = event.state === 'connected';
  const transport = connected ? (event.transport ?? 'websocket') : state.connection.transport;
  const via = connected ? (event.via ?? transport) : state.connection.via;
  state.connection = { state: shown, transport, via, code: event.code, reason: event.reason,
                       retryAt: event.delayMs !== undefined ? Date.now() + event.delayMs : undefined,
                       attempt: event.attempt };
  debug.transport = transport;
  debug.states.push({ state: shown, transport, at: performance.now() });
  invalidate('connection', 'feed');
}

// One publication of `name`, at `offset` where the protocol tells it.
export function publication(name, data, offset) {
  state.stats.messages++;
  debug.events[name] = (debug.events[name] ?? 0) + 1;
  receive(name, data, offset);
}

// Why the latency chart cannot be drawn (its subscribe's error code), or
// null once it can.
export function showLatencyStatus(code) {
  state.latencyStatus = code;
  invalidate('charts');
}

export function countGap() {
  state.stats.gaps++;
}

// The feed's subscription: {state: 'subscribing' | 'live' | 'forbidden' |
// 'error', resumed, reset, code, willRetry}.
export function showFeedStatus(status) {
  state.feedStatus = status;
  invalidate('feed');
}
export const reconnects = () => state.stats.reconnects;

function receive(name, data, offset) {
  if (name === `org:${org}`) {
    state.announcement = { ...data, offset };
    invalidate('announcement');
    return;
  }
  switch (name.slice(topic('').length)) {
    case 'kpi.revenue':
      state.kpi.revenue = data;
      remember('revenue', data.ts, data.per_second);
      addPoint('revenue', data.ts, data.per_second);
      invalidate('kpi', 'charts');
      break;
    case 'kpi.tps':
      state.kpi.tps = data;
      remember('tps', data.ts, data.value);
      addPoint('tps', data.ts, data.value);
      invalidate('kpi', 'charts');
      break;
    case 'kpi.active_users':
      state.kpi.users = data;
      remember('users', data.ts, data.value);
      invalidate('kpi');
      break;
    case 'kpi.viewers':
      // Presence: dashboards open for this organisation on every instance.
      state.kpi.viewers = data;
      invalidate('kpi');
      break;
    case LATENCY_TOPIC:
      // A window with no payment has null percentiles: a gap in the lines.
      addPoint('latency', data.start, data.p50, data.p95, data.p99);
      invalidate('charts');
      break;
    case 'kpi.error_rate':
      state.kpi.errors = data;
      remember('errors', data.ts, data.value);
      invalidate('kpi');
      break;
    case 'transactions':
      state.feed.unshift(data);
      state.feedAdded++;
      if (state.feed.length > FEED_KEEP) state.feed.length = FEED_KEEP;
      invalidate('feed');
      break;
    case 'alerts':
      if (state.alerts.some((a) => a.id === data.id)) break;
      state.alerts.unshift(data);
      state.alerts.sort((a, b) => b.ts - a.ts);
      if (state.alerts.length > ALERT_ROWS) state.alerts.length = ALERT_ROWS;
      invalidate('alerts');
      break;
  }
}

// Admins also see the broker's own counters.
if (role === 'admin') {
  $('server-panel').hidden = false;
  const poll = async () => {
    try {
      const response = await fetch(`/admin/metrics.json?token=${encodeURIComponent(token)}`, { cache: 'no-store' });
      if (response.ok) {
        state.metrics = await response.json();
        invalidate('metrics');
      }
    } catch { /* the connection indicator already tells */ }
  };
  poll();
  setInterval(poll, 2000);
}

// The message rate and the reconnect countdown change without new messages.
let rateSince = performance.now();
let rateCount = 0;
setInterval(() => {
  const now = performance.now();
  state.stats.perSecond = ((state.stats.messages - rateCount) * 1000) / (now - rateSince);
  rateCount = state.stats.messages;
  rateSince = now;
  invalidate('stats', 'connection');
}, 1000);

function renderCharts() {
  const now = performance.now();
  for (const [name, chart] of Object.entries(charts)) {
    const data = state.series[name];
    chart.setData(data);
    const xs = data[0];
    const spanS = xs.length ? xs[xs.length - 1] - xs[0] : 0;
    // Full: the whole window drawn (one point a second from one end to the other).
    const fullMs = debug.charts[name]?.fullMs ?? (spanS >= CHART_WINDOW_S - 5 ? now : null);
    debug.charts[name] = { points: xs.length, spanS, drawnMs: now, fullMs };
  }
  const status = $('latency-status');
  const note = state.latencyStatus === 'forbidden' ? 'analysts and admins only'
    : state.latencyStatus ? `unavailable (${state.latencyStatus})` : 'p50 · p95 · p99 per second, last 2 minutes';
  if (status.textContent !== note) status.textContent = note;
  $('latency-panel').dataset.state = state.latencyStatus ?? 'live';
}

// --- DOM out, once per frame ---
function render() {
  frameRequested = false;
  debug.frames++;
  if (dirty.has('connection')) renderConnection();
  if (dirty.has('kpi')) renderKpis();
  if (dirty.has('resize')) {
    for (const [name, chart] of Object.entries(charts)) {
      chart.setSize({ width: Math.max(200, $(`chart-${name}`).clientWidth - 16), height: 200 });
    }
  }
  if (dirty.has('charts')) renderCharts();
  if (dirty.has('feed') || dirty.has('feed-scroll')) renderFeed();
  if (dirty.has('alerts')) renderAlerts();
  if (dirty.has('announcement')) renderAnnouncement();
  if (dirty.has('metrics')) renderMetrics();
  if (dirty.has('stats')) renderStats();
  dirty.clear();
}

function renderConnection() {
  const s = state.connection;
  const element = $('connection');
  element.dataset.state = s.state;
  element.dataset.transport = s.transport ?? '';
  let text;
  switch (s.state) {
    case 'connected': text = 'Connected'; break;
    case 'connecting': text = 'Connecting…'; break;
    case 'reconnecting': {
      const seconds = s.retryAt ? Math.max(0, Math.ceil((s.retryAt - Date.now()) / 1000)) : 0;
      text = seconds > 0 ? `Reconnecting in ${seconds}s` : 'Reconnecting…';
      break;
    }
    default:
      text = `Disconnected${s.reason ? `: ${s.reason}` : ''}${s.code ? ` (${s.code})` : ''}`;
  }
  $('connection-text').textContent = text;
  $('connection-transport').textContent = s.state === 'connected' && s.via ? `via ${s.via}` : '';
  $('footer-transport').textContent = `${protocolName}${s.transport ? ` over ${s.transport}` : ''}`;
  element.title = s.attempt ? `attempt ${s.attempt}` : '';
}

// An arrow comparing the mean of the last TREND_WINDOW_MS with the mean of
// the window before it: steadier than comparing two noisy samples.
function trend(key, upIsGood = true) {
  const series = state.history[key];
  if (!series || series.length < 4) return { arrow: '', cls: 'flat' };
  const end = series[series.length - 1].t;
  const mean = (from, to) => {
    const points = series.filter((p) => p.t > from && p.t <= to);
    return points.length ? points.reduce((sum, p) => sum + p.v, 0) / points.length : undefined;
  };
  const now = mean(end - TREND_WINDOW_MS, end);
  const before = mean(end - 2 * TREND_WINDOW_MS, end - TREND_WINDOW_MS);
  if (now === undefined || before === undefined) return { arrow: '', cls: 'flat' };
  const change = (now - before) / (Math.abs(before) || 1);
  if (Math.abs(change) < 0.02) return { arrow: '→', cls: 'flat', change };
  const up = change > 0;
  return { arrow: up ? '▲' : '▼', cls: up === upIsGood ? 'good' : 'bad', change };
}

function setTile(id, value, detail, t, alarm = false) {
  const tile = $(id);
  tile.querySelector('[data-field="value"]').textContent = value;
  tile.querySelector('[data-field="detail"]').textContent = detail;
  const arrow = tile.querySelector('[data-field="trend"]');
  arrow.textContent = t.arrow ? `${t.arrow} ${Math.abs((t.change ?? 0) * 100).toFixed(1)}%` : '';
  arrow.className = `trend ${t.cls}`;
  tile.classList.toggle('alarm', alarm);
}

function renderKpis() {
  const { revenue, tps, users, errors } = state.kpi;
  if (revenue) {
    setTile('tile-revenue', money(revenue.total, revenue.currency, 0),
            `${money(revenue.per_second, revenue.currency)} / s`, trend('revenue'));
    $('revenue-currency').textContent = `${revenue.currency}, last 2 minutes`;
  }
  if (tps) setTile('tile-tps', integer.format(tps.value), 'last second', trend('tps'));
  if (users) {
    const viewers = state.kpi.viewers ? ` · ${integer.format(state.kpi.viewers.value)} watching live` : '';
    setTile('tile-users', integer.format(users.value), `signed in now${viewers}`, trend('users'));
  }
  if (errors) {
    const detail = `threshold ${percent(errors.threshold, 1)} · ${errors.window_s}s window`;
    setTile('tile-errors', percent(errors.value), detail, trend('errors', false), errors.value > errors.threshold);
  }
  if (revenue || tps || users || errors) {
    debug.kpiUpdates++;
    if (debug.firstKpiMs === null) {
      // Time origin is the navigation start, so this is load-to-first-KPI.
      debug.firstKpiMs = performance.now();
      performance.mark('livecast:first-kpi');
    }
  }
}

// One row element per visible slot; a row is reused for whichever
// transaction scrolls into its slot, so the DOM stays a few dozen nodes.
const rowPool = [];
function feedRow() {
  const row = document.createElement('div');
  row.className = 'feed-row';
  row.setAttribute('role', 'listitem');
  const cells = ['time', 'id', 'merchant', 'method muted', 'num', 'status'].map((cls) => {
    const cell = document.createElement('span');
    cell.className = cls;
    row.append(cell);
    return cell;
  });
  const badge = document.createElement('span');
  cells[5].append(badge);
  row.cells = cells;
  row.badge = badge;
  return row;
}

function fillRow(row, tx, index, fresh) {
  if (row.tx !== tx) {
    row.tx = tx;
    row.cells[0].textContent = clock(tx.ts);
    row.cells[1].textContent = tx.id;
    row.cells[2].textContent = tx.merchant;
    row.cells[3].textContent = String(tx.method).replace('_', ' ');
    row.cells[4].textContent = money(tx.amount, tx.currency);
    row.badge.className = `badge ${tx.status}`;
    row.badge.textContent = tx.status;
    row.classList.toggle('new', fresh);
  }
  row.style.transform = `translateY(${index * FEED_ROW_PX}px)`;
}

function renderFeed() {
  const s = state.feedStatus;
  const blocked = s.state === 'forbidden';
  $('feed-blocked').hidden = !blocked;
  $('feed-error-code').textContent = s.code ?? 'forbidden';
  const online = state.connection.state === 'connected';
  const label = { subscribing: 'subscribing…', live: s.resumed ? 'live · resumed' : 'live',
                  forbidden: 'not permitted', error: `error: ${s.code}` }[s.state];
  $('feed-status').textContent = online || blocked ? label : 'offline';
  $('feed-status').dataset.state = online || blocked ? s.state : 'offline';
  if (blocked) {
    // Not hidden but gone: nothing of the feed stays in the DOM for this role.
    $('feed')?.remove();
    state.feed = [];
    return;
  }

  const viewport = $('feed-viewport');
  if (!viewport) return;
  // While the user reads further down, keep the same rows under their eyes.
  if (state.feedAdded && viewport.scrollTop > 0) viewport.scrollTop += state.feedAdded * FEED_ROW_PX;
  const fresh = state.feedAdded;
  state.feedAdded = 0;
  $('feed-spacer').style.height = `${state.feed.length * FEED_ROW_PX}px`;
  const first = Math.max(0, Math.floor(viewport.scrollTop / FEED_ROW_PX) - FEED_OVERSCAN);
  const last = Math.min(state.feed.length,
                        Math.ceil((viewport.scrollTop + viewport.clientHeight) / FEED_ROW_PX) + FEED_OVERSCAN);
  const count = Math.max(0, last - first);
  const rows = $('feed-rows');
  while (rowPool.length < count) rows.append(rowPool[rowPool.push(feedRow()) - 1]);
  while (rowPool.length > count) rowPool.pop().remove();
  for (let i = 0; i < count; i++) fillRow(rowPool[i], state.feed[first + i], first + i, first + i < fresh);
}

function renderAlerts() {
  const list = $('alerts');
  list.replaceChildren(...state.alerts.map((alert) => {
    const item = document.createElement('li');
    item.className = `alert ${alert.severity}`;
    const icon = document.createElement('span');
    icon.className = 'alert-icon';
    icon.textContent = alert.severity === 'resolved' ? '✓' : '!';
    const text = document.createElement('div');
    const message = document.createElement('div');
    message.className = 'alert-message';
    message.textContent = alert.message;
    const meta = document.createElement('div');
    meta.className = 'alert-meta';
    meta.textContent = `${alert.severity} · ${String(alert.kind).replace('_', ' ')} · ${clock(alert.ts).slice(0, 8)}`;
    text.append(message, meta);
    item.append(icon, text);
    return item;
  }));
  $('alerts-empty').hidden = state.alerts.length > 0;
  const open = state.alerts.length > 0 && state.alerts[0].severity === 'critical';
  const count = state.alerts.length;
  $('alerts-count').textContent = count === 0 ? 'none' : open ? 'firing' : `${count} recent`;
  $('alerts-count').dataset.state = open ? 'firing' : '';
}

function renderAnnouncement() {
  const a = state.announcement;
  const banner = $('announcement');
  if (!a) {
    banner.hidden = true;
    return;
  }
  banner.hidden = false;
  banner.dataset.kind = a.kind;
  banner.textContent = `${a.kind === 'incident' ? '⚠ ' : a.kind === 'incident_resolved' ? '✓ ' : ''}${a.message}` +
    ` · ${clock(a.ts).slice(0, 8)}`;
}

function renderMetrics() {
  const m = state.metrics;
  const rows = [
    ['Sessions', m.sessions_active], ['Subscriptions', m.subscriptions_active],
    ['Publications', m.publications], ['Deliveries', m.deliveries],
    ['Dropped', m.dropped], ['Errors sent', m.errors_sent],
  ];
  $('server-metrics').replaceChildren(...rows.flatMap(([name, value]) => {
    const dt = document.createElement('dt');
    dt.textContent = name;
    const dd = document.createElement('dd');
    dd.textContent = compact.format(value);
    dd.title = integer.format(value);
    return [dt, dd];
  }));
}

function renderStats() {
  const s = state.stats;
  $('client-stats').textContent =
    `${integer.format(s.perSecond)} msg/s · ${integer.format(s.messages)} received · ` +
    `${s.gaps} gaps · ${s.reconnects} reconnects`;
}
