// InProcessBackend on its own: history bounded in publications and bytes,
// idle topics forgotten (on a clock the test moves), and a forgotten topic
// that comes back in a new epoch.
#include <livecast/in_process_backend.hpp>

#include <doctest/doctest.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

using namespace livecast;
using namespace std::chrono_literals;

namespace {

struct Counting final : BackendListener {
  std::size_t publications = 0;
  void on_publication(Publication) override { ++publications; }
};

struct Fixture {
  explicit Fixture(InProcessBackendSettings s = {}) {
    s.epoch = "e";
    s.clock = [this] { return now; };
    backend = std::make_unique<InProcessBackend>(s);
    backend->start(listener);
  }
  void publish(const std::string& topic, std::size_t bytes = 1) {
    backend->publish(topic, std::make_shared<const std::string>(std::string(bytes, '1')), {});
  }
  ReadResult read(const std::string& topic, std::optional<StreamPosition> since = {}, std::size_t most = 1000) {
    ReadResult out;
    backend->read(topic, since, most, [&](ReadResult r) { out = std::move(r); });
    return out;
  }
  std::vector<std::uint64_t> offsets(const ReadResult& r) {
    std::vector<std::uint64_t> o;
    for (auto& p : r.publications) o.push_back(p.offset);
    return o;
  }

  std::chrono::steady_clock::time_point now{std::chrono::hours(1)};
  Counting listener;
  std::unique_ptr<InProcessBackend> backend;
};

}  // namespace

TEST_CASE("history is bounded in payload bytes as well as in publications; the latest value always stays") {
  InProcessBackendSettings s;
  s.history_bytes = 3000;
  Fixture f(s);
  for (int i = 0; i < 10; ++i) f.publish("t", 1000);
  ReadResult from_start = f.read("t", StreamPosition{"e", 0});
  CHECK_FALSE(from_start.recovered);
  CHECK(f.offsets(from_start) == std::vector<std::uint64_t>{10});
  ReadResult recent = f.read("t", StreamPosition{"e", 7});
  CHECK(recent.recovered);
  CHECK(f.offsets(recent) == std::vector<std::uint64_t>{8, 9, 10});
  // One publication larger than the whole budget is still the latest value.
  f.publish("t", 5000);
  CHECK(f.offsets(f.read("t")) == std::vector<std::uint64_t>{11});
  CHECK(f.read("t", StreamPosition{"e", 10}).recovered);
}

TEST_CASE("a recovery of more than max_publications is not recovered and gets the latest value instead") {
  Fixture f;
  for (int i = 0; i < 10; ++i) f.publish("t");
  ReadResult within = f.read("t", StreamPosition{"e", 6}, 4);
  CHECK(within.recovered);
  CHECK(f.offsets(within) == std::vector<std::uint64_t>{7, 8, 9, 10});
  ReadResult beyond = f.read("t", StreamPosition{"e", 5}, 4);
  CHECK_FALSE(beyond.recovered);
  CHECK(f.offsets(beyond) == std::vector<std::uint64_t>{10});
  CHECK(beyond.head.offset == 10);
}

TEST_CASE("topics nobody watches and nobody published on for idle_topic_ttl are forgotten") {
  InProcessBackendSettings s;
  s.idle_topic_ttl = 10min;
  Fixture f(s);
  for (int i = 0; i < 1000; ++i) f.publish("burst." + std::to_string(i));
  f.backend->watch("watched");
  f.publish("watched");
  f.publish("busy");
  CHECK(f.backend->topic_count() == 1002);
  f.now += 6min;
  f.publish("busy");  // a sweep, but nothing is idle for 10 minutes yet
  CHECK(f.backend->topic_count() == 1002);
  f.now += 6min;
  f.publish("busy");
  CHECK(f.backend->topic_count() == 2);  // "busy" was published on, "watched" is watched
  CHECK(f.backend->topics_forgotten() == 1000);
  f.backend->unwatch("watched");  // its idle time starts now
  f.now += 6min;
  f.publish("busy");
  CHECK(f.backend->topic_count() == 2);
  f.now += 6min;
  f.publish("busy");
  CHECK(f.backend->topic_count() == 1);
  CHECK(f.listener.publications == 1006);
}

TEST_CASE("a forgotten topic that comes back starts a new epoch, so old positions are not recovered") {
  InProcessBackendSettings s;
  s.idle_topic_ttl = 1min;
  Fixture f(s);
  f.publish("t");
  f.publish("t");
  const ReadResult before = f.read("t");
  CHECK(before.head == StreamPosition{"e", 2});
  f.now += 2min;
  f.publish("other");  // forgets "t"
  CHECK(f.backend->topics_forgotten() == 1);
  // Before it is published again, a subscriber is told the epoch it will get.
  const ReadResult empty = f.read("t", StreamPosition{"e", 2});
  CHECK_FALSE(empty.recovered);
  CHECK(empty.head.epoch != "e");
  CHECK(empty.head.offset == 0);
  f.publish("t");
  f.publish("t");
  f.publish("t");
  // A client that saw offsets 1..2 of the first incarnation is not handed
  // 3 of the second as if it were what it missed.
  const ReadResult back = f.read("t", StreamPosition{"e", 2});
  CHECK_FALSE(back.recovered);
  CHECK(back.head == StreamPosition{empty.head.epoch, 3});
  CHECK(f.offsets(back) == std::vector<std::uint64_t>{3});
  CHECK(f.read("t", StreamPosition{empty.head.epoch, 1}).recovered);
}

TEST_CASE("read_recent: the last publications oldest first, within count, age and history; the latest whatever its age") {
  InProcessBackendSettings s;
  s.history_size = 50;
  s.idle_topic_ttl = 0ms;
  Fixture f(s);
  auto recent = [&](std::size_t count, std::chrono::milliseconds age, std::size_t most = 1000) {
    ReadResult out;
    f.backend->read_recent("t", RecentHistory{count, age}, most, [&](ReadResult r) { out = std::move(r); });
    return out;
  };
  SUBCASE("a topic never published on: its head, nothing to send") {
    ReadResult r = recent(10, 0ms);
    CHECK_FALSE(static_cast<bool>(r.error));
    CHECK(r.head.offset == 0);
    CHECK(r.publications.empty());
  }
  // Offsets 1..60, one per second: 1..10 fell out of the 50 kept.
  for (int i = 1; i <= 60; ++i) {
    f.publish("t");
    f.now += 1s;
  }
  SUBCASE("by count") {
    ReadResult r = recent(5, 0ms);
    CHECK(r.head == StreamPosition{"e", 60});
    CHECK_FALSE(r.recovered);
    CHECK(f.offsets(r) == std::vector<std::uint64_t>{56, 57, 58, 59, 60});
    CHECK(r.publications.front().epoch == "e");
  }
  SUBCASE("by count, bounded by what history keeps and by the caller's most") {
    CHECK(recent(500, 0ms).publications.size() == 50);
    CHECK(recent(0, 0ms).publications.size() == 50);
    CHECK(f.offsets(recent(0, 0ms, 3)) == std::vector<std::uint64_t>{58, 59, 60});
  }
  SUBCASE("by age: stored within the last 10 s (now is 1 s after the latest)") {
    CHECK(f.offsets(recent(0, 10s)) == std::vector<std::uint64_t>{51, 52, 53, 54, 55, 56, 57, 58, 59, 60});
    CHECK(f.offsets(recent(3, 10s)) == std::vector<std::uint64_t>{58, 59, 60});
  }
  SUBCASE("by age: the latest value comes even when older than the age") {
    f.now += 1h;
    CHECK(f.offsets(recent(0, 10s)) == std::vector<std::uint64_t>{60});
  }
}
