// ShardTopic's subscriber list: find and remove stay right across the size
// where a topic starts (and stops) keeping an index from session to place,
// with sessions leaving in any order, as in a reconnect storm.
#include "shard_topic.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <memory>
#include <random>
#include <vector>

using namespace livecast;
using livecast::detail::SessionState;
using livecast::detail::ShardTopic;

namespace {

struct NullConnection final : SessionConnection {
  void frames_ready() override {}
  void close(CloseCode, std::string_view) override {}
};

struct Sessions {
  explicit Sessions(std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) all.push_back(std::make_shared<SessionState>(i + 1, Principal{}, 0, 0, settings, connection));
  }
  SessionSettings settings;
  NullConnection connection;
  std::vector<std::shared_ptr<SessionState>> all;
};

// Every session in `in` is found with its own sequence; every one in `out` is not.
void check(ShardTopic& topic, const std::vector<SessionState*>& in, const std::vector<SessionState*>& out) {
  CHECK(topic.subscriber_count() == in.size());
  for (SessionState* s : in) {
    ShardTopic::Subscriber* sub = topic.find(*s);
    REQUIRE(sub != nullptr);
    CHECK(sub->session == s);
    CHECK(sub->sequence == s->id());
  }
  for (SessionState* s : out) CHECK(topic.find(*s) == nullptr);
}

}  // namespace

TEST_CASE("subscribers join and leave in any order, small and large, through the index's threshold both ways") {
  for (std::size_t n : {1u, 5u, 32u, 33u, 200u, 2000u}) {
    CAPTURE(n);
    Sessions sessions(n);
    ShardTopic topic("t");
    std::vector<SessionState*> in, out;
    for (auto& s : sessions.all) {
      topic.add(*s, s->id());
      in.push_back(s.get());
    }
    check(topic, in, out);

    std::mt19937 random(static_cast<unsigned>(n));
    std::shuffle(in.begin(), in.end(), random);
    while (!in.empty()) {
      SessionState* leaving = in.back();
      in.pop_back();
      CHECK(topic.remove(*leaving));
      CHECK_FALSE(topic.remove(*leaving));  // once only
      out.push_back(leaving);
      if (in.size() % 97 == 0 || in.size() < 40) check(topic, in, out);
    }
    CHECK(topic.empty());

    // Back again (a reconnect storm's second half): all found once more.
    for (SessionState* s : out) topic.add(*s, s->id());
    check(topic, out, {});
  }
}
