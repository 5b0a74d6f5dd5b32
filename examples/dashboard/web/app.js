// The dashboard: subscribes to one org's topics and renders them. Messages
// only update `state`; the DOM is touched once per animation frame, however
// many publications arrived since the last one.
import { LivecastConnection } from './connection.js';
import { TimeSeriesChart } from './chart.js';

const ROLES = ['admin', 'analyst', 'viewer'];
const ORGS = ['acme', 'globex'];
const FEED_ROWS = 50;
const ALERT_ROWS = 20;
const TREND_WINDOW_MS = 5000;

// --- who we are: the token in the URL, e.g. ?token=analyst-acme ---
const params = new URLSearchParams(location.search);
if (!params.get('token')) {
  params.set('token', 'analyst-acme');
  history.replaceState(null, '', `${location.pathname}?${params}`);
}
const token = params.get('token');
const [role, ...orgParts] = token.split('-');
const org = orgParts.join('-');
const topic = (name) => `org:${org}:${name}`;

const state = {
  connection: { state: 'connecting' },
  kpi: {},              // topic suffix -> latest data
  history: {},          // topic suffix -> [{t, v}] for trend arrows
  feed: [],             // newest first, at most FEED_ROWS
  feedNew: [],          // arrived since the last frame, newest first
  feedStatus: { state: 'subscribing' },
  alerts: [],           // newest first
  announcement: null,
  metrics: null,
  rate: { count: 0, perSecond: 0, since: performance.now() },
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
const $ = (id) => document.getElementById(id);

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
      link.href = `?token=${r}-${o}`;
      link.textContent = r;
      if (`${r}-${o}` === token) link.setAttribute('aria-current', 'page');
      group.append(link);
    }
    switcher.append(group);
  }
}

const charts = {
  tps: new TimeSeriesChart($('chart-tps'), { color: '#4f9cf9', format: (v) => compact.format(v) }),
  revenue: new TimeSeriesChart($('chart-revenue'), { color: '#34d399', format: (v) => compact.format(v) }),
};

// --- data in ---
const connection = new LivecastConnection(
  `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws?token=${encodeURIComponent(token)}`,
  {
    onStatus(status) {
      state.connection = status;
      invalidate('connection');
    },
    onSubscribed(name, info) {
      if (name === topic('transactions')) {
        // "resumed": a reconnect recovered what was missed, without a gap.
        state.feedStatus = { state: 'live', resumed: info.recovered && connection.stats.reconnects > 0 };
        invalidate('feed');
      }
    },
    onSubscribeError(name, code, message) {
      if (name === topic('transactions')) {
        state.feedStatus = { state: code === 'forbidden' ? 'forbidden' : 'error', code, message };
        invalidate('feed');
      }
    },
    onPublication(name, data, offset) {
      state.rate.count++;
      receive(name, data, offset);
    },
  });

function remember(key, t, v) {
  const series = (state.history[key] ??= []);
  series.push({ t, v });
  while (series.length > 2 && series[0].t < t - TREND_WINDOW_MS * 2 - 1000) series.shift();
}

function receive(name, data, offset) {
  if (name === `org:${org}`) {
    state.announcement = { ...data, offset };
    invalidate('announcement');
    return;
  }
  const suffix = name.slice(topic('').length);
  switch (suffix) {
    case 'kpi.revenue':
      state.kpi.revenue = data;
      remember('revenue', data.ts, data.per_second);
      charts.revenue.add(data.ts, data.per_second);
      invalidate('kpi', 'charts');
      break;
    case 'kpi.tps':
      state.kpi.tps = data;
      remember('tps', data.ts, data.value);
      charts.tps.add(data.ts, data.value);
      invalidate('kpi', 'charts');
      break;
    case 'kpi.active_users':
      state.kpi.users = data;
      remember('users', data.ts, data.value);
      invalidate('kpi');
      break;
    case 'kpi.error_rate':
      state.kpi.errors = data;
      remember('errors', data.ts, data.value);
      invalidate('kpi');
      break;
    case 'transactions':
      state.feedNew.unshift(data);
      if (state.feedNew.length > FEED_ROWS) state.feedNew.length = FEED_ROWS;
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

// Charts, feed and alerts start filled from the server's history; two
// minutes of KPIs at two per second is 240 publications.
connection.subscribe(topic('kpi.revenue'), { backfill: 240 });
connection.subscribe(topic('kpi.tps'), { backfill: 240 });
connection.subscribe(topic('kpi.active_users'), { backfill: 20 });
connection.subscribe(topic('kpi.error_rate'), { backfill: 20 });
connection.subscribe(topic('transactions'), { backfill: FEED_ROWS });
connection.subscribe(topic('alerts'), { backfill: ALERT_ROWS });
connection.connect();

// Admins also see the broker's own counters.
if (role === 'admin') {
  $('server-panel').hidden = false;
  const poll = async () => {
    try {
      const response = await fetch(`/metrics?token=${encodeURIComponent(token)}`, { cache: 'no-store' });
      if (response.ok) {
        state.metrics = await response.json();
        invalidate('metrics');
      }
    } catch { /* the connection indicator already tells */ }
  };
  poll();
  setInterval(poll, 2000);
}

// Keep the charts scrolling and the rate fresh even when nothing arrives.
setInterval(() => {
  const now = performance.now();
  state.rate.perSecond = (state.rate.count * 1000) / (now - state.rate.since);
  state.rate.count = 0;
  state.rate.since = now;
  charts.tps.dirty = charts.revenue.dirty = true;
  invalidate('charts', 'stats', 'connection');
}, 1000);

// --- DOM out, once per frame ---
function render() {
  frameRequested = false;
  if (dirty.has('connection')) {
    renderConnection();
    renderFeed();  // its label says "offline" while disconnected
  }
  if (dirty.has('kpi')) renderKpis();
  if (dirty.has('charts')) {
    const now = Date.now();
    charts.tps.draw(now);
    charts.revenue.draw(now);
  }
  if (dirty.has('feed')) renderFeed();
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
  if (users) setTile('tile-users', integer.format(users.value), 'signed in now', trend('users'));
  if (errors) {
    const detail = `threshold ${percent(errors.threshold, 1)} · ${errors.window_s}s window`;
    setTile('tile-errors', percent(errors.value), detail, trend('errors', false), errors.value > errors.threshold);
  }
}

function transactionRow(tx) {
  const row = document.createElement('tr');
  const cells = [
    [clock(tx.ts), 'time'],
    [tx.id, 'id'],
    [tx.merchant, ''],
    [String(tx.method).replace('_', ' '), 'muted'],
    [money(tx.amount, tx.currency), 'num'],
  ];
  for (const [text, cls] of cells) {
    const cell = document.createElement('td');
    cell.textContent = text;
    if (cls) cell.className = cls;
    row.append(cell);
  }
  const status = document.createElement('td');
  const badge = document.createElement('span');
  badge.className = `badge ${tx.status}`;
  badge.textContent = tx.status;
  status.append(badge);
  row.append(status);
  row.className = 'new';
  return row;
}

function renderFeed() {
  const s = state.feedStatus;
  const blocked = s.state === 'forbidden';
  $('feed').hidden = blocked;
  $('feed-blocked').hidden = !blocked;
  $('feed-error-code').textContent = s.code ?? 'forbidden';
  const online = state.connection.state === 'connected';
  const label = { subscribing: 'subscribing…', live: s.resumed ? 'live · resumed' : 'live',
                  forbidden: 'not permitted', error: `error: ${s.code}` }[s.state];
  $('feed-status').textContent = online || blocked ? label : 'offline';
  $('feed-status').dataset.state = online || blocked ? s.state : 'offline';
  if (blocked || state.feedNew.length === 0) return;

  const body = $('feed-rows');
  const fragment = document.createDocumentFragment();
  for (const tx of state.feedNew) fragment.append(transactionRow(tx));
  for (const row of body.querySelectorAll('tr.new')) row.classList.remove('new');
  body.prepend(fragment);
  while (body.rows.length > FEED_ROWS) body.deleteRow(-1);
  state.feed = state.feedNew.concat(state.feed).slice(0, FEED_ROWS);
  state.feedNew = [];
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
    meta.textContent = `${alert.severity} · ${alert.kind.replace('_', ' ')} · ${clock(alert.ts).slice(0, 8)}`;
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
  const s = connection.stats;
  $('client-stats').textContent =
    `${integer.format(state.rate.perSecond)} msg/s · ${integer.format(s.messages)} received · ` +
    `${s.duplicates} duplicates ignored · ${s.gaps} gaps · ${s.reconnects} reconnects`;
}
