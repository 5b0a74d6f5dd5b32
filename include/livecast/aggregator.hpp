// Aggregator: live KPIs in one line each. The host records raw events from
// any thread; at each window boundary livecast publishes one summary per
// metric and window (count, sum, min, max, mean, rate per second and
// p50/p90/p95/p99) to a topic, and hands it to a callback (for a
// time-series database), instead of a stream processor in front of the
// dashboard.
//
//   livecast::Aggregator kpis(broker);            // windows 1s, 5s, 1m
//   kpis.record("latency_ms", 12.5);              // any thread; ~55-70 ns of CPU (benchmarks/RESULTS.md)
//   // every second: "agg.latency_ms.1s" <- {"metric":"latency_ms","window":"1s",
//   //   "start":1733580000000,"count":..,"sum":..,"min":..,"max":..,"mean":..,
//   //   "rate":..,"p50":..,"p90":..,"p95":..,"p99":..,"instances":..}
//
// Windows are tumbling and aligned to wall-clock boundaries (a 5 s window
// starts at a multiple of 5 s since the epoch, a 1 min window on the
// minute). An event belongs to the window that holds the time record() was
// called; a window is summed up once it is over (plus `grace`, so that
// record() calls under way when it ended are in). Quantiles come from a
// QuantileSketch (quantile_sketch.hpp): within its relative accuracy, 1% by
// default; count, sum, min and max are exact. A metric recorded once is
// summed up in every window after, with count 0 (and null extremes and
// quantiles) while nothing is recorded, so that charts show the quiet time.
//
// Several instances (a backend shared through Redis): each sees only its own
// events, so by default their windows merge into one summary per window for
// the whole cluster, published once, by one instance (`instances` says how
// many took part). At a window's end each instance hands every metric's
// sketch of it to Backend::merge_window; after merge_settle (to let the
// others, whose clocks differ a little, hand theirs) exactly one instance
// gets them all, merges the sketches per metric (a metric recorded on only
// some instances is still summed) and publishes; on_window runs there only.
// The in-process backend hands back this instance's part at once, so a
// single process publishes exactly what it always did. When the backend
// fails (Redis away), an instance publishes its own part alone rather than
// nothing, so that dashboards do not go blank (counted: merge_fallbacks);
// several instances may then publish the same window, each partial.
//
// Threads: record() from any thread. Each thread records into state of its
// own (one uncontended lock, taken by another thread only once per window
// to collect it); summaries are made and published on the Aggregator's own
// thread, or on the host's when it calls tick() itself. Callbacks run there;
// their exceptions are caught and counted, never reach the host. Merged
// windows come back on the backend's thread and wait there for the next
// tick() (the own thread is woken for them), so no host code ever runs on
// the backend's thread.
#pragma once

#include <livecast/config.hpp>
#include <livecast/quantile_sketch.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

LIVECAST_BEGIN_NAMESPACE

class Broker;
class MetricsWriter;

// One metric over one window.
struct WindowSummary {
  std::string metric;
  std::string window;  // its name: "1s", "5s", "1m", "250ms", "1h"
  std::chrono::system_clock::time_point start;
  std::chrono::milliseconds length{0};
  std::uint64_t count = 0;
  double sum = 0;
  std::optional<double> min, max, mean;
  double rate = 0;  // count per second of the window
  std::optional<double> p50, p90, p95, p99;
  // The window's sketch, for a host that merges or stores more quantiles.
  std::shared_ptr<const QuantileSketch> sketch;
  // Instances whose events are in it (merge_across_instances); 1: this one.
  std::uint64_t instances = 1;
};

struct AggregatorSettings {
  // Window lengths, each a multiple of the shortest (which the others are
  // built from: a 1 min summary is the merge of sixty 1 s sketches).
  std::vector<std::chrono::milliseconds> windows = {std::chrono::seconds(1), std::chrono::seconds(5),
                                                    std::chrono::minutes(1)};
  // The topic a summary is published on; empty: "agg.<metric>.<window>". An
  // empty answer publishes nothing for that metric and window.
  std::function<std::string(std::string_view metric, std::string_view window)> topic;
  // Called with every summary, after it was published (a time-series
  // database's writer). Must not block for long: the next window waits.
  std::function<void(const WindowSummary&)> on_window;
  QuantileSketchSettings sketch;
  // How long after a window's end its summary is made.
  std::chrono::milliseconds grace{50};
  // Metrics at most; record() on more is ignored and counted.
  std::size_t max_metrics = 1000;
  // True: a thread of the Aggregator's own calls tick(); false: the host
  // calls tick() (e.g. from a timer on its io_context).
  bool own_thread = true;
  // The time source, for tests; empty: std::chrono::system_clock::now.
  std::function<std::chrono::system_clock::time_point()> clock;

  // True: the instances sharing the broker's backend publish one summary per
  // window between them (Backend::merge_window; see above). False: each
  // publishes its own, on the same topics (a dashboard then shows whichever
  // came last).
  bool merge_across_instances = true;
  // How long each instance waits after its window's end for the other
  // instances' parts: more than the clocks of the instances differ (NTP keeps
  // them within a few ms). A part that comes later is lost, and counted
  // (contributions_late). Summaries appear this much later than without
  // merging.
  std::chrono::milliseconds merge_settle{200};
  // Aggregators merge with those of the same group on the other instances;
  // two Aggregators of one Broker need groups of their own (one part per
  // instance and window). Part of a Redis key: no '{' or '}'.
  std::string merge_group = "agg";
};

struct AggregatorMetrics {
  std::uint64_t recorded = 0;              // record() calls counted
  std::uint64_t dropped_metrics = 0;       // record() calls past max_metrics
  std::uint64_t summaries = 0;             // summaries made
  std::uint64_t publish_errors = 0;        // summaries the broker refused
  std::uint64_t callback_errors = 0;       // on_window and topic calls that threw
  // merge_across_instances:
  std::uint64_t contributions_sent = 0;        // windows handed to Backend::merge_window
  std::uint64_t merged_windows = 0;            // windows published by this instance from a merge it claimed
  std::uint64_t windows_merged_elsewhere = 0;  // windows another instance claimed and publishes
  std::uint64_t contributions_malformed = 0;   // other instances' parts that did not parse (skipped)
  std::uint64_t contributions_late = 0;        // own parts that came after another instance's claim (lost)
  std::uint64_t merge_fallbacks = 0;           // windows published from this instance's part alone: the backend failed
};

class Aggregator {
 public:
  // Publishes through `broker`, which must outlive it.
  explicit Aggregator(Broker& broker, AggregatorSettings settings = {});
  ~Aggregator();  // stops, without summing up the windows under way
  Aggregator(const Aggregator&) = delete;
  Aggregator& operator=(const Aggregator&) = delete;

  // Records one event of `metric` now. NaN is ignored.
  void record(std::string_view metric, double value);

  // Sums up and publishes every window over by `now` (minus grace) not
  // summed up yet, and the merged windows that came back from the backend
  // since the last call; what the own thread calls. Returns the summaries
  // published. A host that calls it itself, with merging, calls it again
  // after merge_settle to publish the merged windows.
  std::size_t tick();
  std::size_t tick(std::chrono::system_clock::time_point now);

  AggregatorMetrics metrics() const;
  // metrics() as Prometheus metrics (livecast_aggregator_*, docs/operations.md),
  // for MetricsExporter::add([&](MetricsWriter& w) { kpis.write_metrics(w); }).
  // Any thread.
  void write_metrics(MetricsWriter& out) const;

  // "1s", "5s", "1m", "1h", "250ms": the window names used in topics.
  static std::string window_name(std::chrono::milliseconds length);

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

LIVECAST_END_NAMESPACE
