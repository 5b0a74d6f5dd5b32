// Who the page is and which topics it reads: the demo token in the URL
// (?token=analyst-acme, the default) names a role and an org, and every
// topic of the demo is scoped to that org (examples/dashboard/demo_access.hpp).
const params = new URLSearchParams(location.search);

export const token = params.get('token') || 'analyst-acme';
const dash = token.indexOf('-');
export const role = dash > 0 ? token.slice(0, dash) : token;
export const org = dash > 0 ? token.slice(dash + 1) : '';

export const topic = (name) => `org:${org}:${name}`;
// Where the demo's Aggregator publishes (LivecastProvider's aggregateTopic),
// also read through useStream for the charts' history.
export const aggregateTopic = (metric, window) => topic(`agg.${metric}.${window}`);

export const demoOrgs = ['acme', 'globex'];
export const demoRoles = ['admin', 'analyst', 'viewer'];

// The WebSocket URL: /config.json names the host and port to dial (the one
// the page came from unless the server says otherwise).
export async function websocketUrl() {
  let host = location.host;
  try {
    const response = await fetch('/config.json', { cache: 'no-store' });
    const config = response.ok ? await response.json() : null;
    if (config?.url) host = new URL(config.url).host;
  } catch { /* no /config.json: the page's own host */ }
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${host}/ws`;
}
