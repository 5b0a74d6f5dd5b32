// The four KPI tiles: the latest publication of each org:<org>:kpi.* topic
// (useTopic), and whether it went up or down since the one before (a window
// of two publications, useStream, on the same subscription).
import { useStream, useTopic } from '@livecast/react';
import { topic } from './session.js';
import { formatInteger, formatMoney, formatPercent } from './format.js';

// What each tile shows of its topic's publications (payment_simulation.hpp).
const KPIS = [
  {
    name: 'revenue',
    title: 'Revenue',
    measure: (data) => data.per_second,  // the trend follows the rate; the total only grows
    value: (data) => formatMoney(data.total, data.currency),
    detail: (data) => `${formatMoney(data.per_second, data.currency)} in the last second`,
  },
  {
    name: 'tps',
    title: 'Transactions / s',
    measure: (data) => data.value,
    value: (data) => formatInteger(data.value),
    detail: () => 'last second',
  },
  {
    name: 'active_users',
    title: 'Active users',
    measure: (data) => data.value,
    value: (data) => formatInteger(data.value),
    detail: () => 'signed in now',
  },
  {
    name: 'error_rate',
    title: 'Error rate',
    measure: (data) => data.value,
    value: (data) => formatPercent(data.value),
    detail: (data) => `alert above ${formatPercent(data.threshold)} over ${formatInteger(data.window_s)} s`,
    alarming: (data) => data.value > data.threshold,
  },
];

const ARROWS = { up: '▲', down: '▼', flat: '▬' };

function trendOf(kpi, window) {
  if (window.length < 2) return 'flat';
  const before = kpi.measure(window[0].data);
  const now = kpi.measure(window[1].data);
  return now > before ? 'up' : now < before ? 'down' : 'flat';
}

function KpiTile({ kpi }) {
  const name = topic(`kpi.${kpi.name}`);
  const { value, state, offset } = useTopic(name);
  const trend = trendOf(kpi, useStream(name, { max: 2 }));
  const alarming = value !== undefined && kpi.alarming?.(value);
  return (
    <article className={`tile${alarming ? ' alarming' : ''}`} data-kpi={kpi.name} data-state={state} data-offset={offset}>
      <h2>{kpi.title}</h2>
      <div className="value" data-field="value">{value === undefined ? '—' : kpi.value(value)}</div>
      <div className="detail">
        <span className={`trend ${trend}`} aria-label={`trend ${trend}`}>{ARROWS[trend]}</span>
        {value === undefined ? state : kpi.detail(value)}
      </div>
    </article>
  );
}

export function KpiTiles() {
  return (
    <section className="tiles" aria-label="Key figures">
      {KPIS.map((kpi) => <KpiTile key={kpi.name} kpi={kpi} />)}
    </section>
  );
}
