// Type declarations for @livecast/react (src/index.js).
import type { ReactElement, ReactNode } from 'react';
import type { Client, LivecastError, RecentHistory, SubscriptionState } from '@livecast/client';

/** What useTopic gives: immutable, the same object until the topic changes (at most once per frame). */
export interface TopicSnapshot<T = unknown> {
  /** The latest publication's data; undefined before the first. Kept while reconnecting. */
  readonly value: T | undefined;
  readonly state: SubscriptionState;
  /** Offset of `value`; before the first publication, the one the subscribe reply gave (0 before it). */
  readonly offset: number;
  /** Epoch of `value` (or of the subscribe reply); null before the reply. */
  readonly epoch: string | null;
  /** The last error (state 'error'); null again once subscribed. */
  readonly error: LivecastError | null;
}

/** One publication in useStream's window. */
export interface StreamItem<T = unknown> {
  readonly data: T;
  readonly offset: number;
}

export interface StreamOptions {
  /** How many of the latest publications to keep. Default 120. */
  max?: number;
  /**
   * Fill the window at once from the server's history: true for the last `max`, or the client's
   * RecentHistory ({count, seconds}; count at most, and by default, `max`). Taken into account when this hook subscribes the topic (no other
   * mounted hook shows it yet). Default false: the window fills from the publications to come.
   */
  recent?: boolean | RecentHistory;
}

/** The C++ Aggregator's summary of one metric over one window (null extremes and quantiles when count is 0). */
export interface AggregateSummary {
  metric: string;
  /** Its name: "1s", "5s", "1m", "250ms", "1h". */
  window: string;
  /** When the window began, Unix ms. */
  start: number;
  count: number;
  sum: number;
  min: number | null;
  max: number | null;
  mean: number | null;
  /** count per second of the window. */
  rate: number;
  p50: number | null;
  p90: number | null;
  p95: number | null;
  p99: number | null;
}

/** The topic an Aggregator publishes `metric`'s summary over `window` on. */
export type AggregateTopic = (metric: string, window: string) => string;

/** Runs `flush` once, at the next frame. */
export type FrameScheduler = (flush: () => void) => void;

export interface LivecastProviderProps {
  /** A client the app made (connect(...)) and closes itself; the provider only subscribes and unsubscribes. */
  client: Client;
  /** Default: defaultAggregateTopic, `agg.${metric}.${window}` (the Aggregator's default topics). */
  aggregateTopic?: AggregateTopic;
  /** Default: animationFrameScheduler. Read once per client. */
  schedule?: FrameScheduler;
  children?: ReactNode;
}

export declare function LivecastProvider(props: LivecastProviderProps): ReactElement;

/** The latest value, state and position of `topic`; one subscription per topic, shared by every component. */
export declare function useTopic<T = unknown>(topic: string): TopicSnapshot<T>;

/** The last `max` publications of `topic`, oldest first; one window per topic, as long as the largest max asked. */
export declare function useStream<T = unknown>(topic: string, options?: StreamOptions): readonly StreamItem<T>[];

/** useTopic on the provider's aggregateTopic(metric, window). */
export declare function useAggregate(metric: string, window: string): TopicSnapshot<AggregateSummary>;

/** The provider's client, e.g. to publish. */
export declare function useLivecastClient(): Client;

/** `agg.${metric}.${window}`. */
export declare function defaultAggregateTopic(metric: string, window: string): string;

/** requestAnimationFrame where there is one, else a 16 ms timer. */
export declare const animationFrameScheduler: FrameScheduler;

