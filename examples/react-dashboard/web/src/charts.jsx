// The Aggregator's one-second summaries (examples/dashboard: every
// transaction's amount and latency_ms): useAggregate for the latest window,
// useStream on the same topic for the last minute of them, asked of the
// server's history on subscribe. Both hooks share one subscription per
// topic. Viewers are refused the aggregate topics.
import { useAggregate, useStream } from '@livecast/react';
import { aggregateTopic } from './session.js';
import { formatDecimal, formatInteger } from './format.js';
import { LineChart } from './line_chart.jsx';

const WINDOW = '1s';
const HISTORY = 60;  // windows on the chart: one minute

function useAggregateHistory(metric) {
  // The stream first: the hook that subscribes a topic is the one whose
  // `recent` counts, so the chart opens with the last minute already drawn.
  const history = useStream(aggregateTopic(metric, WINDOW), { max: HISTORY, recent: true });
  const latest = useAggregate(metric, WINDOW);
  return { latest, summaries: history.map((item) => item.data) };
}

function Panel({ id, title, hint, latest, children }) {
  const refused = latest.state === 'error';
  return (
    <section className="panel" id={id} data-state={latest.state}>
      <header>
        <h2>{title}</h2>
        <span className="hint">{hint}</span>
      </header>
      {refused ? (
        <p className="refused">
          Not permitted: the server answered <code>{latest.error?.code}</code> for these aggregates.
        </p>
      ) : children}
    </section>
  );
}

export function ThroughputChart() {
  const { latest, summaries } = useAggregateHistory('amount');
  const now = latest.value;
  return (
    <Panel id="chart-throughput" title="Transactions per second" hint="Aggregator · amount · 1 s windows" latest={latest}>
      <p className="readout">
        <strong data-field="tps">{formatInteger(now?.count)}</strong> tx/s
        <span className="muted"> · mean amount {formatDecimal(now?.mean)}</span>
      </p>
      <LineChart
        label="Transactions per second, last minute"
        capacity={HISTORY}
        formatTick={formatInteger}
        series={[{ label: 'count per second', className: 'series-count', values: summaries.map((s) => s.count) }]}
      />
    </Panel>
  );
}

export function LatencyChart() {
  const { latest, summaries } = useAggregateHistory('latency_ms');
  const now = latest.value;
  const quantile = (name) => summaries.map((s) => s[name]);
  return (
    <Panel id="chart-latency" title="Processing latency" hint="Aggregator · latency_ms · 1 s windows" latest={latest}>
      <p className="readout">
        p50 <strong data-field="p50">{formatInteger(now?.p50)}</strong> ms
        <span className="muted"> · </span>p95 <strong data-field="p95">{formatInteger(now?.p95)}</strong> ms
        <span className="muted"> · </span>p99 <strong data-field="p99">{formatInteger(now?.p99)}</strong> ms
      </p>
      <LineChart
        label="Latency percentiles in milliseconds, last minute"
        capacity={HISTORY}
        formatTick={formatInteger}
        series={[
          { label: 'p50', className: 'series-p50', values: quantile('p50') },
          { label: 'p95', className: 'series-p95', values: quantile('p95') },
          { label: 'p99', className: 'series-p99', values: quantile('p99') },
        ]}
      />
    </Panel>
  );
}
