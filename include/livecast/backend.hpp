// The fan-out seam between processes. The backend owns offsets, epochs,
// history and the latest value of every topic, so that every instance sharing
// it agrees on them. InProcessBackend is the embedded default; a Redis backend
// plugs in here without changes to Broker, Topic or Session.
#pragma once

#include <livecast/config.hpp>
#include <livecast/error.hpp>
#include <livecast/publication.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

LIVECAST_BEGIN_NAMESPACE

class MetricsWriter;

// The answer to a read for a new or returning subscriber.
struct ReadResult {
  std::error_code error;
  StreamPosition head;     // the topic's epoch and last assigned offset (0: none yet)
  bool recovered = false;  // true: `publications` are exactly those after the asked position
  // recovered: the missed publications, in offset order. Otherwise the latest
  // value as a snapshot (empty when the topic never had a publication).
  std::vector<Publication> publications;
};

// Whether a backend can serve now, for readiness checks and metrics.
struct BackendHealth {
  // False while the backend cannot take publications or answer reads (a
  // Redis that went away). The in-process backend is always available.
  bool available = true;
  // How long it has been unavailable (zero while available).
  std::chrono::milliseconds unavailable_for{0};
  // The latest measured round trip to the backend's server; none for a
  // backend without one.
  std::optional<std::chrono::microseconds> round_trip;
};

// What a backend delivers into. Implemented by Broker.
class BackendListener {
 public:
  virtual ~BackendListener() = default;
  // Called once per publication on every instance (the publishing one
  // included), in offset order per topic, from any thread.
  virtual void on_publication(Publication publication) = 0;
  // Called when the backend loses or regains its connection (for metrics and
  // the host's error callback); in-process never calls it.
  virtual void on_backend_error(std::error_code) {}
  // The backend can no longer vouch that this instance received every
  // publication of `topic`: its history was lost (a new epoch) or missed
  // publications fell out of it while the backend was unreachable. `state`
  // is shaped like a read without position: head and snapshot. Live
  // subscribers are told "not recovered" and given the snapshot. Called in
  // order with on_publication; in-process never calls it.
  virtual void on_history_lost(const std::string& /*topic*/, ReadResult /*state*/) {}
};

class Backend {
 public:
  // The name under which the broker reports its session count through
  // set_local_presence (for RebalanceSettings), so that presence() sums the
  // sessions of every instance. It cannot name a topic: topics hold no
  // control characters.
  static constexpr const char* sessions_presence_name = "\x01sessions";

  using PublishHandler = std::function<void(std::error_code, std::uint64_t offset)>;
  using ReadHandler = std::function<void(ReadResult)>;
  using PresenceHandler = std::function<void(std::error_code, std::uint64_t subscriptions)>;

  virtual ~Backend() = default;

  // Called once by the Broker before anything else.
  virtual void start(BackendListener& listener) = 0;
  virtual void stop() = 0;

  // Assigns the next offset of `topic`, stores the publication in its history
  // and as its latest value, and delivers it to every instance's listener.
  // `done` (may be empty) runs on any thread when the backend accepted or
  // refused it. Never blocks on subscribers; never throws.
  virtual void publish(const std::string& topic, std::shared_ptr<const std::string> data, PublishHandler done) = 0;

  // This instance gained its first / lost its last local subscriber to
  // `topic` (a Redis backend subscribes to channels only while needed).
  virtual void watch(const std::string& topic) = 0;
  virtual void unwatch(const std::string& topic) = 0;

  // What a subscriber needs on subscribe: with `since`, the publications
  // after it when they are all still in history and there are at most
  // `max_publications` of them (recovered), otherwise the latest value. The
  // bound keeps one subscribe from making an instance read and encode a
  // whole history: beyond it the client is told "not recovered", as for a
  // position that fell out of history. `done` runs on any thread, possibly
  // before read() returns.
  virtual void read(const std::string& topic, const std::optional<StreamPosition>& since,
                    std::size_t max_publications, ReadHandler done) = 0;

  // What a subscriber asking for recent history gets (RecentHistory): the
  // head and, oldest first, the last publications history holds, at most
  // `max_publications` and `recent.count` (when not 0) of them, those older
  // than `recent.max_age` (when set) left out, but never fewer than the
  // latest value. `recovered` is false. Offsets are consecutive and end at
  // the head. A backend that keeps no times or no history may answer with
  // the latest value alone, which is what this default does.
  virtual void read_recent(const std::string& topic, const RecentHistory& /*recent*/, std::size_t max_publications,
                           ReadHandler done) {
    read(topic, std::nullopt, max_publications, std::move(done));
  }

  // This instance now holds `local` subscriptions to `topic` (0: none). The
  // Broker calls it on every subscribe and unsubscribe, one call at a time;
  // a shared backend makes the count visible to the other instances.
  virtual void set_local_presence(const std::string& /*topic*/, std::uint64_t /*local*/) {}

  // The subscriptions to `topic` over every instance sharing the backend,
  // given this instance's own count `local`; `done` runs on any thread. A
  // backend shared by nobody answers `local`.
  virtual void presence(const std::string& /*topic*/, std::uint64_t local, PresenceHandler done) {
    done({}, local);
  }
  // What a closed resumable session left for its client's return
  // (Protocol::resumes_sessions), under its private resume id, for `ttl`:
  // kept where every instance sharing the backend finds it. `done` (any
  // thread) says whether it was kept. take_session hands it over once and
  // forgets it (nullopt: none, expired, or the backend cannot tell now).
  // A backend that keeps nothing answers an error and nullopt.
  using KeepHandler = std::function<void(std::error_code)>;
  using TakeHandler = std::function<void(std::optional<std::string> record)>;
  virtual void keep_session(const std::string& /*resume_id*/, std::string /*record*/,
                            std::chrono::milliseconds /*ttl*/, KeepHandler done) {
    done(make_error_code(Errc::backend_unavailable));
  }
  virtual void take_session(const std::string& /*resume_id*/, TakeHandler done) { done(std::nullopt); }

  // Whether it serves now (any thread, cheap: readiness probes call it).
  virtual BackendHealth health() const { return {}; }
  // Writes the backend's own counters as Prometheus metrics (metrics.hpp);
  // MetricsExporter writes health() itself. Any thread.
  virtual void write_metrics(MetricsWriter& /*out*/) const {}

  // --- Merging an Aggregator's windows over the instances (aggregator.hpp) ---
  //
  // Each instance sees only its own events, but a dashboard wants one summary
  // per window for the whole cluster. Quantile sketches merge exactly, so each
  // instance hands its part of a window (an opaque text: every metric's
  // sketch) to merge_window, and exactly one instance gets every part back
  // and publishes; the others hear that it is taken care of.
  struct WindowContributions {
    // Set: no merge could be made (the backend is unavailable or stopping);
    // nothing else is. The Aggregator then publishes its own part alone
    // rather than nothing, so that charts do not go blank.
    std::error_code error;
    // True: this instance claimed the window and must publish it, from
    // `contributions`. False: another instance claimed it.
    bool publish = true;
    // With publish false: whether this instance's part was in the claimer's
    // merge (false: it came after the claim, because the instances' clocks
    // differ by more than the settle delay; it is lost).
    bool included = true;
    // With publish true: every instance's part, this one's included, in no
    // particular order. Each is as an instance sent it: parse defensively.
    std::vector<std::string> contributions;
  };
  using MergeHandler = std::function<void(WindowContributions)>;

  // Adds `contribution`, this instance's part of the window `window_key`
  // ("<group>:<window>:<start ms>": the same on every instance), waits
  // `settle` for the other instances' parts (their clocks, and so their
  // window ends, differ a little), and then answers on exactly one instance
  // with every part and on the others with publish false; or with an error.
  // One part per instance and key: a second call replaces the first. `done`
  // runs exactly once, on any thread (the backend's: hand the result to your
  // own before running host code), possibly before merge_window returns.
  // Never throws. A backend shared by nobody answers at once with this
  // instance's part alone, so that one process behaves as if nothing merged.
  virtual void merge_window(const std::string& /*window_key*/, std::string contribution,
                            std::chrono::milliseconds /*settle*/, MergeHandler done) {
    WindowContributions own;
    own.contributions.push_back(std::move(contribution));
    done(std::move(own));
  }
};

LIVECAST_END_NAMESPACE
