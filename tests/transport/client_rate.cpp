// The HTTP transport's allowance per client (sans-I/O: the test gives the time).
#include "client_rate.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <string>

using livecast::detail::ClientRate;
using namespace std::chrono_literals;

TEST_CASE("a client gets bursts of twice its rate, then one request per 1/rate seconds") {
  ClientRate rate(10);
  const auto t0 = ClientRate::Clock::time_point(1h);
  std::chrono::milliseconds retry{0};
  for (int i = 0; i < 20; ++i) REQUIRE(rate.allow("a", t0, retry));
  CHECK_FALSE(rate.allow("a", t0, retry));
  CHECK(retry >= 99ms);
  CHECK(retry <= 101ms);
  CHECK(rate.allow("b", t0, retry));  // another client has its own allowance
  CHECK_FALSE(rate.allow("a", t0 + 50ms, retry));
  CHECK(rate.allow("a", t0 + 100ms, retry));
  CHECK_FALSE(rate.allow("a", t0 + 100ms, retry));
  // Idle time refills up to the burst, not beyond.
  for (int i = 0; i < 20; ++i) REQUIRE(rate.allow("a", t0 + 1h, retry));
  CHECK_FALSE(rate.allow("a", t0 + 1h, retry));
}

TEST_CASE("the table of clients is bounded: rested clients are forgotten, busy ones keep new ones out") {
  ClientRate rate(1, /*max_clients=*/3);
  const auto t0 = ClientRate::Clock::time_point(1h);
  std::chrono::milliseconds retry{0};
  for (const char* c : {"a", "b", "c"}) REQUIRE(rate.allow(c, t0, retry));
  CHECK_FALSE(rate.allow("d", t0, retry));  // all three busy: refused, not added
  CHECK(rate.clients() == 3);
  CHECK(rate.allow("d", t0 + 10s, retry));  // a, b, c rested and went
  CHECK(rate.clients() == 1);
}

TEST_CASE("a rate of 0 means no limit") {
  ClientRate rate(0);
  std::chrono::milliseconds retry{0};
  for (int i = 0; i < 1000; ++i) REQUIRE(rate.allow("a", ClientRate::Clock::time_point(1h), retry));
  CHECK(rate.clients() == 0);
}
