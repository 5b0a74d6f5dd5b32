// The per-shard delivery-latency histogram: each taken publication frame in
// its bucket, by the time since Frame::published_at; frames without a stamp
// (replies, replays) left out.
#include "delivery_latency.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <memory>
#include <vector>

using namespace livecast;
using namespace std::chrono_literals;

namespace {
FramePtr stamped(std::chrono::steady_clock::duration age) {
  auto f = std::make_shared<Frame>();
  f->kind = Frame::Kind::publication;
  f->published_at = std::chrono::steady_clock::now() - age;
  return f;
}
}  // namespace

TEST_CASE("delivery latency: each frame in its bucket, unstamped frames left out, only frames past `from`") {
  detail::DeliveryLatency latency;
  std::vector<FramePtr> out{stamped(5s)};  // already there: not this take's
  out.push_back(stamped(30ms));            // (0.025, 0.05]: bucket 6
  out.push_back(stamped(200ms));           // (0.1, 0.25]: bucket 8
  out.push_back(stamped(700ms));           // (0.5, 1]: bucket 10
  out.push_back(stamped(20s));             // above 10 s: the last bucket
  out.push_back(std::make_shared<Frame>());  // a reply: no stamp
  latency.observe(out, 1);

  LatencyHistogram h;
  latency.add_to(h);
  CHECK(h.count == 4);
  CHECK(h.counts[6] == 1);
  CHECK(h.counts[8] == 1);
  CHECK(h.counts[10] == 1);
  CHECK(h.counts[LatencyHistogram::bound_count] == 1);
  CHECK(h.sum >= 20.93);
  CHECK(h.sum < 21.5);

  // A take of replies only reads no clock and counts nothing.
  std::vector<FramePtr> replies{std::make_shared<Frame>()};
  latency.observe(replies, 0);
  LatencyHistogram again;
  latency.add_to(again);
  CHECK(again.count == 4);
}
