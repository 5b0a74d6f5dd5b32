// Rebalancing (RebalanceSettings) across two brokers sharing a real
// redis-server: the one above max_session_share closes part of its excess
// with 4012 and a delay in the window, round after round, until it is at or
// under its share; the one under its share closes nothing. The test plays
// the load balancer: each closed client reconnects to the other instance.
// Skipped, not failed, without /usr/bin/redis-server.
#include "../reconnect_after.hpp"
#include "redis_fixture.hpp"

#include <livecast/error.hpp>

#include <memory>
#include <string>
#include <vector>

using namespace livecast;
using namespace livecast_test;
using namespace std::chrono_literals;

namespace {

BrokerSettings rebalancing() {
  BrokerSettings b;
  b.rebalance.max_session_share = 0.6;
  b.rebalance.interval = 100ms;
  b.rebalance.shed_fraction = 0.5;
  b.rebalance.reconnect_delay_min = 100ms;
  b.rebalance.reconnect_delay_max = 300ms;
  return b;
}

}  // namespace

TEST_CASE("an instance above its share sheds with 4012 until it holds at most its share; the other sheds nothing") {
  SKIP_WITHOUT_REDIS_SERVER();
  RedisServer redis;
  Instance a(Instance::settings(redis.url()), true, rebalancing());
  Instance b(Instance::settings(redis.url()), true, rebalancing());

  std::vector<std::unique_ptr<MemoryConnection>> on_a, on_b;
  for (int i = 0; i < 10; ++i) on_a.push_back(a.connect());
  for (int i = 0; i < 2; ++i) on_b.push_back(b.connect());

  std::size_t moved = 0;
  std::vector<long> delays;
  // Moves A's closed clients to B, as a load balancer would send them
  // elsewhere; true once A holds at most 60% and has held it for a while.
  auto last_change = std::chrono::steady_clock::now();
  auto settled = [&]() {
    bool closed_any = false;
    for (auto it = on_a.begin(); it != on_a.end();) {
      auto code = (*it)->close_code();
      if (!code) {
        ++it;
        continue;
      }
      CHECK(*code == CloseCode::reconnect_after);
      auto delay = reconnect_delay((*it)->close_reason());
      REQUIRE_MESSAGE(delay.has_value(), "reason: " << (*it)->close_reason());
      delays.push_back(*delay);
      (*it)->disconnect();
      it = on_a.erase(it);
      on_b.push_back(b.connect());
      ++moved;
      closed_any = true;
    }
    for (auto& c : on_b) CHECK_FALSE(c->close_code().has_value());
    const bool within = on_a.size() * 10 <= (on_a.size() + on_b.size()) * 6;
    if (closed_any || !within) last_change = std::chrono::steady_clock::now();
    // Within its share, and ten rounds (100 ms each) with nothing more shed.
    return std::chrono::steady_clock::now() - last_change >= 1s;
  };
  REQUIRE(eventually(settled));

  // 10 of 12 is 83%; 60% of 12 is 7. Shedding halves of the excess gets
  // there without overshooting by more than the presence counts' lag.
  CHECK(on_a.size() <= 7);
  CHECK(on_a.size() >= 5);
  CHECK(moved == 10 - on_a.size());
  for (long d : delays) {
    CHECK(d >= 100);
    CHECK(d <= 300);
  }
  CHECK(a.broker->metrics().rebalance_closes == moved);
  CHECK(b.broker->metrics().rebalance_closes == 0);
}

TEST_CASE("rebalancing refuses settings it cannot use") {
  BrokerSettings s;
  s.rebalance.max_session_share = 0.5;
  s.rebalance.shed_fraction = 0;
  CHECK_THROWS_AS(Broker{s}, std::invalid_argument);
  s.rebalance.shed_fraction = 0.5;
  s.rebalance.reconnect_delay_min = 2s;
  s.rebalance.reconnect_delay_max = 1s;
  CHECK_THROWS_AS(Broker{s}, std::invalid_argument);
}
