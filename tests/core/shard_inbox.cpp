// ShardInbox without a broker: batches bounded in size, order kept, and
// shedding only what no session's queue could have held.
#include "shard_inbox.hpp"

#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <vector>

using namespace livecast;
using namespace livecast::detail;

namespace {

// A publication of `topic` at `offset` whose one frame is `bytes` long.
ShardInbox::Item publication(const std::string& topic, std::uint64_t offset, std::size_t bytes = 100) {
  auto p = std::make_shared<EncodedPublication>();
  p->publication.topic = topic;
  p->publication.offset = offset;
  auto frame = std::make_shared<Frame>();
  frame->bytes.assign(bytes, 'x');
  frame->topic = topic;
  p->frames.push_back(std::move(frame));
  return {std::move(p), {}};
}

std::vector<std::string> taken(ShardInbox& inbox) {
  std::vector<ShardInbox::Item> items;
  inbox.take(items);
  std::vector<std::string> out;
  for (const auto& item : items)
    out.push_back(item.publication ? item.publication->publication.topic + std::to_string(item.publication->publication.offset)
                                   : std::string("work"));
  return out;
}

}  // namespace

TEST_CASE("the first put asks for a drain; the rest wait for it; an emptied inbox asks again") {
  ShardInbox inbox;
  CHECK(inbox.put(publication("a", 1)));
  CHECK_FALSE(inbox.put(publication("a", 2)));
  CHECK_FALSE(inbox.put({nullptr, [] {}}));
  CHECK(taken(inbox) == std::vector<std::string>{"a1", "a2", "work"});
  CHECK_FALSE(inbox.more_after_drain());
  CHECK(inbox.put(publication("a", 3)));
}

TEST_CASE("a drain takes at most max_batch items, oldest first; the rest wait for the next") {
  ShardInbox inbox;
  const std::size_t n = ShardInbox::max_batch + 10;
  for (std::size_t i = 1; i <= n; ++i) inbox.put(publication("a", i));
  std::vector<ShardInbox::Item> first;
  CHECK(inbox.take(first));  // more wait behind the batch
  REQUIRE(first.size() == ShardInbox::max_batch);
  CHECK(first.front().publication->publication.offset == 1);
  CHECK(first.back().publication->publication.offset == ShardInbox::max_batch);
  CHECK(inbox.more_after_drain());
  auto second = taken(inbox);
  REQUIRE(second.size() == 10);
  CHECK(second.front() == "a" + std::to_string(ShardInbox::max_batch + 1));
  CHECK_FALSE(inbox.more_after_drain());
  CHECK(inbox.shed() == 0);
}

TEST_CASE("past a send queue's bytes of one topic waiting, the oldest of that topic are shed, and counted") {
  // 1,000 bytes: ten 100-byte publications of a topic may wait.
  ShardInbox inbox(1000);
  for (std::uint64_t i = 1; i <= 15; ++i) inbox.put(publication("hot", i));
  inbox.put(publication("cold", 1));
  inbox.put({nullptr, [] {}});
  CHECK(inbox.shed() == 5);
  // The newest ten of "hot", in order; another topic and in-order work untouched.
  std::vector<std::string> expected;
  for (int i = 6; i <= 15; ++i) expected.push_back("hot" + std::to_string(i));
  expected.push_back("cold1");
  expected.push_back("work");
  CHECK(taken(inbox) == expected);
  // Taken publications no longer count: ten more fit again.
  for (std::uint64_t i = 16; i <= 25; ++i) inbox.put(publication("hot", i));
  CHECK(inbox.shed() == 5);
}

TEST_CASE("without a limit (the disconnect policy) nothing is shed") {
  ShardInbox inbox;
  for (std::uint64_t i = 1; i <= 5000; ++i) inbox.put(publication("hot", i, 1000));
  CHECK(inbox.shed() == 0);
  std::size_t total = 0;
  do total += taken(inbox).size();
  while (inbox.more_after_drain());
  CHECK(total == 5000);
}
