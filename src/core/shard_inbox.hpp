// What the backend hands one shard: publications (and the rarer work that
// must stay in order with them), put from any thread and delivered on the
// shard's thread in batches, one posted handler per batch rather than one
// per publication.
//
// Why batches: past saturation, one post per publication let publications
// overtake the writes. Every post went ahead of the flush that the previous
// delivery scheduled, so the shard spent its time queueing frames into ever
// longer send queues (1.6M deliveries/s at the peak fell to a third at twice
// the load, the queues and RSS growing by hundreds of MB). A batch's drain
// posts the next one only after its delivery scheduled the writes, so the
// writes always run between two batches.
//
// Why bounded batches: a batch that took everything waiting grew with the
// load, and once fanning out cost more than the shard had, one drain ran
// for seconds with no write in between (0 deliveries a second at 4x the
// peak). A take() hands out at most max_batch items, and the drain stops
// taking once it queued enough frames (Broker::Impl::drain_inbox).
//
// Shedding: while a shard falls behind, its inbox holds what it could not
// fan out yet. A topic's publications waiting here beyond the bytes one
// session's send queue may hold (SessionSettings::send_queue_bytes) could
// not all reach any subscriber anyway: under drop_oldest or conflate each
// queue would drop the oldest of them. So the inbox drops them first, once
// instead of once per subscriber, and counts them (shed()); clients see
// the gap in offsets, as with any drop. Under disconnect nothing is shed.
#pragma once

#include "shard_topic.hpp"

#include <livecast/config.hpp>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

LIVECAST_BEGIN_NAMESPACE
namespace detail {

class ShardInbox {
 public:
  // One publication, or (when `publication` is null) work that must run in
  // order with the publications around it (a topic's history lost).
  struct Item {
    EncodedPublicationPtr publication;
    std::function<void()> in_order;
  };

  static constexpr std::size_t max_batch = 256;

  // `max_topic_bytes`: a topic's waiting bytes beyond which its oldest
  // waiting publications are shed; 0 never sheds.
  explicit ShardInbox(std::size_t max_topic_bytes = 0) : max_topic_bytes_(max_topic_bytes) {}

  // Any thread. True when the caller must post a drain: the inbox was idle.
  bool put(Item item) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (item.publication && max_topic_bytes_ > 0) make_room(*item.publication);
    pending_.push_back(std::move(item));
    if (draining_) return false;
    draining_ = true;
    return true;
  }

  // The shard's thread, in the drain: the oldest max_batch items, in
  // order. True when more wait behind them.
  bool take(std::vector<Item>& out) {
    std::lock_guard<std::mutex> lock(mutex_);
    const std::size_t n = std::min(pending_.size(), max_batch);
    for (std::size_t i = 0; i < n; ++i) {
      Item& item = pending_.front();
      if (item.publication && max_topic_bytes_ > 0) forget(*item.publication);
      out.push_back(std::move(item));
      pending_.pop_front();
    }
    return !pending_.empty();
  }

  // The shard's thread, once the drain delivered what it took: true when
  // more waits (the caller posts the next drain, which queues behind the
  // writes the delivery scheduled); false, and the inbox is idle again (the
  // next put posts).
  bool more_after_drain() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!pending_.empty()) return true;
    draining_ = false;
    return false;
  }

  // Publications shed so far (any thread).
  std::uint64_t shed() const noexcept { return shed_.load(std::memory_order_relaxed); }

 private:
  // The bytes a publication takes in one session's queue: its smallest
  // frame, so that nothing is shed that some queue could have held.
  static std::size_t bytes_of(const EncodedPublication& p) noexcept {
    std::size_t bytes = 0;
    for (const FramePtr& f : p.frames)
      if (f && (bytes == 0 || f->bytes.size() < bytes)) bytes = f->bytes.size();
    return bytes;
  }

  void make_room(const EncodedPublication& incoming) {
    const std::size_t size = bytes_of(incoming);
    std::size_t& waiting = topic_bytes_[incoming.publication.topic];
    // The oldest of the topic are near the front: with one hot topic the
    // scan stops at once; with many it passes the other topics' few.
    for (auto it = pending_.begin(); waiting + size > max_topic_bytes_ && it != pending_.end();) {
      if (it->publication && it->publication->publication.topic == incoming.publication.topic) {
        waiting -= std::min(waiting, bytes_of(*it->publication));
        it = pending_.erase(it);
        shed_.fetch_add(1, std::memory_order_relaxed);
      } else {
        ++it;
      }
    }
    waiting += size;
  }

  void forget(const EncodedPublication& p) {
    auto it = topic_bytes_.find(p.publication.topic);
    if (it == topic_bytes_.end()) return;
    it->second -= std::min(it->second, bytes_of(p));
    if (it->second == 0) topic_bytes_.erase(it);
  }

  const std::size_t max_topic_bytes_;
  std::mutex mutex_;
  std::deque<Item> pending_;
  std::unordered_map<std::string, std::size_t> topic_bytes_;  // waiting bytes per topic (when shedding)
  std::atomic<std::uint64_t> shed_{0};
  bool draining_ = false;  // a drain is posted or running
};

}  // namespace detail
LIVECAST_END_NAMESPACE
