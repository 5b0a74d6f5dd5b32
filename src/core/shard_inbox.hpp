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
// writes always run between two batches, and a batch grows with the load
// instead of the queues.
#pragma once

#include "shard_topic.hpp"

#include <livecast/config.hpp>

#include <functional>
#include <mutex>
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

  // Any thread. True when the caller must post a drain: the inbox was idle.
  bool put(Item item) {
    std::lock_guard<std::mutex> lock(mutex_);
    pending_.push_back(std::move(item));
    if (draining_) return false;
    draining_ = true;
    return true;
  }

  // The shard's thread, in the drain: everything put so far, in order.
  void take(std::vector<Item>& out) {
    std::lock_guard<std::mutex> lock(mutex_);
    out.swap(pending_);
  }

  // The shard's thread, once the drain delivered what it took: true when
  // more was put meanwhile (the caller posts the next drain, which queues
  // behind the writes the delivery scheduled); false, and the inbox is idle
  // again (the next put posts).
  bool more_after_drain() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!pending_.empty()) return true;
    draining_ = false;
    return false;
  }

 private:
  std::mutex mutex_;
  std::vector<Item> pending_;
  bool draining_ = false;  // a drain is posted or running
};

}  // namespace detail
LIVECAST_END_NAMESPACE
