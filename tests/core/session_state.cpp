// SessionState's message rate limit on synthetic time: the token bucket, and
// what counts as a flood (the broker closes a flooding session with 4029).
#include "session_state.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <cstdint>
#include <string_view>

using namespace livecast;
using livecast::detail::SessionState;
using std::chrono::milliseconds;
using std::chrono::seconds;

namespace {

struct NullConnection final : SessionConnection {
  void frames_ready() override {}
  void close(CloseCode, std::string_view) override {}
};

// Not the zero time point, which the bucket reads as "never refilled".
const auto t0 = std::chrono::steady_clock::time_point(std::chrono::hours(1));

struct RateLimited {
  explicit RateLimited(unsigned per_second) : state(1, {}, 0, 0, settings(per_second), connection) {}
  static SessionSettings settings(unsigned per_second) {
    SessionSettings s;
    s.max_messages_per_second = per_second;
    return s;
  }
  // `n` messages at one instant; returns how many were refused.
  int burst(std::chrono::steady_clock::time_point at, int n) {
    int refused = 0;
    for (int i = 0; i < n; ++i) refused += state.take_message_token(at) ? 0 : 1;
    return refused;
  }

  NullConnection connection;
  SessionState state;
};

}  // namespace

TEST_CASE("the token bucket: bursts up to twice the rate, refilled at the rate") {
  RateLimited client(50);
  CHECK(client.burst(t0, 100) == 0);
  CHECK(client.burst(t0, 1) == 1);
  CHECK(client.burst(t0 + milliseconds(100), 6) == 1);  // 5 tokens back after 100 ms
  CHECK(client.burst(t0 + seconds(60), 101) == 1);      // never more than 100 saved up
}

TEST_CASE("occasional bursts over a long life never add up to a flood") {
  RateLimited client(50);
  // A dashboard reconnecting its subscriptions every 15 s for over four
  // hours, each time 50 messages more than the bucket holds.
  int bursts_refused = 0, flooding_after = 0;
  for (int k = 0; k < 1000; ++k) {
    const int refused = client.burst(t0 + k * seconds(15), 150);
    bursts_refused += refused == 50 ? 1 : 0;
    flooding_after += client.state.flooding() ? 1 : 0;
  }
  CHECK(bursts_refused == 1000);  // each burst was still rate-limited
  CHECK(flooding_after == 0);
}

TEST_CASE("a flood: more than 100 refused messages within 10 s of the first of them") {
  static_assert(SessionState::flood_violations == 100 && SessionState::flood_window == seconds(10),
                "the numbers in this test");
  SUBCASE("1000 messages in one second") {
    RateLimited client(50);
    int sent = 0;
    while (sent < 1000 && !client.state.flooding()) client.burst(t0 + milliseconds(++sent), 1);
    CHECK(client.state.flooding());
    CHECK(sent < 300);  // 100 saved tokens, a few refilled, then 101 refusals
  }
  SUBCASE("a sustained 70 messages a second: 20 refused a second") {
    RateLimited client(50);
    const auto every = std::chrono::microseconds(1000000 / 70);
    int sent = 0;
    while (sent < 70 * 20 && !client.state.flooding()) client.burst(t0 + sent++ * every, 1);
    CHECK(client.state.flooding());
  }
  SUBCASE("100 refused within 10 s are not yet a flood; the 101st is") {
    RateLimited client(50);
    CHECK(client.burst(t0, 200) == 100);
    CHECK_FALSE(client.state.flooding());
    CHECK(client.burst(t0 + seconds(9), 101) == 1);  // the bucket refilled, then one more refusal
    CHECK(client.state.flooding());
  }
  SUBCASE("a refusal 10 s after the first of a window starts a new window") {
    RateLimited client(50);
    CHECK(client.burst(t0, 200) == 100);
    CHECK(client.burst(t0 + seconds(10), 101) == 1);
    CHECK_FALSE(client.state.flooding());
  }
}
