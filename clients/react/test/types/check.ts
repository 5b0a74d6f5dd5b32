// Compiled (never run) by test/run-node.mjs with tsc --noEmit: src/index.d.ts
// against @types/react and @livecast/client's own types. Each @ts-expect-error
// is a misuse the types must refuse; tsc fails if one is accepted.
import { createElement } from 'react';
import type { ReactElement } from 'react';
import { connect } from '@livecast/client';
import type { Client, LivecastError, SubscriptionState } from '@livecast/client';
import {
  LivecastProvider, animationFrameScheduler, defaultAggregateTopic, useAggregate, useLivecastClient, useStream, useTopic,
} from '../../src/index.js';
import type { AggregateSummary, FrameScheduler, StreamItem, TopicSnapshot } from '../../src/index.js';

interface Revenue { total: number; currency: string }

export function Dashboard(): ReactElement {
  const revenue: TopicSnapshot<Revenue> = useTopic<Revenue>('kpi.revenue');
  const total: number | undefined = revenue.value?.total;
  const state: SubscriptionState = revenue.state;
  const error: LivecastError | null = revenue.error;
  const where: [string | null, number] = [revenue.epoch, revenue.offset];
  // @ts-expect-error: the value is undefined before the first publication
  const sure: Revenue = revenue.value;

  const points: readonly StreamItem<number>[] = useStream<number>('cpu', { max: 60 });
  useStream('cpu', { max: 60, recent: true });
  useStream('cpu', { recent: { seconds: 120 } });
  const last: number | undefined = points.at(-1)?.data;
  // @ts-expect-error: the window is read-only
  points.push({ data: 1, offset: 1 });
  // @ts-expect-error: max is a number
  useStream('cpu', { max: '60' });

  const latency = useAggregate('latency_ms', '5s');
  const p99: number | null | undefined = latency.value?.p99;
  const summary: AggregateSummary | undefined = latency.value;
  const client: Client = useLivecastClient();
  void client.publish('notes', { text: 'hi' });
  // @ts-expect-error: a topic is a string
  useTopic(42);
  return createElement('p', null, String([total, state, error, where, sure, last, p99, summary]));
}

const client = connect('wss://example.com/ws');
const scheduler: FrameScheduler = animationFrameScheduler;
export const app: ReactElement = createElement(LivecastProvider, {
  client,
  aggregateTopic: (metric: string, window: string) => `org:acme:${defaultAggregateTopic(metric, window)}`,
  schedule: scheduler,
}, createElement(Dashboard));
// @ts-expect-error: the provider needs a client
export const orphan = createElement(LivecastProvider, {});
