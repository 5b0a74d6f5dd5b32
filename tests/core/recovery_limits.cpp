// What one client can make the backend read: publications replayed per
// recovery (RecoverySettings::max_publications), reads in flight over the
// process and per client, reads waiting per client. The scheduler alone
// first, then through the broker with a backend whose reads answer when the
// test says so.
#include "in_process_wrapper.hpp"
#include "memory_connection.hpp"
#include "read_scheduler.hpp"
#include "received_messages.hpp"

#include <livecast/broker.hpp>
#include <livecast/in_process_backend.hpp>

#include <ostream>  // doctest prints std::error_code

#include <doctest/doctest.h>

#include <asio/io_context.hpp>

#include <algorithm>
#include <deque>
#include <functional>
#include <string>
#include <vector>

using namespace livecast;
using livecast::detail::ReadScheduler;
using livecast_test::has;
using livecast_test::MemoryConnection;
using livecast_test::publication_offsets;

namespace {

void pump(asio::io_context& io) {
  io.restart();
  io.poll();
}

// Reads wait in a queue until the test answers them, oldest first.
class HeldReadBackend final : public livecast_test::InProcessWrapper {
 public:
  void read(const std::string& topic, const std::optional<StreamPosition>& since, std::size_t most,
            ReadHandler done) override {
    topics.push_back(topic);
    limits.push_back(most);
    pending_.push_back([this, topic, since, most, done = std::move(done)] { inner_->read(topic, since, most, done); });
  }
  std::size_t pending() const { return pending_.size(); }
  // Answers the oldest pending read.
  void answer() {
    REQUIRE_FALSE(pending_.empty());
    auto f = std::move(pending_.front());
    pending_.pop_front();
    f();
  }

  std::vector<std::string> topics;  // every read started, in order
  std::vector<std::size_t> limits;

 private:
  std::deque<std::function<void()>> pending_;
};

Principal user(std::string id) {
  Principal p;
  p.id = std::move(id);
  return p;
}

std::string subscribe(int id, const std::string& topic) {
  return R"({"op":"subscribe","id":)" + std::to_string(id) + R"(,"topic":")" + topic + "\"}";
}

}  // namespace

TEST_CASE("scheduler: a turn goes to the oldest waiting read whose client is under its own limit") {
  ReadScheduler reads({/*in_flight=*/2, /*per client=*/1, /*waiting per client=*/2});
  std::vector<std::string> started;
  auto start = [&](std::string what) { return [&started, what] { started.push_back(what); }; };
  CHECK(reads.submit("a", start("a1")) == ReadScheduler::Admission::started);
  CHECK(reads.submit("a", start("a2")) == ReadScheduler::Admission::waiting);
  CHECK(reads.submit("a", start("a3")) == ReadScheduler::Admission::waiting);
  CHECK(reads.submit("a", start("a4")) == ReadScheduler::Admission::refused);
  CHECK(reads.submit("b", start("b1")) == ReadScheduler::Admission::started);
  CHECK(reads.submit("c", start("c1")) == ReadScheduler::Admission::waiting);  // the process is at 2
  CHECK(started == std::vector<std::string>{"a1", "b1"});
  reads.finished("b");  // a is at its own limit: c goes first, though a waited longer
  CHECK(started == std::vector<std::string>{"a1", "b1", "c1"});
  reads.finished("a");
  CHECK(started.back() == "a2");
  reads.finished("c");
  reads.finished("a");
  CHECK(started.back() == "a3");
  reads.finished("a");
  const auto counters = reads.counters();
  CHECK(counters.started == 5);
  CHECK(counters.waited == 3);
  CHECK(counters.refused == 1);
  CHECK(counters.in_flight == 0);
  CHECK(counters.waiting == 0);
  reads.finished("nobody");  // not in flight: ignored, counts stay sane
  CHECK(reads.counters().in_flight == 0);
}

TEST_CASE("scheduler: reads that finish inside their start run one after another, not nested") {
  ReadScheduler reads({1, 1, 100000});
  int depth = 0, deepest = 0, runs = 0;
  std::function<void()> read = [&] {
    ++depth;
    deepest = std::max(deepest, depth);
    ++runs;
    reads.finished("a");  // answers at once, as the in-process backend does
    --depth;
  };
  // The first holds the only turn while the rest queue behind it.
  REQUIRE(reads.submit("a", [] {}) == ReadScheduler::Admission::started);
  for (int i = 0; i < 50000; ++i) REQUIRE(reads.submit("a", read) == ReadScheduler::Admission::waiting);
  reads.finished("a");
  CHECK(runs == 50000);
  CHECK(deepest == 1);
  CHECK(reads.counters().in_flight == 0);
}

TEST_CASE("a recovery of more missed publications than max_publications: not recovered, the latest value") {
  asio::io_context io;
  BrokerSettings s;
  s.recovery.max_publications = 3;
  InProcessBackendSettings b;
  b.epoch = "e1";
  Broker broker(io, s, std::make_unique<InProcessBackend>(b));
  for (int i = 1; i <= 10; ++i) REQUIRE_FALSE(broker.publish("t", std::to_string(i)));
  pump(io);
  MemoryConnection within(broker, 0), beyond(broker, 0);
  within.send(R"({"op":"subscribe","id":1,"topic":"t","recover":{"epoch":"e1","offset":7}})");
  beyond.send(R"({"op":"subscribe","id":1,"topic":"t","recover":{"epoch":"e1","offset":6}})");
  pump(io);
  auto w = within.received();
  REQUIRE_FALSE(w.empty());
  CHECK(has(w[0], "\"recovered\":true"));
  CHECK(publication_offsets(w) == std::vector<std::uint64_t>{8, 9, 10});
  auto o = beyond.received();
  REQUIRE_FALSE(o.empty());
  CHECK(has(o[0], "\"recovered\":false"));
  CHECK(publication_offsets(o) == std::vector<std::uint64_t>{10});
  const BrokerMetrics m = broker.metrics();
  CHECK(m.recoveries_recovered == 1);
  CHECK(m.recoveries_not_recovered == 1);
  CHECK(m.publications_replayed == 3);
  CHECK(m.bytes_replayed == 4);  // "8", "9", "10"
}

TEST_CASE("subscribe reads: bounded per process and per client; a client over its waiting limit is refused") {
  asio::io_context io;
  BrokerSettings s;
  s.recovery.max_publications = 50;
  s.recovery.max_reads_in_flight = 2;
  s.recovery.max_reads_in_flight_per_client = 1;
  s.recovery.max_reads_waiting_per_client = 2;
  s.session.max_messages_per_second = 1000;
  auto held = std::make_unique<HeldReadBackend>();
  HeldReadBackend& backend = *held;
  Broker broker(io, s, std::move(held));
  MemoryConnection alice(broker, 0, user("alice"));
  MemoryConnection alice_again(broker, 0, user("alice"));  // the same principal, another session
  MemoryConnection bob(broker, 0, user("bob"));
  MemoryConnection anonymous(broker, 0);

  alice.send(subscribe(1, "a1"));
  alice.send(subscribe(2, "a2"));
  alice_again.send(subscribe(3, "a3"));
  alice_again.send(subscribe(4, "a4"));  // a third waiting read of alice's: refused
  pump(io);
  CHECK(backend.topics == std::vector<std::string>{"a1"});
  auto refused = alice_again.received();
  REQUIRE(refused.size() == 1);
  CHECK(has(refused[0], "\"id\":4"));
  CHECK(has(refused[0], "rate_limited"));
  CHECK_FALSE(alice_again.session().subscribed("a4"));

  bob.send(subscribe(1, "b1"));
  anonymous.send(subscribe(1, "n1"));  // the process is at its 2
  pump(io);
  CHECK(backend.topics == std::vector<std::string>{"a1", "b1"});
  CHECK(broker.metrics().subscribe_reads_waiting == 3);

  backend.answer();  // a1: alice's next (a2) would be her second at once; it is her turn again now
  pump(io);
  CHECK(backend.topics == std::vector<std::string>{"a1", "b1", "a2"});
  CHECK(has(alice.received().at(0), "\"id\":1"));
  backend.answer();  // b1: alice is at her limit, the anonymous session goes
  pump(io);
  CHECK(backend.topics == std::vector<std::string>{"a1", "b1", "a2", "n1"});
  while (backend.pending() > 0) {
    backend.answer();
    pump(io);
  }
  CHECK(backend.topics == std::vector<std::string>{"a1", "b1", "a2", "n1", "a3"});
  CHECK(alice_again.session().subscribed("a3"));
  for (std::size_t most : backend.limits) CHECK(most == 50);
  const BrokerMetrics m = broker.metrics();
  CHECK(m.subscribe_reads == 5);
  CHECK(m.subscribe_reads_waited == 3);
  CHECK(m.subscribe_reads_refused == 1);
  CHECK(m.subscribe_reads_in_flight == 0);
  CHECK(m.subscribe_reads_waiting == 0);
  CHECK(m.errors(Errc::rate_limited) == 1);
}

TEST_CASE("a session that ends while its read waits costs no read") {
  asio::io_context io;
  BrokerSettings s;
  s.recovery.max_reads_in_flight = 1;
  auto held = std::make_unique<HeldReadBackend>();
  HeldReadBackend& backend = *held;
  Broker broker(io, s, std::move(held));
  MemoryConnection first(broker, 0);
  first.send(subscribe(1, "x"));
  pump(io);
  {
    MemoryConnection gone(broker, 0);
    gone.send(subscribe(1, "y"));
    pump(io);
  }  // disconnects while waiting
  pump(io);
  backend.answer();
  pump(io);
  CHECK(backend.topics == std::vector<std::string>{"x"});
  CHECK(broker.metrics().subscribe_reads_in_flight == 0);
  CHECK(broker.metrics().subscribe_reads_waiting == 0);
}
