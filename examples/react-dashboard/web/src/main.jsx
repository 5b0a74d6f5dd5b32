// The dashboard demo's page on React and @livecast/react: one livecast client
// (one WebSocket) for the whole page, handed to <LivecastProvider>; every
// component asks for the topics it shows and the provider subscribes each
// topic once, re-rendering at most once per animation frame however fast the
// simulation publishes. Bundled into dist/ by build.mjs.
import { StrictMode, useCallback, useSyncExternalStore } from 'react';
import { createRoot } from 'react-dom/client';
import { connect } from '@livecast/client';
import { LivecastProvider, useLivecastClient } from '@livecast/react';
import { aggregateTopic, demoOrgs, demoRoles, org, role, token, websocketUrl } from './session.js';
import { KpiTiles } from './tiles.jsx';
import { LatencyChart, ThroughputChart } from './charts.jsx';
import { TransactionFeed } from './feed.jsx';
import './style.css';

const STATE_TEXT = { connecting: 'Connecting…', connected: 'Live', disconnected: 'Reconnecting…' };

// The client's connection state ('connecting', 'connected', 'disconnected'),
// re-rendering on each of its 'state' events.
function useConnectionState() {
  const client = useLivecastClient();
  const subscribe = useCallback((onChange) => client.on('state', onChange), [client]);
  return useSyncExternalStore(subscribe, () => client.state);
}

function ConnectionIndicator() {
  const client = useLivecastClient();
  const state = useConnectionState();
  return (
    <span id="connection" className="connection" data-state={state} role="status" aria-live="polite">
      <span className="dot" aria-hidden="true" />
      {STATE_TEXT[state] ?? state}
      {state === 'connected' && client.transport ? <span className="transport"> · {client.transport}</span> : null}
    </span>
  );
}

// Links to the same page as the other demo users: what each role may see.
function UserSwitcher() {
  return (
    <nav className="users" aria-label="View as">
      {demoOrgs.map((o) => (
        <span key={o} className="user-group">
          {o}:
          {demoRoles.map((r) => (
            <a key={r} href={`?token=${r}-${o}`} aria-current={`${r}-${o}` === token ? 'page' : undefined}>{r}</a>
          ))}
        </span>
      ))}
    </nav>
  );
}

function Dashboard() {
  return (
    <>
      <header className="topbar">
        <div>
          <h1>Payments live</h1>
          <p className="subtitle">livecast + React · {org || 'no org'} · {role}</p>
        </div>
        <UserSwitcher />
        <ConnectionIndicator />
      </header>
      <main className="grid">
        <KpiTiles />
        <ThroughputChart />
        <LatencyChart />
        <TransactionFeed />
      </main>
    </>
  );
}

const client = connect(await websocketUrl(), { token });
createRoot(document.getElementById('root')).render(
  <StrictMode>
    <LivecastProvider client={client} aggregateTopic={aggregateTopic}>
      <Dashboard />
    </LivecastProvider>
  </StrictMode>,
);
