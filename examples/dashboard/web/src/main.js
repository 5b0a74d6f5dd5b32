// The default page: the dashboard (page.js) on the livecast JS client, which
// resumes each topic from its last offset after a reconnect and falls back
// from the WebSocket to SSE and long-polling. Bundled with uPlot into
// dist/dashboard.js and dist/dashboard.css by build.mjs.
import { connect } from '../../../../clients/js/src/livecast.js';
import 'uplot/dist/uPlot.min.css';
import './style.css';
import { CHART_RECENT, CHART_TOPICS, LATENCY_TOPIC, TILE_TOPICS, countGap, debug, loadConfig, publication, reconnects,
         setProtocol, showConnection, showFeedStatus, showLatencyStatus, token, topic } from './page.js';

const DEBUG_OFFSETS_KEEP = 5000;

setProtocol('livecast.v1');
const { config, host, secure } = await loadConfig();
// One URL for everything (the WebSocket on /ws, SSE on /sse, long-polling on
// /poll); fallbacks on a port of their own are announced by name.
const wsUrl = `${secure ? 'wss' : 'ws'}://${host}/ws`;
const httpBase = `${secure ? 'https' : 'http'}://${host}`;
const options = { token, sseUrl: config?.sse ?? `${httpBase}/sse`, pollUrl: config?.poll ?? `${httpBase}/poll` };
const client = connect(wsUrl, options);

client.on('state', showConnection);

function record(subscription) {
  const name = subscription.topic;
  debug.offsets[name] ??= [];
  debug.subscribed[name] ??= [];
  subscription.on('subscribed', ({ epoch, offset, recovered, reset }) => {
    debug.subscribed[name].push({ epoch, offset, recovered, reset, at: debug.offsets[name].length });
  });
  subscription.on('gap', countGap);
}

function onPublication(data, meta) {
  const list = debug.offsets[meta.topic];
  if (list) {
    list.push({ epoch: meta.epoch, offset: meta.offset });
    if (list.length > DEBUG_OFFSETS_KEEP) list.splice(0, list.length - DEBUG_OFFSETS_KEEP);
  }
  publication(meta.topic, data, meta.offset);
}

function subscribe(name, options) {
  const subscription = client.subscribe(name, onPublication, options);
  record(subscription);
  return subscription;
}

// The server joins every session to the org's announcement topic by itself.
client.on('join', (subscription) => {
  record(subscription);
  subscription.on('publication', onPublication);
});

// The charts' topics start with the last two minutes the server keeps.
for (const name of TILE_TOPICS) subscribe(topic(name), CHART_TOPICS.includes(name) ? { recent: CHART_RECENT } : undefined);
const latency = subscribe(topic(LATENCY_TOPIC), { recent: CHART_RECENT });
latency.on('subscribed', () => showLatencyStatus(null));
latency.on('error', ({ error }) => showLatencyStatus(error.code));

// Every role asks for the feed: the server decides, and a viewer's
// `forbidden` removes the list from the page.
const feedSubscription = subscribe(topic('transactions'));
feedSubscription.on('subscribed', ({ recovered, reset }) => {
  showFeedStatus({ state: 'live', resumed: recovered && reconnects() > 0, reset });
});
feedSubscription.on('error', ({ error, willRetry }) => {
  showFeedStatus({ state: error.code === 'forbidden' ? 'forbidden' : 'error', code: error.code, willRetry });
});
