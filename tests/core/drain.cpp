// Broker::drain without sockets: in-memory connections on a broker with its
// own thread. What the loopback test (tests/transport/drain.cpp) cannot time
// on purpose: a session opened after the drain began, a queue that must be
// flushed first (and one that never is), stragglers at the deadline, `done`
// when the last session goes, and the settings it refuses.
#include "../reconnect_after.hpp"
#include "memory_connection.hpp"

#include <livecast/broker.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <stdexcept>
#include <string>

using namespace livecast;
using namespace std::chrono_literals;
using livecast_test::MemoryConnection;

namespace {

struct Fixture {
  Fixture() : broker(settings()) { broker.start(); }
  static BrokerSettings settings() {
    BrokerSettings s;
    s.threads = 1;
    return s;
  }
  std::unique_ptr<MemoryConnection> connect() {
    std::unique_ptr<MemoryConnection> c;
    broker.session_host().execute_on_shard(0, [&] { c = std::make_unique<MemoryConnection>(broker, 0); });
    return c;
  }
  // A session with `n` frames queued that it does not read.
  std::unique_ptr<MemoryConnection> backed_up(int n) {
    auto c = connect();
    c->set_reading(false);
    for (int i = 1; i <= n; ++i) c->send("{\"op\":\"ping\",\"id\":" + std::to_string(i) + "}");
    broker.session_host().execute_on_shard(0, [] {});  // the pings ran
    return c;
  }
  Broker broker;
};

DrainSettings quick(std::chrono::milliseconds duration) {
  DrainSettings d;
  d.duration = duration;
  d.reconnect_delay_min = 10ms;
  d.reconnect_delay_max = 20ms;
  return d;
}

// "reconnect after <N> ms" with N in quick()'s window.
bool reason_in_window(const std::string& reason) {
  const auto delay = livecast_test::reconnect_delay(reason);
  return delay && *delay >= 10 && *delay <= 20;
}

}  // namespace

TEST_CASE("drain: a session opened after the drain began is closed too, with 4012") {
  Fixture f;
  auto early = f.connect();
  f.broker.drain(quick(100ms));
  f.broker.session_host().execute_on_shard(0, [] {});  // the shard began its waves
  auto late = f.connect();  // as a handshake that passed its check before the drain
  CHECK(late->wait_closed() == CloseCode::reconnect_after);
  CHECK(reason_in_window(late->close_reason()));
  CHECK(early->wait_closed() == CloseCode::reconnect_after);
  CHECK(reason_in_window(early->close_reason()));
  CHECK(f.broker.metrics().drain_closes == 2);
}

TEST_CASE("drain: a session's queued frames go out before its close; one that never reads is closed after the grace") {
  Fixture f;
  auto slow = f.backed_up(3);
  auto stuck = f.backed_up(3);
  DrainSettings d = quick(0ms);
  d.flush_grace = 400ms;
  const auto started = std::chrono::steady_clock::now();
  f.broker.drain(d);
  // Due at once, but the frames are still queued: not closed yet.
  CHECK_FALSE(slow->wait_closed(150ms));
  CHECK(slow->received().empty());
  slow->set_reading(true);
  CHECK(slow->wait_for_count(3));
  CHECK(slow->wait_closed() == CloseCode::reconnect_after);
  CHECK(std::chrono::steady_clock::now() - started < 400ms);
  // The other one still holds its frames: closed when the grace runs out.
  CHECK(stuck->wait_closed() == CloseCode::reconnect_after);
  CHECK(std::chrono::steady_clock::now() - started >= 400ms);
}

TEST_CASE("drain: at the deadline stragglers are closed with 1001 and done runs") {
  Fixture f;
  auto stuck = f.backed_up(2);
  DrainSettings d = quick(0ms);
  d.flush_grace = 10s;  // longer than the deadline: the deadline decides
  d.deadline_grace = 200ms;
  std::promise<void> done;
  f.broker.drain(d, [&] { done.set_value(); });
  REQUIRE(done.get_future().wait_for(3s) == std::future_status::ready);
  CHECK(stuck->close_code() == CloseCode::going_away);
  const BrokerMetrics m = f.broker.metrics();
  CHECK(m.drain_forced_closes == 1);
  CHECK(m.drain_closes == 0);
}

TEST_CASE("drain: done runs once the last session is gone, before the deadline, once") {
  Fixture f;
  auto a = f.connect();
  auto b = f.connect();
  DrainSettings d = quick(100ms);
  d.deadline_grace = 30s;
  std::atomic<int> calls{0};
  std::promise<void> done;
  f.broker.drain(d, [&] {
    if (calls.fetch_add(1) == 0) done.set_value();
    throw std::runtime_error("the host's done throws: swallowed");
  });
  auto finished = done.get_future();
  REQUIRE(a->wait_closed() == CloseCode::reconnect_after);
  a->disconnect();  // as the transport reports the close
  CHECK(finished.wait_for(50ms) == std::future_status::timeout);
  REQUIRE(b->wait_closed() == CloseCode::reconnect_after);
  b->disconnect();
  REQUIRE(finished.wait_for(2s) == std::future_status::ready);
  // A later drain's done runs at once; the first's never again.
  std::atomic<bool> later{false};
  f.broker.drain(d, [&] { later = true; });
  CHECK(later.load());
  f.broker.stop();
  CHECK(calls.load() == 1);
}

TEST_CASE("drain: nothing open, after stop, and settings it refuses") {
  Fixture f;
  bool ran = false;
  f.broker.drain(quick(1s), [&] { ran = true; });
  CHECK(ran);  // nothing to close
  CHECK(f.broker.readiness().reason == "draining");
  CHECK_FALSE(f.broker.session_host().accepting());
  REQUIRE(f.broker.session_host().draining());
  CHECK(f.broker.session_host().draining()->count() == 5);

  Fixture g;
  DrainSettings bad;
  bad.reconnect_delay_min = 2s;
  bad.reconnect_delay_max = 1s;
  CHECK_THROWS_AS(g.broker.drain(bad), std::invalid_argument);
  bad = DrainSettings{};
  bad.duration = -1ms;
  CHECK_THROWS_AS(g.broker.drain(bad), std::invalid_argument);
  CHECK(g.broker.readiness().ready);

  // A drain cut short by stop(): done runs then.
  auto c = g.connect();
  std::atomic<bool> stopped_done{false};
  g.broker.drain(quick(10s), [&] { stopped_done = true; });
  g.broker.stop();
  CHECK(stopped_done.load());
  // Stopped is not draining: no Retry-After, nothing comes back.
  CHECK_FALSE(g.broker.session_host().draining());
  CHECK(g.broker.readiness().reason == "stopped");
  c.reset();
}
