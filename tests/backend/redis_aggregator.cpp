// Aggregator::merge_across_instances with two instances (Brokers with their
// own RedisBackend) on one real redis-server: each window published once,
// by one of them, with count, sum, extremes and quantiles of both (a metric
// recorded on one instance only included); with the setting off, each
// instance's own; with Redis gone, each instance's own part (fallback).
// Each Aggregator has a clock of the test's and is ticked by the test; the
// merges run on the backends' threads (a ThreadSanitizer test too). Skipped,
// not failed, without /usr/bin/redis-server.
#include "redis_fixture.hpp"

#include <livecast/aggregator.hpp>
#include <livecast/topic.hpp>

#include <atomic>
#include <map>
#include <mutex>
#include <tuple>

using namespace livecast;
using namespace livecast_test;
using namespace std::chrono_literals;
using Clock = std::chrono::system_clock;

namespace {

constexpr std::int64_t minute_ms = 1'733'580'000'000;  // 2024-12-07T14:00:00Z

struct TestClock {
  std::atomic<std::int64_t> ms{minute_ms};
  Clock::time_point now() const { return Clock::time_point(std::chrono::milliseconds(ms.load())); }
  void advance(std::chrono::milliseconds d) { ms += d.count(); }
};

// Every summary either instance made, with which one made it.
struct Summaries {
  std::mutex mutex;
  std::vector<std::pair<char, WindowSummary>> all;
  std::vector<WindowSummary> of(const std::string& metric, const std::string& window, std::int64_t start_ms) {
    std::lock_guard<std::mutex> lock(mutex);
    std::vector<WindowSummary> r;
    for (const auto& [by, s] : all)
      if (s.metric == metric && s.window == window && s.start == Clock::time_point(std::chrono::milliseconds(start_ms)))
        r.push_back(s);
    return r;
  }
  std::size_t size() {
    std::lock_guard<std::mutex> lock(mutex);
    return all.size();
  }
};

AggregatorSettings settings_for(char name, TestClock& clock, Summaries& summaries) {
  AggregatorSettings s;
  s.own_thread = false;
  s.windows = {1s, 2s};
  s.clock = [&clock] { return clock.now(); };
  // Longer than the default: the two instances are ticked one after the
  // other on a loaded two-core machine (ThreadSanitizer), and must both be
  // in Redis before either claims.
  s.merge_settle = 1s;
  s.on_window = [name, &summaries](const WindowSummary& w) {
    std::lock_guard<std::mutex> lock(summaries.mutex);
    summaries.all.emplace_back(name, w);
  };
  return s;
}

QuantileSketch sketch_of(const std::vector<double>& values) {
  QuantileSketch s;
  for (double v : values) s.add(v);
  return s;
}

// The latest publication of `topic` as `broker` reads it from Redis, and
// its offset: the number of publications the topic ever had.
std::pair<std::string, std::uint64_t> latest(Broker& broker, const std::string& topic) {
  auto answer = std::make_shared<std::promise<std::pair<std::string, std::uint64_t>>>();
  auto future = answer->get_future();
  broker.topic(topic).latest([answer](std::error_code, std::optional<Publication> p, StreamPosition) {
    if (p && p->data)
      answer->set_value({*p->data, p->offset});
    else
      answer->set_value({std::string(), 0});
  });
  REQUIRE(future.wait_for(wait_limit) == std::future_status::ready);
  return future.get();
}

}  // namespace

TEST_CASE("two instances on one Redis: one summary per window, merged from both") {
  SKIP_WITHOUT_REDIS_SERVER();
  RedisServer redis;
  Instance a(redis.url()), b(redis.url());
  TestClock clock_a, clock_b;
  Summaries summaries;
  Aggregator kpis_a(*a.broker, settings_for('a', clock_a, summaries));
  Aggregator kpis_b(*b.broker, settings_for('b', clock_b, summaries));

  // Second 0: latency on both (different values), only_a on A alone.
  std::vector<double> latency_a, latency_b;
  for (int v = 1; v <= 100; ++v) latency_a.push_back(v);
  for (int v = 0; v < 50; ++v) latency_b.push_back(1000 + 3 * v);
  for (double v : latency_a) kpis_a.record("latency_ms", v);
  for (double v : latency_b) kpis_b.record("latency_ms", v);
  kpis_a.record("only_a", 7);
  // Second 1: one event each.
  clock_a.advance(1s);
  clock_b.advance(1s);
  kpis_a.record("latency_ms", 5000);
  kpis_b.record("latency_ms", 0.5);
  clock_a.advance(1050ms);
  clock_b.advance(1050ms);

  // Both hand their parts to Redis; nothing is published before the merge.
  CHECK(kpis_a.tick() == 0);
  CHECK(kpis_b.tick() == 0);
  // Three windows (1s at 0 and 1, 2s at 0), two metrics each: 6 summaries.
  REQUIRE(eventually([&] {
    kpis_a.tick();
    kpis_b.tick();
    const AggregatorMetrics ma = kpis_a.metrics(), mb = kpis_b.metrics();
    return ma.merged_windows + mb.merged_windows == 3 && ma.windows_merged_elsewhere + mb.windows_merged_elsewhere == 3;
  }));
  CHECK(summaries.size() == 6);
  const AggregatorMetrics ma = kpis_a.metrics(), mb = kpis_b.metrics();
  CHECK(ma.contributions_sent == 3);
  CHECK(mb.contributions_sent == 3);
  CHECK(ma.summaries + mb.summaries == 6);
  CHECK(ma.merge_fallbacks + mb.merge_fallbacks == 0);
  CHECK(ma.contributions_late + mb.contributions_late == 0);
  CHECK(ma.contributions_malformed + mb.contributions_malformed == 0);

  // Second 0: exactly one summary, of both instances' events.
  const auto first = summaries.of("latency_ms", "1s", minute_ms);
  REQUIRE(first.size() == 1);
  const WindowSummary& s = first[0];
  std::vector<double> both = latency_a;
  both.insert(both.end(), latency_b.begin(), latency_b.end());
  const QuantileSketch union_sketch = sketch_of(both);
  CHECK(s.instances == 2);
  CHECK(s.count == 150);
  CHECK(s.sum == doctest::Approx(5050 + 50 * 1000 + 3 * 49 * 50 / 2));
  CHECK(*s.min == 1);
  CHECK(*s.max == 1147);
  CHECK(s.rate == doctest::Approx(150));
  CHECK(*s.p50 == *union_sketch.quantile(0.50));
  CHECK(*s.p90 == *union_sketch.quantile(0.90));
  CHECK(*s.p95 == *union_sketch.quantile(0.95));
  CHECK(*s.p99 == *union_sketch.quantile(0.99));
  REQUIRE(s.sketch);
  CHECK(*s.sketch == union_sketch);
  // A metric recorded on A alone: still in the merged window, once.
  const auto only_a = summaries.of("only_a", "1s", minute_ms);
  REQUIRE(only_a.size() == 1);
  CHECK(only_a[0].count == 1);
  CHECK(only_a[0].instances == 2);  // both parts were merged; B's held no only_a
  // The 2 s window merges both seconds of both instances.
  const auto two = summaries.of("latency_ms", "2s", minute_ms);
  REQUIRE(two.size() == 1);
  CHECK(two[0].count == 152);
  CHECK(*two[0].min == 0.5);
  CHECK(*two[0].max == 5000);
  CHECK(two[0].instances == 2);
  REQUIRE(summaries.of("latency_ms", "1s", minute_ms + 1000).size() == 1);
  CHECK(summaries.of("only_a", "1s", minute_ms + 1000)[0].count == 0);

  // On the topic, as either instance reads it from Redis: one publication
  // per window, the merged one. on_window runs once the summary was handed
  // to the broker, whose publish reaches Redis a round trip later: wait for it.
  REQUIRE(eventually([&] { return latest(*a.broker, "agg.latency_ms.1s").second == 2; }));  // seconds 0 and 1
  for (Broker* broker : {a.broker.get(), b.broker.get()}) {
    std::pair<std::string, std::uint64_t> seen;
    REQUIRE(eventually([&] {
      seen = latest(*broker, "agg.latency_ms.2s");
      return seen.second >= 1;
    }));
    CHECK(seen.second == 1);
    CHECK(seen.first.find("\"count\":152") != std::string::npos);
    CHECK(seen.first.find("\"instances\":2") != std::string::npos);
  }
  CHECK(latest(*a.broker, "agg.latency_ms.1s").second == 2);  // and no third
}

TEST_CASE("merge_across_instances false: each instance publishes its own windows, as before") {
  SKIP_WITHOUT_REDIS_SERVER();
  RedisServer redis;
  Instance a(redis.url()), b(redis.url());
  TestClock clock_a, clock_b;
  Summaries summaries;
  AggregatorSettings sa = settings_for('a', clock_a, summaries), sb = settings_for('b', clock_b, summaries);
  sa.windows = sb.windows = {1s};
  sa.merge_across_instances = sb.merge_across_instances = false;
  Aggregator kpis_a(*a.broker, sa);
  Aggregator kpis_b(*b.broker, sb);
  kpis_a.record("latency_ms", 1);
  kpis_b.record("latency_ms", 2);
  kpis_b.record("latency_ms", 3);
  clock_a.advance(1050ms);
  clock_b.advance(1050ms);
  CHECK(kpis_a.tick() == 1);  // at once, no merge
  CHECK(kpis_b.tick() == 1);
  const auto mine = summaries.of("latency_ms", "1s", minute_ms);
  REQUIRE(mine.size() == 2);
  for (const WindowSummary& s : mine) CHECK(s.instances == 1);
  CHECK(mine[0].count + mine[1].count == 3);
  CHECK(kpis_a.metrics().contributions_sent == 0);
  // Both went out on the topic.
  CHECK(eventually([&] { return latest(*a.broker, "agg.latency_ms.1s").second == 2; }));
}

TEST_CASE("with Redis gone, each instance publishes its own part rather than nothing") {
  SKIP_WITHOUT_REDIS_SERVER();
  RedisServer redis;
  Instance a(redis.url());
  TestClock clock;
  Summaries summaries;
  AggregatorSettings settings = settings_for('a', clock, summaries);
  settings.windows = {1s};
  Aggregator kpis(*a.broker, settings);
  redis.kill();
  REQUIRE(eventually([&] { return !a.backend->connected(); }));
  kpis.record("latency_ms", 42);
  clock.advance(1050ms);
  // Refused at once, or failed in flight when only one connection had noticed yet.
  std::size_t published = 0;
  REQUIRE(eventually([&] {
    published += kpis.tick();
    return published == 1;
  }));
  const auto own = summaries.of("latency_ms", "1s", minute_ms);
  REQUIRE(own.size() == 1);
  CHECK(own[0].count == 1);
  CHECK(own[0].instances == 1);
  CHECK(kpis.metrics().merge_fallbacks == 1);
  CHECK(kpis.metrics().merged_windows == 0);
}
