// The live transaction feed: the last FEED_ROWS publications of
// org:<org>:transactions, newest first (useStream). Viewers are refused the
// topic (demo_access.cpp); the panel says so instead of staying empty.
import { useStream, useTopic } from '@livecast/react';
import { topic } from './session.js';
import { formatDecimal, formatMoney, formatTime } from './format.js';

const FEED_ROWS = 40;

export function TransactionFeed() {
  const name = topic('transactions');
  const { state, error } = useTopic(name);
  const items = useStream(name, { max: FEED_ROWS });
  return (
    <section className="panel feed" id="feed" data-state={state} data-rows={items.length}>
      <header>
        <h2>Transactions</h2>
        <span className="hint">newest first · last {FEED_ROWS}</span>
      </header>
      {state === 'error' ? (
        <p className="refused">
          Not permitted: the server answered <code>{error?.code}</code> to the subscription for <code>{name}</code>.
        </p>
      ) : (
        <table>
          <thead>
            <tr><th>Time</th><th>ID</th><th>Merchant</th><th>Method</th><th className="num">Amount</th>
              <th className="num">Latency</th><th>Status</th></tr>
          </thead>
          <tbody>
            {[...items].reverse().map(({ data, offset }) => (
              <tr key={offset} data-offset={offset} className={data.status}>
                <td>{formatTime(data.ts)}</td>
                <td className="id">{data.id}</td>
                <td>{data.merchant}</td>
                <td>{data.method.replace('_', ' ')}</td>
                <td className="num">{formatMoney(data.amount, data.currency)}</td>
                <td className="num">{formatDecimal(data.latency_ms)} ms</td>
                <td><span className="status">{data.status}</span></td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
