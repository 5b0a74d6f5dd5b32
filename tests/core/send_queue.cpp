#include "send_queue.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

using namespace livecast;
using livecast::detail::SendQueue;

namespace {
// A control frame: never dropped by a policy.
FramePtr reply_frame(std::string bytes) {
  auto f = std::make_shared<Frame>();
  f->bytes = std::move(bytes);
  f->kind = Frame::Kind::reply;
  return f;
}

FramePtr pub(const std::string& topic, std::uint64_t offset, std::size_t size = 100) {
  auto f = std::make_shared<Frame>();
  f->bytes.assign(size, 'x');
  f->topic = topic;
  f->offset = offset;
  f->kind = Frame::Kind::publication;
  return f;
}
std::vector<std::uint64_t> offsets(SendQueue& q) {
  std::vector<FramePtr> out;
  q.take(out);
  std::vector<std::uint64_t> r;
  for (auto& f : out) r.push_back(f->offset);
  return r;
}
}  // namespace

TEST_CASE("an empty queue owns no memory and accepts a frame larger than its budget") {
  SendQueue q(100, SlowConsumerPolicy::disconnect);
  CHECK(q.empty());
  CHECK(q.push(pub("a", 1, 500)) == SendQueue::PushResult::queued);
  CHECK(q.queued_bytes() == 500);
  CHECK(q.push(pub("a", 2, 10)) == SendQueue::PushResult::overflow);
}

TEST_CASE("take moves frames out for one gathered write and counts them in flight") {
  SendQueue q(1000, SlowConsumerPolicy::drop_oldest);
  for (std::uint64_t i = 1; i <= 5; ++i) q.push(pub("a", i));
  std::vector<FramePtr> out;
  CHECK(q.take(out, 250) == 2);  // at most 250 bytes, at least one frame
  CHECK(q.in_flight_bytes() == 200);
  CHECK(q.queued_bytes() == 300);
  // In-flight bytes count against the budget until written.
  CHECK(q.push(pub("a", 6, 600)) == SendQueue::PushResult::queued_after_drops);
  CHECK(q.dropped() == 1);
  q.written(200);
  CHECK(q.in_flight_bytes() == 0);
  CHECK(offsets(q) == std::vector<std::uint64_t>{4, 5, 6});
  CHECK(q.empty());
}

TEST_CASE("drop_oldest drops the oldest publications and keeps control frames") {
  SendQueue q(350, SlowConsumerPolicy::drop_oldest);
  q.push(reply_frame(std::string(100, 'c')));
  q.push(pub("a", 1));
  q.push(pub("b", 1));
  CHECK(q.push(pub("a", 2)) == SendQueue::PushResult::queued_after_drops);
  CHECK(q.dropped() == 1);
  std::vector<FramePtr> out;
  q.take(out);
  REQUIRE(out.size() == 3);
  CHECK_FALSE(out[0]->is_publication());
  CHECK(out[1]->topic == "b");
  CHECK(out[2]->offset == 2);
}

TEST_CASE("conflate keeps the newest publication of each topic") {
  SendQueue q(450, SlowConsumerPolicy::conflate);
  q.push(pub("a", 1));
  q.push(pub("b", 1));
  q.push(pub("a", 2));
  q.push(pub("b", 2));
  // Over budget: older a and b go, the incoming a supersedes a:2.
  CHECK(q.push(pub("a", 3)) == SendQueue::PushResult::queued_after_drops);
  CHECK(q.dropped() == 3);
  std::vector<FramePtr> out;
  q.take(out);
  REQUIRE(out.size() == 2);
  CHECK(out[0]->topic == "b");
  CHECK(out[0]->offset == 2);
  CHECK(out[1]->topic == "a");
  CHECK(out[1]->offset == 3);
}

TEST_CASE("conflate falls back to dropping the oldest when one frame per topic does not fit") {
  SendQueue q(300, SlowConsumerPolicy::conflate);
  q.push(pub("a", 1));
  q.push(pub("b", 1));
  q.push(pub("c", 1));
  CHECK(q.push(pub("d", 1)) == SendQueue::PushResult::queued_after_drops);
  CHECK(q.dropped() == 1);
  std::vector<FramePtr> out;
  q.take(out);
  REQUIRE(out.size() == 3);
  CHECK(out[0]->topic == "b");
  CHECK(out[2]->topic == "d");
}

TEST_CASE("control frames that do not fit overflow whatever the policy") {
  for (auto policy : {SlowConsumerPolicy::drop_oldest, SlowConsumerPolicy::conflate}) {
    SendQueue q(150, policy);
    q.push(reply_frame(std::string(100, 'c')));
    CHECK(q.push(reply_frame(std::string(100, 'c'))) == SendQueue::PushResult::overflow);
    CHECK(q.size() == 1);
  }
}

TEST_CASE("disconnect overflows instead of dropping") {
  SendQueue q(250, SlowConsumerPolicy::disconnect);
  q.push(pub("a", 1));
  q.push(pub("a", 2));
  CHECK(q.push(pub("a", 3)) == SendQueue::PushResult::overflow);
  CHECK(q.dropped() == 0);
  CHECK(q.size() == 2);
}

TEST_CASE("a long-running queue stays bounded and gives memory back") {
  SendQueue q(10 * 1000, SlowConsumerPolicy::drop_oldest);
  for (std::uint64_t i = 1; i <= 100000; ++i) {
    q.push(pub("t", i));
    CHECK_LE(q.queued_bytes(), 10 * 1000);
  }
  CHECK(q.dropped() == 100000 - 100);
  std::vector<FramePtr> out;
  q.take(out);
  CHECK(out.size() == 100);
  CHECK(out.front()->offset == 99901);
  CHECK(q.empty());
}

TEST_CASE("the shard's bytes gauge follows pushes, drops, writes and the end of the session") {
  std::atomic<std::int64_t> gauge{0};
  {
    SendQueue q(250, SlowConsumerPolicy::drop_oldest, &gauge);
    q.push(pub("a", 1));
    q.push(pub("a", 2));
    CHECK(gauge == 200);
    q.push(pub("a", 3));  // drops offset 1 to fit
    CHECK(gauge == 200);
    std::vector<FramePtr> out;
    q.take(out, 100);  // in flight still counts
    CHECK(gauge == 200);
    q.written(60);
    CHECK(gauge == 140);
    q.set_in_flight(0);
    CHECK(gauge == 100);
    q.clear();  // the session ended
    CHECK(gauge == 0);
    q.set_in_flight(50);  // a late write after clear() no longer counts
    CHECK(gauge == 0);
  }
  {
    SendQueue other(550, SlowConsumerPolicy::conflate, &gauge);
    other.push(pub("b", 1, 300));
    other.push(pub("c", 1, 200));
    CHECK(gauge == 300 + 200);
    other.push(pub("b", 2, 100));  // over 550: conflated, b's first publication leaves
    CHECK(gauge == 200 + 100);
    other.clear();
  }  // destroyed after clear(), as the broker does it: nothing more to take back
  CHECK(gauge == 0);
}
