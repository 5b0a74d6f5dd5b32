// The state behind the hooks: one entry per topic, shared by every component
// that shows it. An entry holds the client's Subscription, the components
// listening, and two immutable snapshots (the topic's latest value and the
// sliding window of publications) that React reads through
// useSyncExternalStore. Publications and state changes only mark the entry
// dirty; the snapshots are rebuilt and the components told once per frame, so
// a burst of publications costs one render, not one per publication.

// What a component sees before its topic's entry exists (its first render,
// before the effect that subscribes). Shared, so it is stable between calls.
export const INITIAL_TOPIC_SNAPSHOT = Object.freeze({
  value: undefined,
  state: 'subscribing',
  offset: 0,
  epoch: null,
  error: null,
});

const EMPTY_STREAM = Object.freeze([]);

// requestAnimationFrame where there is one (browsers: at most one flush per
// painted frame, none while the tab is hidden); elsewhere (Node, React
// Native's JS thread without it) a 16 ms timer, about a 60 Hz frame.
export function animationFrameScheduler(flush) {
  if (typeof globalThis.requestAnimationFrame === 'function') globalThis.requestAnimationFrame(() => flush());
  else globalThis.setTimeout(flush, 16);
}

// The C++ Aggregator's default topic for a metric's window summary.
export function defaultAggregateTopic(metric, window) {
  return `agg.${metric}.${window}`;
}

class TopicEntry {
  constructor(topic) {
    this.topic = topic;
    this.subscription = null;
    this.ownsSubscription = false;  // false for a server-side join or the app's own subscription: never unsubscribed here
    this.detachers = [];            // removes the listeners this entry put on the subscription
    this.consumers = new Set();     // one record per mounted hook
    this.releasePending = false;

    // Pending state, changed as events arrive.
    this.hasValue = false;
    this.value = undefined;
    this.offset = 0;
    this.epoch = null;
    this.state = 'subscribing';
    this.error = null;
    this.streamMaxes = new Map();   // max -> number of useStream hooks asking for it
    this.streamMax = 0;             // the largest asked; 0 keeps no window
    this.stream = [];               // the window, oldest first, at most streamMax long
    this.streamChanged = false;

    // Committed state, what React reads; replaced (never mutated) at a flush.
    this.snapshot = INITIAL_TOPIC_SNAPSHOT;
    this.streamSnapshot = EMPTY_STREAM;
    this.streamViews = new Map();   // max -> the last `max` of streamSnapshot, cached per streamSnapshot
  }

  commit() {
    const { value, offset, epoch, state, error } = this;
    this.snapshot = Object.freeze({ value, state, offset, epoch, error });
    this.commitStream();
  }

  commitStream() {
    if (this.streamChanged) {
      this.streamChanged = false;
      this.streamSnapshot = this.stream.length === 0 ? EMPTY_STREAM : Object.freeze(this.stream.slice());
      this.streamViews.clear();
    }
  }

  streamView(max) {
    const all = this.streamSnapshot;
    if (all.length <= max) return all;
    let view = this.streamViews.get(max);
    if (!view) {
      view = Object.freeze(all.slice(all.length - max));
      this.streamViews.set(max, view);
    }
    return view;
  }

  addStreamConsumer(max) {
    this.streamMaxes.set(max, (this.streamMaxes.get(max) || 0) + 1);
    if (max <= this.streamMax) return;
    const started = this.streamMax === 0;
    this.streamMax = max;
    // A window opened on a topic already showing a value starts with it, so
    // a chart mounted beside a number does not wait for the next publication.
    if (started && this.hasValue && this.stream.length === 0) {
      this.stream.push(Object.freeze({ data: this.value, offset: this.offset }));
      this.streamChanged = true;
      this.commitStream();
    }
  }

  removeStreamConsumer(max) {
    const left = this.streamMaxes.get(max) - 1;
    if (left > 0) this.streamMaxes.set(max, left);
    else this.streamMaxes.delete(max);
    this.streamMax = Math.max(0, ...this.streamMaxes.keys());
    if (this.streamMax === 0 && this.stream.length > 0) {
      this.stream = [];
      this.streamChanged = true;
    }
  }

  publication(data, { offset, epoch }) {
    this.hasValue = true;
    this.value = data;
    this.offset = offset;
    this.epoch = epoch;
    if (this.streamMax > 0) {
      this.stream.push(Object.freeze({ data, offset }));
      if (this.stream.length > this.streamMax) this.stream.splice(0, this.stream.length - this.streamMax);
      this.streamChanged = true;
    }
  }

  stateChange(event) {
    this.state = event.state;
    if (event.state === 'error') {
      this.error = event.error;
    } else if (event.state === 'subscribed') {
      this.error = null;
      // Before the first publication the reply's position is all there is;
      // after it, offset and epoch stay those of the value shown.
      if (!this.hasValue) {
        this.offset = event.offset;
        this.epoch = event.epoch;
      }
      // Offsets of two epochs do not compare, and the position we had is
      // gone: the window starts afresh with the snapshot that follows. The
      // value stays until that snapshot replaces it.
      if (event.reset && this.stream.length > 0) {
        this.stream = [];
        this.streamChanged = true;
      }
    }
    // 'subscribing' after a reconnect keeps value, offset and window: the
    // client resubscribes with recover and the replay continues from them.
  }
}

export class LivecastStore {
  // schedule(flush) runs flush once, at the next frame. No side effects here:
  // React may build a store and drop it (StrictMode, a discarded render).
  constructor(client, { schedule = animationFrameScheduler } = {}) {
    if (!client || typeof client.subscribe !== 'function') {
      throw new TypeError('LivecastProvider: `client` must be a livecast client (connect(...))');
    }
    this.client = client;
    this._schedule = schedule;
    this._entries = new Map();
    this._dirty = new Set();
    this._flushScheduled = false;
    this._flush = () => this.flush();
  }

  topicSnapshot(topic) {
    const entry = this._entries.get(topic);
    return entry ? entry.snapshot : INITIAL_TOPIC_SNAPSHOT;
  }

  streamSnapshot(topic, max) {
    const entry = this._entries.get(topic);
    return entry ? entry.streamView(max) : EMPTY_STREAM;
  }

  // Registers one mounted hook (useSyncExternalStore's subscribe): the first
  // for a topic subscribes, asking for `recent` history when it says so (the
  // client's subscribe option; later hooks find the window filled already).
  // Returns the function that removes it; the last one removed unsubscribes.
  listen(topic, listener, { streamMax = 0, recent = null } = {}) {
    let entry = this._entries.get(topic);
    const created = !entry;
    if (created) {
      entry = new TopicEntry(topic);
      this._entries.set(topic, entry);
    }
    const consumer = { listener, streamMax };
    entry.consumers.add(consumer);
    if (streamMax > 0) entry.addStreamConsumer(streamMax);
    if (created) this._attach(entry, recent);
    let listening = true;
    return () => {
      if (!listening) return;
      listening = false;
      entry.consumers.delete(consumer);
      if (streamMax > 0) entry.removeStreamConsumer(streamMax);
      this._releaseLater(entry);
    };
  }

  // Runs the scheduled frame: rebuilds the snapshots of every entry that
  // changed since the last one, then tells their components.
  flush() {
    this._flushScheduled = false;
    const changed = [...this._dirty];
    this._dirty.clear();
    for (const entry of changed) entry.commit();
    for (const entry of changed) {
      for (const consumer of [...entry.consumers]) consumer.listener();
    }
  }

  _attach(entry, recent) {
    const { client } = this;
    const { topic } = entry;
    let subscription = client.getSubscription(topic);
    if (subscription) {
      // A server-side join (or a subscription the app made itself): shown,
      // never unsubscribed, since this store did not ask for it.
      entry.ownsSubscription = false;
    } else {
      try {
        subscription = recent ? client.subscribe(topic, undefined, { recent }) : client.subscribe(topic);
      } catch (error) {
        // A closed client: the components show the error instead of throwing
        // from an effect, which would unmount the whole tree.
        entry.stateChange({ state: 'error', topic, error });
        entry.commit();
        return;
      }
      entry.ownsSubscription = true;
    }
    entry.subscription = subscription;
    entry.state = subscription.state;
    if (subscription.epoch !== null) {
      entry.epoch = subscription.epoch;
      entry.offset = subscription.offset;
    }
    entry.detachers.push(
      subscription.on('publication', (data, meta) => {
        entry.publication(data, meta);
        this._changed(entry);
      }),
      subscription.on('state', (event) => {
        entry.stateChange(event);
        this._changed(entry);
      }),
    );
    entry.commit();
  }

  _changed(entry) {
    if (this._entries.get(entry.topic) !== entry) return;
    this._dirty.add(entry);
    if (this._flushScheduled) return;
    this._flushScheduled = true;
    this._schedule(this._flush);
  }

  // The unsubscribe waits for a microtask, i.e. the end of React's commit (its
  // effects' cleanups and setups run in one go): a component that
  // unmounts while another mounts on the same topic (a route change, a list
  // reordered, StrictMode's effect replay) hands the subscription over
  // instead of unsubscribing and subscribing again, which would lose the
  // value and ask the server for the snapshot anew.
  _releaseLater(entry) {
    if (entry.consumers.size > 0 || entry.releasePending) return;
    entry.releasePending = true;
    queueMicrotask(() => {
      entry.releasePending = false;
      if (entry.consumers.size > 0 || this._entries.get(entry.topic) !== entry) return;
      this._entries.delete(entry.topic);
      this._dirty.delete(entry);
      for (const detach of entry.detachers) detach();
      entry.detachers = [];
      if (entry.ownsSubscription) entry.subscription.unsubscribe();
    });
  }
}
