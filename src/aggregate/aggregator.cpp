// Aggregator: see include/livecast/aggregator.hpp.
//
// record() writes into its thread's ThreadSlot: a sketch per metric for the
// shortest ("base") window under way. When a thread's next event falls in a
// later base window, the slot files the earlier one away; tick() collects
// what every slot filed (and what the base windows now over still hold),
// merges it per base window and metric, publishes the base summaries, and
// merges them on into the running sketches of the longer windows, which it
// publishes when they end.
//
// With merge_across_instances, a window that ends is not published at once:
// its sketches (every metric's, quiet ones included) go to
// Backend::merge_window as this instance's part (window_contribution.hpp),
// and wait in `pending` for the answer. Answers arrive on the backend's
// thread into the MergeInbox; tick() takes them on the tick thread and
// publishes what this instance claimed (or, when the backend failed, its own
// part). The in-process backend answers within the call, so that tick()
// publishes as before.
#include <livecast/aggregator.hpp>

#include "window_contribution.hpp"

#include <livecast/broker.hpp>
#include <livecast/json.hpp>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <thread>
#include <set>
#include <utility>

LIVECAST_BEGIN_NAMESPACE

namespace {

using Clock = std::chrono::system_clock;
using Sketches = MetricSketches;

std::int64_t floor_div(std::int64_t a, std::int64_t b) noexcept { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

std::int64_t epoch_ms(Clock::time_point t) noexcept {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

// Base windows summed up by one tick at most: after a long pause (a clock
// step, a suspended process) the oldest are skipped rather than published
// in a burst.
constexpr std::int64_t max_windows_per_tick = 3600;

// One recording thread's state, for one Aggregator.
struct ThreadSlot {
  std::mutex mutex;
  std::int64_t window = 0;  // the base window `current` belongs to
  Sketches current;
  std::vector<std::pair<std::int64_t, Sketches>> filed;  // earlier windows, for tick()
  std::uint64_t recorded = 0;
  std::uint64_t dropped = 0;
};

std::atomic<std::uint64_t> next_aggregator_id{1};

// Backend::merge_window's answer for one window.
struct MergeArrival {
  std::string key;
  Backend::WindowContributions result;
};

// Where the backend's thread leaves its answers, and what wakes the own
// thread: an answer, or the destructor. Shared with the handlers, so that an
// answer after the Aggregator is gone lands here harmlessly.
struct MergeInbox {
  std::mutex mutex;
  std::condition_variable wake;
  std::deque<MergeArrival> arrived;
  bool stopping = false;
};

// A window handed to merge_window, until its answer comes.
struct PendingWindow {
  std::chrono::milliseconds length{0};
  std::int64_t start_ms = 0;
  Sketches local;    // this instance's part: published alone if the merge fails
  std::string part;  // as sent: the in-process answer hands back just this
};

}  // namespace

struct Aggregator::Impl {
  Impl(Broker& b, AggregatorSettings s) : broker(b), settings(std::move(s)), id(next_aggregator_id.fetch_add(1)) {
    auto& w = settings.windows;
    w.erase(std::remove_if(w.begin(), w.end(), [](std::chrono::milliseconds l) { return l.count() <= 0; }), w.end());
    if (w.empty()) w.push_back(std::chrono::seconds(1));
    std::sort(w.begin(), w.end());
    w.erase(std::unique(w.begin(), w.end()), w.end());
    base = w.front();
    for (std::size_t i = 1; i < w.size(); ++i)
      if (w[i].count() % base.count() == 0) longer.push_back(Longer{w[i], w[i].count() / base.count(), {}});
    next_base = floor_div(epoch_ms(now()), base.count());
  }

  Clock::time_point now() const { return settings.clock ? settings.clock() : Clock::now(); }

  ThreadSlot& slot() {
    // Per thread, the slots of the Aggregators it recorded into (usually one).
    thread_local std::vector<std::pair<std::uint64_t, std::shared_ptr<ThreadSlot>>> mine;
    for (auto& [owner, s] : mine)
      if (owner == id) return *s;
    auto s = std::make_shared<ThreadSlot>();
    {
      std::lock_guard<std::mutex> lock(slots_mutex);
      slots.push_back(s);
    }
    mine.emplace_back(id, s);
    return *mine.back().second;
  }

  // A metric's first event in a base window on some thread: known, or room for it.
  bool admit(std::string_view metric) {
    std::lock_guard<std::mutex> lock(names_mutex);
    if (names.find(metric) != names.end()) return true;
    if (names.size() >= settings.max_metrics) return false;
    names.emplace(metric);
    return true;
  }

  void record(std::string_view metric, double value) {
    if (std::isnan(value)) return;
    const std::int64_t window = floor_div(epoch_ms(now()), base.count());
    ThreadSlot& s = slot();
    std::lock_guard<std::mutex> lock(s.mutex);
    if (window != s.window) {
      if (!s.current.empty()) s.filed.emplace_back(s.window, std::move(s.current));
      s.current.clear();
      s.window = window;
    }
    auto it = s.current.find(metric);
    if (it == s.current.end()) {
      if (!admit(metric)) {
        ++s.dropped;
        return;
      }
      it = s.current.emplace(std::string(metric), QuantileSketch(settings.sketch)).first;
    }
    it->second.add(value);
    ++s.recorded;
  }

  std::size_t tick(Clock::time_point at) {
    std::lock_guard<std::mutex> lock(tick_mutex);
    std::size_t made = close_windows(at);
    made += publish_arrivals();
    summaries.fetch_add(made, std::memory_order_relaxed);
    return made;
  }

  // Sums up the base windows over by `at`, and the longer windows they end.
  std::size_t close_windows(Clock::time_point at) {
    const std::int64_t over = floor_div(epoch_ms(at) - settings.grace.count(), base.count());  // windows < over are done
    if (over <= next_base) return 0;

    // What every thread recorded in the windows now over, by window.
    std::map<std::int64_t, Sketches> windows;
    auto take = [&](std::int64_t window, Sketches& sketches) {
      // Late events (a window already summed up: the clock stepped back)
      // count in the first window summed up now.
      Sketches& into = windows[std::max(window, next_base)];
      for (auto& [metric, sketch] : sketches) {
        auto [it, fresh] = into.try_emplace(metric, settings.sketch);
        it->second.merge(sketch);
      }
    };
    std::vector<std::shared_ptr<ThreadSlot>> all;
    {
      std::lock_guard<std::mutex> slots_lock(slots_mutex);
      all = slots;
    }
    for (auto& s : all) {
      std::lock_guard<std::mutex> slot_lock(s->mutex);
      for (auto it = s->filed.begin(); it != s->filed.end();) {
        if (it->first < over) {
          take(it->first, it->second);
          it = s->filed.erase(it);
        } else {
          ++it;
        }
      }
      if (s->window < over && !s->current.empty()) {
        take(s->window, s->current);
        s->current.clear();
      }
    }
    std::vector<std::string> metrics;
    {
      std::lock_guard<std::mutex> names_lock(names_mutex);
      metrics.assign(names.begin(), names.end());
    }
    std::sort(metrics.begin(), metrics.end());

    std::size_t made = 0;
    std::int64_t first = next_base;
    if (over - first > max_windows_per_tick) first = over - max_windows_per_tick;
    for (std::int64_t w = first; w < over; ++w) {
      // Every known metric's sketch of the base window (empty when quiet).
      Sketches base_window;
      auto found = windows.find(w);
      for (const std::string& metric : metrics) {
        auto it = base_window.emplace_hint(base_window.end(), metric, QuantileSketch(settings.sketch));
        if (found == windows.end()) continue;
        auto own = found->second.find(metric);
        if (own != found->second.end()) it->second = std::move(own->second);
      }
      for (Longer& l : longer)
        for (const auto& [metric, sketch] : base_window) {
          auto [it, fresh] = l.running.try_emplace(metric, settings.sketch);
          it->second.merge(sketch);
        }
      made += close_window(base, w * base.count(), std::move(base_window));
      for (Longer& l : longer) {
        if (floor_div(w + 1, l.ratio) * l.ratio != w + 1) continue;  // not the last base window of one
        made += close_window(l.length, (w + 1 - l.ratio) * base.count(), std::move(l.running));
        l.running.clear();
      }
    }
    next_base = over;
    return made;
  }

  // A window is over: published now, or handed to the backend to merge with
  // the other instances' parts. Returns the summaries published now.
  std::size_t close_window(std::chrono::milliseconds length, std::int64_t start_ms, Sketches sketches) {
    if (!settings.merge_across_instances) return publish_window(length, start_ms, sketches, 1);
    if (sketches.empty()) return 0;  // no metric known yet: nothing to add
    std::string key = settings.merge_group + ":" + window_name(length) + ":" + std::to_string(start_ms);
    std::string part = encode_window_contribution(sketches);
    pending[key] = PendingWindow{length, start_ms, std::move(sketches), part};
    contributions_sent.fetch_add(1, std::memory_order_relaxed);
    // Runs on the backend's thread (or within the call): no host code here,
    // and nothing that may throw into the backend.
    Backend::MergeHandler arrive = [inbox = inbox, key](Backend::WindowContributions result) noexcept {
      try {
        std::lock_guard<std::mutex> lock(inbox->mutex);
        inbox->arrived.push_back(MergeArrival{key, std::move(result)});
      } catch (...) {
        return;  // out of memory: the window stays pending, unpublished
      }
      inbox->wake.notify_all();
    };
    try {
      broker.backend().merge_window(key, std::move(part), settings.merge_settle, std::move(arrive));
    } catch (...) {  // a host's Backend that broke its promise not to throw
      Backend::WindowContributions failed;
      failed.error = make_error_code(Errc::backend_unavailable);
      std::lock_guard<std::mutex> lock(inbox->mutex);
      inbox->arrived.push_back(MergeArrival{key, std::move(failed)});
    }
    return 0;
  }

  // Publishes the windows whose merge answer came; on the tick thread.
  std::size_t publish_arrivals() {
    std::deque<MergeArrival> arrived;
    {
      std::lock_guard<std::mutex> lock(inbox->mutex);
      arrived.swap(inbox->arrived);
    }
    std::size_t made = 0;
    for (MergeArrival& a : arrived) {
      auto node = pending.extract(a.key);
      if (node.empty()) continue;
      const PendingWindow& p = node.mapped();
      const Backend::WindowContributions& r = a.result;
      if (r.error) {
        merge_fallbacks.fetch_add(1, std::memory_order_relaxed);
        made += publish_window(p.length, p.start_ms, p.local, 1);
        continue;
      }
      if (!r.publish) {
        windows_merged_elsewhere.fetch_add(1, std::memory_order_relaxed);
        if (!r.included) contributions_late.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      if (r.contributions.size() == 1 && r.contributions.front() == p.part) {  // alone: no need to parse
        merged_windows.fetch_add(1, std::memory_order_relaxed);
        made += publish_window(p.length, p.start_ms, p.local, 1);
        continue;
      }
      MergedWindow merged = merge_window_contributions(r.contributions, settings.sketch);
      contributions_malformed.fetch_add(merged.malformed, std::memory_order_relaxed);
      if (merged.parts == 0) {  // not even this instance's part came back (Redis lost it)
        merge_fallbacks.fetch_add(1, std::memory_order_relaxed);
        made += publish_window(p.length, p.start_ms, p.local, 1);
        continue;
      }
      merged_windows.fetch_add(1, std::memory_order_relaxed);
      made += publish_window(p.length, p.start_ms, merged.sketches, merged.parts);
    }
    return made;
  }

  std::size_t publish_window(std::chrono::milliseconds length, std::int64_t start_ms, const Sketches& sketches,
                             std::uint64_t instances) {
    std::size_t made = 0;
    for (const auto& [metric, sketch] : sketches) made += summarize(metric, length, start_ms, sketch, instances);
    return made;
  }

  // Publishes one summary and hands it to on_window; 1 when made.
  std::size_t summarize(const std::string& metric, std::chrono::milliseconds length, std::int64_t start_ms,
                        const QuantileSketch& sketch, std::uint64_t instances) {
    WindowSummary s;
    s.metric = metric;
    s.window = window_name(length);
    s.start = Clock::time_point(std::chrono::milliseconds(start_ms));
    s.length = length;
    s.count = sketch.count();
    s.sum = sketch.sum();
    s.min = sketch.min();
    s.max = sketch.max();
    if (s.count) s.mean = s.sum / static_cast<double>(s.count);
    s.rate = static_cast<double>(s.count) * 1000.0 / static_cast<double>(length.count());
    s.p50 = sketch.quantile(0.50);
    s.p90 = sketch.quantile(0.90);
    s.p95 = sketch.quantile(0.95);
    s.p99 = sketch.quantile(0.99);
    s.sketch = std::make_shared<const QuantileSketch>(sketch);
    s.instances = instances;

    std::string topic;
    try {
      topic = settings.topic ? settings.topic(metric, s.window) : "agg." + metric + "." + s.window;
    } catch (...) {
      callback_errors.fetch_add(1, std::memory_order_relaxed);
      topic.clear();
    }
    if (!topic.empty() && broker.publish(topic, to_json(s)))
      publish_errors.fetch_add(1, std::memory_order_relaxed);
    if (settings.on_window) {
      try {
        settings.on_window(s);
      } catch (...) {
        callback_errors.fetch_add(1, std::memory_order_relaxed);
      }
    }
    return 1;
  }

  static Json to_json(const WindowSummary& s) {
    auto number = [](const std::optional<double>& v) { return v ? Json(*v) : Json(nullptr); };
    return Json::object({{"metric", s.metric},
                         {"window", s.window},
                         {"start", epoch_ms(s.start)},
                         {"count", s.count},
                         {"sum", s.sum},
                         {"min", number(s.min)},
                         {"max", number(s.max)},
                         {"mean", number(s.mean)},
                         {"rate", s.rate},
                         {"p50", number(s.p50)},
                         {"p90", number(s.p90)},
                         {"p95", number(s.p95)},
                         {"p99", number(s.p99)},
                         {"instances", s.instances}});
  }

  void run() {
    std::unique_lock<std::mutex> lock(inbox->mutex);
    while (!inbox->stopping) {
      // Wake at the next base boundary plus grace (real time: the own
      // thread is for production; tests drive tick() themselves), or when
      // a merged window came back.
      const std::int64_t now_ms = epoch_ms(Clock::now());
      const std::int64_t due = (floor_div(now_ms, base.count()) + 1) * base.count() + settings.grace.count();
      inbox->wake.wait_until(lock, Clock::time_point(std::chrono::milliseconds(due)),
                             [this] { return inbox->stopping || !inbox->arrived.empty(); });
      if (inbox->stopping) break;
      lock.unlock();
      tick(now());
      lock.lock();
    }
  }

  struct Longer {
    std::chrono::milliseconds length;
    std::int64_t ratio;
    Sketches running;  // this window so far, per metric
  };

  Broker& broker;
  AggregatorSettings settings;
  const std::uint64_t id;
  std::chrono::milliseconds base{1000};
  std::vector<Longer> longer;

  std::mutex slots_mutex;
  std::vector<std::shared_ptr<ThreadSlot>> slots;
  std::mutex names_mutex;
  std::set<std::string, std::less<>> names;

  std::mutex tick_mutex;
  std::int64_t next_base = 0;  // the first base window not summed up yet
  std::map<std::string, PendingWindow> pending;  // by merge key; under tick_mutex

  std::atomic<std::uint64_t> summaries{0}, publish_errors{0}, callback_errors{0};
  std::atomic<std::uint64_t> contributions_sent{0}, merged_windows{0}, windows_merged_elsewhere{0},
      contributions_malformed{0}, contributions_late{0}, merge_fallbacks{0};

  const std::shared_ptr<MergeInbox> inbox = std::make_shared<MergeInbox>();
  std::thread thread;
};

Aggregator::Aggregator(Broker& broker, AggregatorSettings settings)
    : impl_(std::make_shared<Impl>(broker, std::move(settings))) {
  if (impl_->settings.own_thread) impl_->thread = std::thread([impl = impl_.get()] { impl->run(); });
}

Aggregator::~Aggregator() {
  {
    std::lock_guard<std::mutex> lock(impl_->inbox->mutex);
    impl_->inbox->stopping = true;
  }
  impl_->inbox->wake.notify_all();
  if (impl_->thread.joinable()) impl_->thread.join();
}

void Aggregator::record(std::string_view metric, double value) { impl_->record(metric, value); }
std::size_t Aggregator::tick() { return impl_->tick(impl_->now()); }
std::size_t Aggregator::tick(std::chrono::system_clock::time_point now) { return impl_->tick(now); }

AggregatorMetrics Aggregator::metrics() const {
  AggregatorMetrics m;
  {
    std::lock_guard<std::mutex> lock(impl_->slots_mutex);
    for (const auto& s : impl_->slots) {
      std::lock_guard<std::mutex> slot_lock(s->mutex);
      m.recorded += s->recorded;
      m.dropped_metrics += s->dropped;
    }
  }
  m.summaries = impl_->summaries.load(std::memory_order_relaxed);
  m.publish_errors = impl_->publish_errors.load(std::memory_order_relaxed);
  m.callback_errors = impl_->callback_errors.load(std::memory_order_relaxed);
  m.contributions_sent = impl_->contributions_sent.load(std::memory_order_relaxed);
  m.merged_windows = impl_->merged_windows.load(std::memory_order_relaxed);
  m.windows_merged_elsewhere = impl_->windows_merged_elsewhere.load(std::memory_order_relaxed);
  m.contributions_malformed = impl_->contributions_malformed.load(std::memory_order_relaxed);
  m.contributions_late = impl_->contributions_late.load(std::memory_order_relaxed);
  m.merge_fallbacks = impl_->merge_fallbacks.load(std::memory_order_relaxed);
  return m;
}

std::string Aggregator::window_name(std::chrono::milliseconds length) {
  const std::int64_t ms = length.count();
  if (ms > 0 && ms % 3600000 == 0) return std::to_string(ms / 3600000) + "h";
  if (ms > 0 && ms % 60000 == 0) return std::to_string(ms / 60000) + "m";
  if (ms > 0 && ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

LIVECAST_END_NAMESPACE
