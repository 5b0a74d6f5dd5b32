// Aggregator: windows aligned to wall-clock boundaries, built from the
// shortest; summaries with exact count/sum/min/max, rate, and quantiles
// within the sketch's accuracy; published on their topics and handed to
// on_window; quiet metrics summed up with count 0; late events; host hooks
// that throw; max_metrics. Driven with a clock of the test's own and tick(),
// except the last case: several threads recording at once (ThreadSanitizer).
#include <livecast/aggregator.hpp>
#include "../core/latest_data.hpp"

#include <livecast/broker.hpp>
#include <livecast/topic.hpp>

#include <ostream>

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace livecast;
using namespace std::chrono_literals;
using Clock = std::chrono::system_clock;

namespace {

// A clock the test moves; starts on a minute boundary.
struct TestClock {
  std::atomic<std::int64_t> ms{1'733'580'000'000};  // 2024-12-07T14:00:00Z
  Clock::time_point now() const { return Clock::time_point(std::chrono::milliseconds(ms.load())); }
  void advance(std::chrono::milliseconds d) { ms += d.count(); }
};

struct Captured {
  std::mutex mutex;
  std::vector<WindowSummary> all;
  std::vector<WindowSummary> of(const std::string& metric, const std::string& window) {
    std::lock_guard<std::mutex> lock(mutex);
    std::vector<WindowSummary> r;
    for (const auto& s : all)
      if (s.metric == metric && s.window == window) r.push_back(s);
    return r;
  }
};

AggregatorSettings test_settings(TestClock& clock, Captured& captured) {
  AggregatorSettings s;
  s.own_thread = false;
  s.clock = [&clock] { return clock.now(); };
  s.on_window = [&captured](const WindowSummary& w) {
    std::lock_guard<std::mutex> lock(captured.mutex);
    captured.all.push_back(w);
  };
  return s;
}

}  // namespace

TEST_CASE("window names") {
  CHECK(Aggregator::window_name(1s) == "1s");
  CHECK(Aggregator::window_name(5s) == "5s");
  CHECK(Aggregator::window_name(1min) == "1m");
  CHECK(Aggregator::window_name(1h) == "1h");
  CHECK(Aggregator::window_name(250ms) == "250ms");
  CHECK(Aggregator::window_name(90s) == "90s");
}

TEST_CASE("1 s summaries: exact count, sum, min, max, mean and rate, quantiles within 1%, published on their topic") {
  TestClock clock;
  Captured captured;
  Broker broker;
  broker.start();
  Aggregator kpis(broker, test_settings(clock, captured));

  clock.advance(100ms);
  for (int v = 1; v <= 100; ++v) kpis.record("latency_ms", v);
  kpis.record("amount", 20.5);
  clock.advance(900ms);  // 14:00:01.000: the first second is over, but within grace
  CHECK(kpis.tick() == 0);
  clock.advance(50ms);
  CHECK(kpis.tick() == 2);  // one summary per metric

  const auto latency = captured.of("latency_ms", "1s");
  REQUIRE(latency.size() == 1);
  const WindowSummary& s = latency[0];
  CHECK(s.start == Clock::time_point(std::chrono::milliseconds(1'733'580'000'000)));
  CHECK(s.length == 1s);
  CHECK(s.count == 100);
  CHECK(s.sum == 5050);
  CHECK(*s.min == 1);
  CHECK(*s.max == 100);
  CHECK(*s.mean == doctest::Approx(50.5));
  CHECK(s.rate == doctest::Approx(100));
  CHECK(*s.p50 == doctest::Approx(50).epsilon(0.01));  // rank floor(0.5 * 99) = 49: the value 50
  CHECK(*s.p90 == doctest::Approx(90).epsilon(0.01));
  CHECK(*s.p99 == doctest::Approx(99).epsilon(0.01));

  const std::string published = livecast_test::latest_data(broker, "agg.latency_ms.1s");
  CHECK(published.find("\"metric\":\"latency_ms\"") != std::string::npos);
  CHECK(published.find("\"window\":\"1s\"") != std::string::npos);
  CHECK(published.find("\"start\":1733580000000") != std::string::npos);
  CHECK(published.find("\"count\":100") != std::string::npos);
  CHECK(published.find("\"p99\":") != std::string::npos);
  CHECK(livecast_test::latest_data(broker, "agg.amount.1s").find("\"sum\":20.5") != std::string::npos);
  CHECK(kpis.metrics().recorded == 101);
  broker.stop();
}

TEST_CASE("5 s and 1 min windows are aligned to the clock and merge the seconds they hold") {
  TestClock clock;
  Captured captured;
  Broker broker;
  broker.start();
  Aggregator kpis(broker, test_settings(clock, captured));
  // One event per second, value = the second's number, for 70 s.
  for (int second = 0; second < 70; ++second) {
    kpis.record("v", second);
    clock.advance(1s);
    kpis.tick(clock.now() + 50ms);
  }
  const auto fives = captured.of("v", "5s");
  REQUIRE(fives.size() == 14);
  for (std::size_t i = 0; i < fives.size(); ++i) {
    CHECK(fives[i].count == 5);
    CHECK(fives[i].start == Clock::time_point(std::chrono::milliseconds(1'733'580'000'000 + 5000 * i)));
    CHECK(*fives[i].min == 5.0 * i);
    CHECK(*fives[i].max == 5.0 * i + 4);
    CHECK(fives[i].rate == doctest::Approx(1));
  }
  const auto minutes = captured.of("v", "1m");
  REQUIRE(minutes.size() == 1);
  CHECK(minutes[0].count == 60);
  CHECK(minutes[0].sum == 59 * 60 / 2);
  CHECK(*minutes[0].max == 59);
  CHECK(*minutes[0].p50 == doctest::Approx(29).epsilon(0.01));
  CHECK(captured.of("v", "1s").size() == 70);
  broker.stop();
}

TEST_CASE("a quiet metric is summed up with count 0; skipped ticks catch up; late events count in the next window") {
  TestClock clock;
  Captured captured;
  Broker broker;
  broker.start();
  AggregatorSettings settings = test_settings(clock, captured);
  settings.windows = {1s};
  Aggregator kpis(broker, settings);
  kpis.record("errors", 1);
  clock.advance(3s);
  CHECK(kpis.tick(clock.now() + 50ms) == 3);  // three seconds at once
  auto seconds = captured.of("errors", "1s");
  REQUIRE(seconds.size() == 3);
  CHECK(seconds[0].count == 1);
  CHECK(seconds[1].count == 0);
  CHECK_FALSE(seconds[1].min);
  CHECK_FALSE(seconds[1].p99);
  CHECK(seconds[2].rate == 0);
  CHECK(livecast_test::latest_data(broker, "agg.errors.1s").find("\"min\":null") != std::string::npos);

  // The clock steps back into a second already summed up.
  clock.advance(-2500ms);
  kpis.record("errors", 7);
  clock.advance(2500ms + 1s);
  kpis.tick(clock.now() + 50ms);
  seconds = captured.of("errors", "1s");
  REQUIRE(seconds.size() == 4);
  CHECK(seconds[3].count == 1);
  CHECK(*seconds[3].max == 7);
  broker.stop();
}

TEST_CASE("host hooks that throw are counted; an empty topic publishes nothing; max_metrics bounds the metrics") {
  TestClock clock;
  Captured captured;
  Broker broker;
  broker.start();
  AggregatorSettings settings = test_settings(clock, captured);
  settings.windows = {1s};
  settings.max_metrics = 2;
  settings.topic = [](std::string_view metric, std::string_view window) -> std::string {
    if (metric == "bad") throw std::runtime_error("no topic for you");
    if (metric == "private") return {};
    return "org:acme:agg." + std::string(metric) + "." + std::string(window);
  };
  Aggregator kpis(broker, settings);
  kpis.record("bad", 1);
  kpis.record("private", 2);
  kpis.record("third", 3);  // past max_metrics
  clock.advance(1s);
  CHECK(kpis.tick(clock.now() + 50ms) == 2);
  const AggregatorMetrics m = kpis.metrics();
  CHECK(m.recorded == 2);
  CHECK(m.dropped_metrics == 1);
  CHECK(m.callback_errors == 1);
  CHECK(m.summaries == 2);
  CHECK(captured.of("private", "1s").size() == 1);  // on_window still hears of it
  CHECK(livecast_test::latest_data(broker, "org:acme:agg.private.1s").empty());
  broker.stop();
}

TEST_CASE("several threads record at once: every event counted once, in its window") {
  TestClock clock;
  Captured captured;
  Broker broker;
  broker.start();
  AggregatorSettings settings = test_settings(clock, captured);
  settings.windows = {1s, 2s};
  Aggregator kpis(broker, settings);
  constexpr int threads = 4, per_thread = 20000;
  std::vector<std::thread> recorders;
  std::atomic<bool> go{false};
  for (int t = 0; t < threads; ++t)
    recorders.emplace_back([&, t] {
      while (!go) std::this_thread::yield();
      for (int i = 0; i < per_thread; ++i) kpis.record(t % 2 ? "odd" : "even", i);
    });
  go = true;
  // A ticker beside them, moving the clock: windows end and are collected
  // while the threads record.
  for (int i = 0; i < 50; ++i) {
    clock.advance(100ms);
    kpis.tick();
  }
  for (auto& r : recorders) r.join();
  clock.advance(3s);
  kpis.tick(clock.now() + 50ms);
  std::uint64_t total = 0;
  for (const char* metric : {"odd", "even"})
    for (const auto& s : captured.of(metric, "1s")) total += s.count;
  CHECK(total == threads * per_thread);
  std::uint64_t in_two = 0;
  for (const char* metric : {"odd", "even"})
    for (const auto& s : captured.of(metric, "2s")) in_two += s.count;
  CHECK(in_two == threads * per_thread);
  CHECK(kpis.metrics().recorded == threads * per_thread);
  broker.stop();
}

TEST_CASE("the own thread publishes each second by itself") {
  Broker broker;
  broker.start();
  std::promise<WindowSummary> first;
  std::atomic<bool> told{false};
  AggregatorSettings settings;
  settings.windows = {1s};
  settings.on_window = [&](const WindowSummary& s) {
    if (s.count > 0 && !told.exchange(true)) first.set_value(s);
  };
  auto future = first.get_future();
  Aggregator kpis(broker, settings);
  // Record until a summary with events comes (at most a few seconds).
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (future.wait_for(20ms) != std::future_status::ready && std::chrono::steady_clock::now() < deadline)
    kpis.record("heartbeat", 1);
  REQUIRE(future.wait_for(0s) == std::future_status::ready);
  CHECK(future.get().window == "1s");
  broker.stop();
}
