// React hooks over @livecast/client: a provider holding one store per client,
// and hooks that read a topic's latest value, a sliding window of its
// publications, or an Aggregator summary. Every component asking for a topic
// shares one subscription; the snapshots change at most once per animation
// frame. React 18 and 19 (useSyncExternalStore).
import { createContext, createElement, useCallback, useContext, useMemo, useSyncExternalStore } from 'react';
import { LivecastStore, animationFrameScheduler, defaultAggregateTopic } from './store.js';

export { animationFrameScheduler, defaultAggregateTopic };

const LivecastContext = createContext(null);

// The app creates the client and owns its lifetime (connect, close); the
// provider only subscribes and unsubscribes topics on it. `schedule` replaces
// the frame scheduler (tests, or a host with its own frame loop); it is read
// when the store is made, i.e. once per client, so an inline function is fine.
export function LivecastProvider({ client, aggregateTopic = defaultAggregateTopic, schedule, children }) {
  const store = useMemo(() => new LivecastStore(client, { schedule }), [client]);
  const value = useMemo(() => ({ store, aggregateTopic }), [store, aggregateTopic]);
  return createElement(LivecastContext.Provider, { value }, children);
}

function useLivecastContext(hook) {
  const context = useContext(LivecastContext);
  if (context === null) throw new Error(`${hook}: no <LivecastProvider> above this component`);
  return context;
}

function checkTopic(hook, topic) {
  if (typeof topic !== 'string' || topic === '') throw new TypeError(`${hook}: topic must be a non-empty string`);
}

// The client given to the provider, e.g. to publish.
export function useLivecastClient() {
  return useLivecastContext('useLivecastClient').store.client;
}

// {value, state, offset, epoch, error} of a topic: value is the latest
// publication's data (undefined before the first), offset and epoch its
// position. A reconnect keeps them while the client recovers.
export function useTopic(topic) {
  checkTopic('useTopic', topic);
  const { store } = useLivecastContext('useTopic');
  const subscribe = useCallback((listener) => store.listen(topic, listener), [store, topic]);
  const getSnapshot = useCallback(() => store.topicSnapshot(topic), [store, topic]);
  return useSyncExternalStore(subscribe, getSnapshot, getSnapshot);
}

// The last `max` publications of a topic ({data, offset}, oldest first). One
// window per topic, as long as the largest `max` asked by a mounted component.
// `recent` fills the window at once from the server's history instead of
// from the publications to come: true for the last `max`, or {count,
// seconds} (the client's subscribe option; count at most `max`, which it
// defaults to). It takes effect when this hook is the one that subscribes
// the topic.
export function useStream(topic, { max = 120, recent = false } = {}) {
  checkTopic('useStream', topic);
  if (!Number.isInteger(max) || max < 1) throw new RangeError('useStream: max must be a positive integer');
  const { store } = useLivecastContext('useStream');
  // Compared by value: an inline object literal must not resubscribe on every render.
  const recentCount = recent === true ? max : recent ? Math.min(recent.count ?? max, max) : undefined;
  const recentSeconds = recent && recent !== true ? recent.seconds : undefined;
  const subscribe = useCallback((listener) => {
    const asked = recentCount === undefined && recentSeconds === undefined
      ? null
      : { ...(recentCount !== undefined && { count: recentCount }), ...(recentSeconds !== undefined && { seconds: recentSeconds }) };
    return store.listen(topic, listener, { streamMax: max, recent: asked });
  }, [store, topic, max, recentCount, recentSeconds]);
  const getSnapshot = useCallback(() => store.streamSnapshot(topic, max), [store, topic, max]);
  return useSyncExternalStore(subscribe, getSnapshot, getSnapshot);
}

// The C++ Aggregator's summary of `metric` over `window` ("1s", "5s", "1m"):
// useTopic on the provider's aggregateTopic(metric, window).
export function useAggregate(metric, window) {
  const { aggregateTopic } = useLivecastContext('useAggregate');
  return useTopic(aggregateTopic(metric, window));
}
