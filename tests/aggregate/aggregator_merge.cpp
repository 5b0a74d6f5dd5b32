// Aggregator::merge_across_instances against a Backend whose merge_window
// the test answers itself, from a thread of its own as a Redis backend
// would: the window waits for the answer; host callbacks run on the tick
// thread, never the answering one; other instances' parts are merged
// (malformed ones skipped and counted); a failed merge publishes the local
// part; a window claimed elsewhere publishes nothing; an answer after the
// Aggregator is gone is harmless. Then the in-process default, the setting
// off, and write_metrics against docs/operations.md. Clock and tick() are
// the test's: no sleeps.
#include <livecast/aggregator.hpp>
#include "../core/latest_data.hpp"
#include "../ops/prometheus_text.hpp"
#include "window_contribution.hpp"

#include <livecast/broker.hpp>
#include <livecast/in_process_backend.hpp>
#include <livecast/metrics.hpp>

#include <ostream>

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

using namespace livecast;
using namespace std::chrono_literals;
using Clock = std::chrono::system_clock;

namespace {

constexpr std::int64_t minute_ms = 1'733'580'000'000;  // 2024-12-07T14:00:00Z

struct TestClock {
  std::atomic<std::int64_t> ms{minute_ms};
  Clock::time_point now() const { return Clock::time_point(std::chrono::milliseconds(ms.load())); }
  void advance(std::chrono::milliseconds d) { ms += d.count(); }
};

// One merge_window call, to be answered by the test.
struct MergeRequest {
  std::string key, part;
  std::chrono::milliseconds settle{0};
  Backend::MergeHandler done;
};

// The in-process backend for everything else; merge_window calls are kept
// for the test to answer.
class ScriptedMergeBackend final : public Backend {
 public:
  void start(BackendListener& l) override { inner_.start(l); }
  void stop() override { inner_.stop(); }
  void publish(const std::string& t, std::shared_ptr<const std::string> d, PublishHandler done) override {
    inner_.publish(t, std::move(d), std::move(done));
  }
  void watch(const std::string& t) override { inner_.watch(t); }
  void unwatch(const std::string& t) override { inner_.unwatch(t); }
  void read(const std::string& t, const std::optional<StreamPosition>& since, std::size_t most,
            ReadHandler done) override {
    inner_.read(t, since, most, std::move(done));
  }
  void merge_window(const std::string& key, std::string part, std::chrono::milliseconds settle,
                    MergeHandler done) override {
    std::lock_guard<std::mutex> lock(mutex_);
    requests_.push_back(MergeRequest{key, std::move(part), settle, std::move(done)});
  }

  std::vector<MergeRequest> take() {
    std::lock_guard<std::mutex> lock(mutex_);
    return std::move(requests_);
  }

 private:
  InProcessBackend inner_;
  std::mutex mutex_;
  std::vector<MergeRequest> requests_;
};

// Answers on a thread of its own, as a backend's thread would.
void answer_from_another_thread(Backend::MergeHandler& done, Backend::WindowContributions result,
                                std::thread::id* answered_on = nullptr) {
  std::thread t([&] {
    if (answered_on) *answered_on = std::this_thread::get_id();
    done(std::move(result));
  });
  t.join();
}

struct Captured {
  std::mutex mutex;
  std::vector<WindowSummary> all;
  std::vector<std::thread::id> threads;
  std::vector<WindowSummary> of(const std::string& metric) {
    std::lock_guard<std::mutex> lock(mutex);
    std::vector<WindowSummary> r;
    for (const auto& s : all)
      if (s.metric == metric) r.push_back(s);
    return r;
  }
};

AggregatorSettings merge_settings(TestClock& clock, Captured& captured) {
  AggregatorSettings s;
  s.own_thread = false;
  s.windows = {1s};
  s.clock = [&clock] { return clock.now(); };
  s.on_window = [&captured](const WindowSummary& w) {
    std::lock_guard<std::mutex> lock(captured.mutex);
    captured.all.push_back(w);
    captured.threads.push_back(std::this_thread::get_id());
  };
  return s;
}

// Another instance's part of a window.
std::string part_of(const std::map<std::string, std::vector<double>>& metrics) {
  MetricSketches sketches;
  for (const auto& [metric, values] : metrics) {
    QuantileSketch s;
    for (double v : values) s.add(v);
    sketches.emplace(metric, std::move(s));
  }
  return encode_window_contribution(sketches);
}

struct ScriptedBroker {
  ScriptedBroker() {
    auto owned = std::make_unique<ScriptedMergeBackend>();
    backend = owned.get();
    broker = std::make_unique<Broker>(BrokerSettings{}, std::move(owned));
    broker->start();
  }
  ~ScriptedBroker() { broker->stop(); }
  ScriptedMergeBackend* backend = nullptr;
  std::unique_ptr<Broker> broker;
};

}  // namespace

TEST_CASE("a merged window: answered on the backend's thread, published by the next tick on its own thread") {
  TestClock clock;
  Captured captured;
  ScriptedBroker b;
  AggregatorSettings settings = merge_settings(clock, captured);
  settings.merge_settle = 321ms;
  settings.merge_group = "kpis";
  Aggregator kpis(*b.broker, settings);
  for (int v = 1; v <= 10; ++v) kpis.record("latency_ms", v);
  kpis.record("only_here", 5);
  clock.advance(1050ms);
  CHECK(kpis.tick() == 0);  // handed to the backend, not published
  auto requests = b.backend->take();
  REQUIRE(requests.size() == 1);
  CHECK(requests[0].key == "kpis:1s:" + std::to_string(minute_ms));
  CHECK(requests[0].settle == 321ms);
  const auto own = parse_window_contribution(requests[0].part, {});
  REQUIRE(own);
  CHECK(own->at("latency_ms").count() == 10);

  Backend::WindowContributions merged;
  merged.contributions = {requests[0].part, part_of({{"latency_ms", {100, 110}}, {"only_there", {7, 8, 9}}}),
                          "lcw1 1\nnot a part"};
  std::thread::id backend_thread;
  answer_from_another_thread(requests[0].done, std::move(merged), &backend_thread);
  CHECK(captured.of("latency_ms").empty());  // nothing ran on the answering thread

  CHECK(kpis.tick() == 3);  // latency_ms, only_here, only_there
  const auto latency = captured.of("latency_ms");
  REQUIRE(latency.size() == 1);
  CHECK(latency[0].count == 12);
  CHECK(latency[0].sum == 55 + 210);
  CHECK(*latency[0].min == 1);
  CHECK(*latency[0].max == 110);
  CHECK(latency[0].instances == 2);
  CHECK(latency[0].rate == doctest::Approx(12));
  REQUIRE(captured.of("only_there").size() == 1);
  CHECK(captured.of("only_there")[0].count == 3);
  CHECK(captured.of("only_here")[0].count == 1);
  for (const auto& id : captured.threads) {
    CHECK(id == std::this_thread::get_id());
    CHECK(id != backend_thread);
  }
  const std::string published = livecast_test::latest_data(*b.broker, "agg.latency_ms.1s");
  CHECK(published.find("\"instances\":2") != std::string::npos);
  CHECK(published.find("\"count\":12") != std::string::npos);
  const AggregatorMetrics m = kpis.metrics();
  CHECK(m.contributions_sent == 1);
  CHECK(m.merged_windows == 1);
  CHECK(m.contributions_malformed == 1);
  CHECK(m.summaries == 3);
  CHECK(kpis.tick() == 0);  // published once
}

TEST_CASE("a failed merge publishes the local part; a window claimed elsewhere publishes nothing") {
  TestClock clock;
  Captured captured;
  ScriptedBroker b;
  Aggregator kpis(*b.broker, merge_settings(clock, captured));
  kpis.record("v", 1);
  clock.advance(1050ms);
  kpis.record("v", 2);
  clock.advance(1000ms);
  kpis.record("v", 3);
  clock.advance(1000ms);
  kpis.tick();
  auto requests = b.backend->take();
  REQUIRE(requests.size() == 3);

  Backend::WindowContributions failed;
  failed.error = make_error_code(Errc::backend_unavailable);
  failed.publish = false;
  answer_from_another_thread(requests[0].done, failed);
  Backend::WindowContributions elsewhere;
  elsewhere.publish = false;
  answer_from_another_thread(requests[1].done, elsewhere);
  Backend::WindowContributions late = elsewhere;
  late.included = false;
  answer_from_another_thread(requests[2].done, late);

  CHECK(kpis.tick() == 1);
  const auto v = captured.of("v");
  REQUIRE(v.size() == 1);
  CHECK(v[0].count == 1);  // the first window, from this instance alone
  CHECK(*v[0].max == 1);
  CHECK(v[0].instances == 1);
  const AggregatorMetrics m = kpis.metrics();
  CHECK(m.merge_fallbacks == 1);
  CHECK(m.windows_merged_elsewhere == 2);
  CHECK(m.contributions_late == 1);
  CHECK(m.merged_windows == 0);
}

TEST_CASE("an answer after the Aggregator is gone lands nowhere, harmlessly") {
  TestClock clock;
  Captured captured;
  ScriptedBroker b;
  std::vector<MergeRequest> requests;
  {
    Aggregator kpis(*b.broker, merge_settings(clock, captured));
    kpis.record("v", 1);
    clock.advance(1050ms);
    kpis.tick();
    requests = b.backend->take();
  }
  REQUIRE(requests.size() == 1);
  Backend::WindowContributions merged;
  merged.contributions = {requests[0].part};
  answer_from_another_thread(requests[0].done, merged);
  CHECK(captured.of("v").empty());
}

TEST_CASE("the in-process backend answers at once: one process publishes in the same tick, instances 1") {
  TestClock clock;
  Captured captured;
  Broker broker;
  broker.start();
  Aggregator kpis(broker, merge_settings(clock, captured));
  kpis.record("v", 4);
  clock.advance(1050ms);
  CHECK(kpis.tick() == 1);
  REQUIRE(captured.of("v").size() == 1);
  CHECK(captured.of("v")[0].instances == 1);
  CHECK(livecast_test::latest_data(broker, "agg.v.1s").find("\"instances\":1") != std::string::npos);
  CHECK(kpis.metrics().contributions_sent == 1);
  CHECK(kpis.metrics().merged_windows == 1);
  broker.stop();
}

TEST_CASE("merge_across_instances false: each window published at once, the backend not asked") {
  TestClock clock;
  Captured captured;
  ScriptedBroker b;
  AggregatorSettings settings = merge_settings(clock, captured);
  settings.merge_across_instances = false;
  Aggregator kpis(*b.broker, settings);
  kpis.record("v", 4);
  clock.advance(1050ms);
  CHECK(kpis.tick() == 1);
  CHECK(b.backend->take().empty());
  REQUIRE(captured.of("v").size() == 1);
  CHECK(kpis.metrics().contributions_sent == 0);
}

TEST_CASE("write_metrics: the livecast_aggregator_* counters, as documented in docs/operations.md") {
  TestClock clock;
  Captured captured;
  ScriptedBroker b;
  Aggregator kpis(*b.broker, merge_settings(clock, captured));
  kpis.record("v", 1);
  clock.advance(1050ms);
  kpis.tick();
  auto requests = b.backend->take();
  REQUIRE(requests.size() == 1);
  Backend::WindowContributions merged;
  merged.contributions = {requests[0].part, "junk"};
  requests[0].done(std::move(merged));
  kpis.tick();

  MetricsExporter exporter(*b.broker);
  exporter.add([&kpis](MetricsWriter& w) { kpis.write_metrics(w); });
  const livecast_test::PromExposition e = livecast_test::parse_prometheus(exporter.text());
  for (const std::string& error : e.errors) FAIL_CHECK(error);
  CHECK(e.value("livecast_aggregator_recorded_total") == 1);
  CHECK(e.value("livecast_aggregator_summaries_total") == 1);
  CHECK(e.value("livecast_aggregator_contributions_sent_total") == 1);
  CHECK(e.value("livecast_aggregator_merged_windows_total") == 1);
  CHECK(e.value("livecast_aggregator_contributions_malformed_total") == 1);
  CHECK(e.value("livecast_aggregator_merge_fallbacks_total") == 0);
  CHECK(e.value("livecast_aggregator_windows_merged_elsewhere_total") == 0);
  CHECK(e.value("livecast_aggregator_contributions_late_total") == 0);

  std::ifstream in(LIVECAST_OPERATIONS_DOC);
  std::ostringstream doc;
  doc << in.rdbuf();
  const auto documented = livecast_test::documented_metrics(doc.str());
  std::size_t aggregator_families = 0;
  for (const auto& [name, family] : e.families) {
    if (name.rfind("livecast_aggregator_", 0) != 0) continue;
    ++aggregator_families;
    INFO(name);
    REQUIRE(documented.count(name) == 1);
    CHECK(documented.at(name).type == family.type);
  }
  CHECK(aggregator_families == 11);
}
