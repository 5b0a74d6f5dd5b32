#include "send_queue.hpp"

#include <doctest/doctest.h>

#include <malloc.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <memory>
#include <new>
#include <string>
#include <utility>
#include <vector>

// Heap blocks and bytes held now, and blocks allocated so far, by the whole
// program: lets a test see that an emptied queue gave back what a burst made
// it allocate, and how much a queue holds.
namespace {
std::atomic<long> live_allocations{0};
std::atomic<long> live_bytes{0};
std::atomic<long> allocations{0};
}
void* operator new(std::size_t size) {
  void* p = std::malloc(size == 0 ? 1 : size);
  if (!p) throw std::bad_alloc();
  live_allocations.fetch_add(1, std::memory_order_relaxed);
  live_bytes.fetch_add(static_cast<long>(malloc_usable_size(p)), std::memory_order_relaxed);
  allocations.fetch_add(1, std::memory_order_relaxed);
  return p;
}
// GCC inlines this into a `delete` and then sees free() of a new'd block:
// here new is malloc, so that pairing is the right one.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void operator delete(void* p) noexcept {
  if (!p) return;
  live_allocations.fetch_sub(1, std::memory_order_relaxed);
  live_bytes.fetch_sub(static_cast<long>(malloc_usable_size(p)), std::memory_order_relaxed);
  std::free(p);
}
#pragma GCC diagnostic pop
void operator delete(void* p, std::size_t) noexcept { operator delete(p); }

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
// A publication of a topic with TopicDelivery::coalesce_by, keyed `key`.
FramePtr keyed(const std::string& topic, std::uint64_t offset, const std::string& key, std::size_t size = 100) {
  auto f = std::make_shared<Frame>();
  f->bytes.assign(size, 'k');
  f->topic = topic;
  f->offset = offset;
  f->kind = Frame::Kind::publication;
  f->coalesce_key = key;
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

// --- coalescing (TopicDelivery::coalesce_by) ---

TEST_CASE("coalescing: a lagging client's queue keeps the latest frame of each key, in offset order") {
  SendQueue q(1024 * 1024, SlowConsumerPolicy::drop_oldest);
  std::uint64_t offset = 0;
  for (int round = 0; round < 100; ++round)
    for (int key = 0; key < 10; ++key) {
      CHECK(q.push(keyed("merchants", ++offset, "\"m" + std::to_string(key), 100 + key)) ==
            SendQueue::PushResult::queued);
    }
  CHECK(q.size() == 10);
  CHECK(q.coalesced() == 990);
  CHECK(q.dropped() == 0);
  CHECK(q.queued_bytes() == 10 * 100 + 45);  // the frames of the last round, to the byte
  std::vector<FramePtr> out;
  CHECK(q.take(out) == 10);
  REQUIRE(out.size() == 10);
  for (std::size_t i = 0; i < out.size(); ++i) {
    REQUIRE(static_cast<bool>(out[i]));
    CHECK(out[i]->offset == 990 + i + 1);  // the last round, in the order published
    CHECK(out[i]->coalesce_key == "\"m" + std::to_string(i));
  }
  CHECK(q.queued_bytes() == 0);
  CHECK(q.empty());
}

TEST_CASE("coalescing: a frame taken for the socket is never replaced; the one queued after it is") {
  SendQueue q(1024 * 1024, SlowConsumerPolicy::drop_oldest);
  q.push(keyed("t", 1, "k", 100));
  std::vector<FramePtr> in_flight;
  REQUIRE(q.take(in_flight) == 1);
  q.push(keyed("t", 2, "k", 70));
  CHECK(q.coalesced() == 0);  // nothing queued of its key: 1 is being written
  q.push(keyed("t", 3, "k", 50));
  CHECK(q.coalesced() == 1);
  CHECK(q.size() == 1);
  CHECK(q.queued_bytes() == 50);
  CHECK(q.in_flight_bytes() == 100);
  CHECK(in_flight[0]->offset == 1);
  CHECK(offsets(q) == std::vector<std::uint64_t>{3});
}

TEST_CASE("coalescing: positions survive the queue dropping the frames taken from its front") {
  SendQueue q(1024 * 1024, SlowConsumerPolicy::drop_oldest);
  for (std::uint64_t offset = 1; offset <= 100; ++offset) q.push(pub("u", offset));
  q.push(keyed("t", 1, "k"));
  std::vector<FramePtr> out;
  CHECK(q.take(out, 60 * 100) == 60);  // the front is erased: every index moves
  q.push(keyed("t", 2, "k"));
  CHECK(q.coalesced() == 1);
  out.clear();
  q.take(out);
  REQUIRE(out.size() == 41);
  CHECK(out.back()->topic == "t");
  CHECK(out.back()->offset == 2);
  CHECK(out[39]->topic == "u");
}

TEST_CASE("coalescing: other topics, unkeyed publications and control frames are untouched") {
  SendQueue q(1024 * 1024, SlowConsumerPolicy::conflate);
  q.push(keyed("a", 1, "k"));
  q.push(keyed("b", 1, "k"));  // same key, another topic
  q.push(pub("a", 2));         // same topic, no key
  q.push(reply_frame("reply"));
  q.push(keyed("a", 3, "other"));
  q.push(keyed("a", 4, "k"));  // replaces a:1 only
  CHECK(q.coalesced() == 1);
  CHECK(q.size() == 5);
  std::vector<FramePtr> out;
  q.take(out);
  REQUIRE(out.size() == 5);
  CHECK(out[0]->topic == "b");
  CHECK(out[1]->offset == 2);
  CHECK(out[1]->coalesce_key.empty());
  CHECK_FALSE(out[2]->is_publication());
  CHECK(out[3]->coalesce_key == "other");
  CHECK(out[4]->offset == 4);
}

TEST_CASE("coalescing: take() skips the tombstones, whatever the byte limit of each take") {
  SendQueue q(1024 * 1024, SlowConsumerPolicy::drop_oldest);
  std::uint64_t offset = 0;
  // Keys 0..4 interleaved with unkeyed frames; every key replaced a few times,
  // so tombstones sit at the front, in the middle and at the end.
  for (int round = 0; round < 7; ++round)
    for (int key = 0; key < 5; ++key) {
      q.push(keyed("t", ++offset, std::to_string(key)));
      if (key == 2) q.push(pub("u", offset));
    }
  CHECK(q.coalesced() == 6 * 5);
  CHECK(q.size() == 5 + 7);
  std::vector<FramePtr> out;
  while (!q.empty()) {
    const std::size_t before = out.size();
    CHECK(q.take(out, 150) >= 1);  // one frame and a half: takes of one frame each
    CHECK(out.size() == before + 1);
  }
  REQUIRE(out.size() == 12);
  for (std::size_t i = 0; i < out.size(); ++i) {
    REQUIRE(static_cast<bool>(out[i]));
    if (i > 0) CHECK(out[i]->offset >= out[i - 1]->offset);
  }
  CHECK(out.back()->offset == offset);
  CHECK(q.queued_bytes() == 0);
  CHECK(q.in_flight_bytes() == 12 * 100);
}

TEST_CASE("coalescing: a client that never reads stays bounded in frames, not only in bytes") {
  SendQueue q(1024 * 1024, SlowConsumerPolicy::drop_oldest);
  const long before = live_bytes.load();
  long most = 0;
  for (std::uint64_t offset = 1; offset <= 100000; ++offset) {
    q.push(keyed("t", offset, std::to_string(offset % 3)));
    most = std::max(most, live_bytes.load() - before);
  }
  // Three frames of ~100 bytes, an index of three keys and a few dozen
  // tombstones; a slot per push would have been 1.6 MB.
  CHECK(most < 16 * 1024);
  CHECK(q.size() == 3);
  CHECK(q.coalesced() == 100000 - 3);
  CHECK(offsets(q) == std::vector<std::uint64_t>{99998, 99999, 100000});
}

// Every publication pushed is taken, dropped by the policy or coalesced,
// exactly once; a frame replaced is always an older one of the incoming
// frame's topic and key; offsets of a topic only grow along what is taken;
// take() returns no null; the bytes add up. Under each policy, with budgets
// that make the policies rewrite the queue (replies at the front included),
// so that positions in the index go stale.
TEST_CASE("coalescing under drop_oldest and conflate: nothing lost, nothing doubled, no stale replacement") {
  for (auto policy : {SlowConsumerPolicy::drop_oldest, SlowConsumerPolicy::conflate}) {
    for (std::size_t budget : {900u, 2500u, 100000u}) {
      CAPTURE(to_string(policy));
      CAPTURE(budget);
      SendQueue q(budget, policy);
      std::map<std::string, std::uint64_t> next_offset, last_taken;
      std::uint64_t pushed = 0, taken = 0, replies_pushed = 0, replies_taken = 0;
      std::size_t in_flight = 0;
      // The frames queued now: the queue holds the only reference to each,
      // so one that expires without being taken was dropped or replaced.
      struct Queued {
        std::weak_ptr<const Frame> frame;
        std::string topic, key;
        std::uint64_t offset;
      };
      std::vector<Queued> queued_frames;
      auto forget_gone = [&queued_frames] {
        std::vector<Queued> alive;
        for (Queued& f : queued_frames)
          if (!f.frame.expired()) alive.push_back(std::move(f));
        queued_frames = std::move(alive);
      };
      std::uint32_t seed = 12345;
      auto random = [&seed](std::uint32_t n) {
        seed = seed * 1664525u + 1013904223u;
        return (seed >> 8) % n;
      };
      auto take_some = [&](std::size_t max_bytes) {
        std::vector<FramePtr> out;
        q.take(out, max_bytes);
        for (const FramePtr& f : out) {
          REQUIRE(static_cast<bool>(f));
          in_flight += f->bytes.size();
          if (!f->is_publication()) {
            ++replies_taken;
            continue;
          }
          ++taken;
          CHECK(f->offset > last_taken[f->topic]);
          last_taken[f->topic] = f->offset;
        }
      };
      for (int step = 0; step < 20000; ++step) {
        const std::uint32_t what = random(100);
        if (what < 70) {
          const std::string topic = random(3) == 0 ? "plain" : (random(2) == 0 ? "a" : "b");
          const std::size_t size = 40 + random(80);
          const std::uint64_t offset = ++next_offset[topic];
          FramePtr f = topic == "plain" ? pub(topic, offset, size)
                                        : keyed(topic, offset, std::to_string(random(6)), size);
          const std::uint64_t coalesced = q.coalesced(), dropped = q.dropped();
          const std::string key = f->coalesce_key;
          const std::weak_ptr<const Frame> pushed_frame = f;
          if (q.push(std::move(f)) != SendQueue::PushResult::overflow) ++pushed;
          std::vector<const Queued*> gone;
          for (const Queued& g : queued_frames)
            if (g.frame.expired()) gone.push_back(&g);
          if (q.dropped() == dropped) {
            REQUIRE(gone.size() == q.coalesced() - coalesced);
            for (const Queued* g : gone) {
              CHECK(g->topic == topic);
              CHECK(g->key == key);
              CHECK(g->offset < offset);
            }
          }
          forget_gone();
          if (!pushed_frame.expired()) queued_frames.push_back({pushed_frame, topic, key, offset});
        } else if (what < 75) {
          if (q.push(reply_frame(std::string(30 + random(40), 'r'))) != SendQueue::PushResult::overflow)
            ++replies_pushed;
          forget_gone();  // publications it made the policy drop
        } else if (what < 90) {
          take_some(random(2) == 0 ? 1 : 100 + random(400));
          forget_gone();
        } else {
          const std::size_t written = random(static_cast<std::uint32_t>(in_flight) + 1);
          q.written(written);
          in_flight -= written;
        }
        CHECK(q.in_flight_bytes() == in_flight);
      }
      std::size_t queued = q.size();
      const std::size_t queued_bytes = q.queued_bytes();
      const std::size_t before = in_flight;
      take_some(static_cast<std::size_t>(-1));
      CHECK(in_flight - before == queued_bytes);
      CHECK(q.empty());
      CHECK(taken + replies_taken > 0);
      CHECK(replies_taken == replies_pushed);
      CHECK(taken + q.dropped() + q.coalesced() == pushed);
      CHECK(q.coalesced() > 0);
      CHECK(queued > 0);
    }
  }
}

TEST_CASE("coalescing: a queue emptied after a burst holds no heap memory, and a reader that keeps up allocates none") {
  std::vector<FramePtr> frames;
  for (std::uint64_t offset = 1; offset <= 2000; ++offset)
    frames.push_back(keyed("t", offset, std::to_string(offset % 10)));
  std::vector<FramePtr> out;
  out.reserve(frames.size());
  SendQueue q(1024 * 1024, SlowConsumerPolicy::drop_oldest);
  const long before = live_allocations.load();
  // A burst while the client lags, with unkeyed frames between, then one take.
  for (std::size_t i = 0; i < 1000; ++i) {
    q.push(frames[i]);
    q.push(pub("u", i + 1));
  }
  CHECK(q.coalesced() == 990);
  CHECK(live_allocations.load() > before);
  q.take(out);
  CHECK(q.empty());
  out.clear();
  CHECK(live_allocations.load() == before);
  // A reader that keeps up: each frame taken before the next comes. The
  // first push gives the queue its (small, kept) array; then nothing more.
  q.push(frames[1000]);
  q.take(out);
  out.clear();
  const long allocated = allocations.load();
  for (std::size_t i = 1001; i < 2000; ++i) {
    q.push(frames[i]);
    q.take(out);
    out.clear();
  }
  CHECK(allocations.load() == allocated);
  CHECK(q.coalesced() == 990);
}
