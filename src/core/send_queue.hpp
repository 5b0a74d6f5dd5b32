// A session's bounded outgoing queue, under its SlowConsumerPolicy. Private
// to the broker: transports reach it through SessionHost's frame functions.
#pragma once

#include <livecast/config.hpp>
#include <livecast/publication.hpp>
#include <livecast/slow_consumer_policy.hpp>

#include <cstddef>
#include <atomic>
#include <cstdint>
#include <functional>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

LIVECAST_BEGIN_NAMESPACE
namespace detail {

// FIFO of shared frames bounded in bytes: queued bytes plus the bytes the
// transport has taken but not yet written (in flight). Publications may be
// dropped by the policy; control frames (replies) never are. Every dropped
// publication is counted; the client sees the gap in offsets and can recover.
//
// Coalescing (TopicDelivery::coalesce_by): a publication with a
// Frame::coalesce_key replaces the queued one of the same topic and key,
// which leaves a tombstone (null) that take() skips; the new one goes at
// the end, so offsets still grow along the queue (clients drop a
// publication at or below the last offset they saw). Frames in flight are
// never touched. An index from the hash of topic and key to the absolute
// position of the latest queued frame makes this O(1) per push; an entry
// is checked against the frame in its slot before use, so a stale one (the
// policies' rewrites move frames) costs one missed replacement, never a
// wrong one.
//
// Not thread-safe: used only on the thread of the shard that owns the session.
// Empty, it owns no heap memory: idle connections are the common case.
class SendQueue {
 public:
  enum class PushResult {
    queued,              // fits
    queued_after_drops,  // fits after the policy dropped older publications
    overflow,            // does not fit and the policy allows no drop: close the session
  };

  // `bytes_gauge` (may be null): the shard's sum of its queues' bytes,
  // queued plus in flight, which this queue keeps up to date as they change
  // (BrokerMetrics::send_queue_bytes) until clear(), which the broker calls
  // when the session closes. Written only on the shard's thread, like the
  // rest of the queue; so not by the destructor, which may run on another
  // thread, or after the broker is gone, when the last owner lets go.
  SendQueue(std::size_t max_bytes, SlowConsumerPolicy policy,
            std::atomic<std::int64_t>* bytes_gauge = nullptr) noexcept
      : max_bytes_(max_bytes), policy_(policy), bytes_gauge_(bytes_gauge) {}
  SendQueue(const SendQueue&) = delete;
  SendQueue& operator=(const SendQueue&) = delete;

  PushResult push(FramePtr frame) {
    const std::size_t size = frame->bytes.size();
    const bool keyed = frame->is_publication() && !frame->coalesce_key.empty();
    const std::size_t key_hash = keyed ? hash_of_key(*frame) : 0;
    // Before the budget is checked: the bytes of the frame replaced make room.
    if (keyed) replace_queued(*frame, key_hash);
    PushResult result = PushResult::queued;
    // A frame is always accepted by an empty queue, or it could never be sent.
    if (!empty() && bytes_ + in_flight_ + size > max_bytes_) {
      if (policy_ == SlowConsumerPolicy::disconnect) return PushResult::overflow;
      if (policy_ == SlowConsumerPolicy::conflate && frame->is_publication()) conflate(frame->topic);
      if (bytes_ + in_flight_ + size > max_bytes_) drop_oldest_until(size);
      if (bytes_ + in_flight_ + size > max_bytes_ && !empty()) return PushResult::overflow;
      result = PushResult::queued_after_drops;
    }
    if (keyed) index_pushed(key_hash);
    bytes_ += size;
    frames_.push_back(std::move(frame));
    remove_tombstones_if_many();
    report_bytes();
    return result;
  }

  // Moves queued frames to `out` (appending), at least one and then as many as
  // fit in `max_bytes`, for one gathered write. Their bytes count as in flight
  // until written() is called.
  std::size_t take(std::vector<FramePtr>& out, std::size_t max_bytes = static_cast<std::size_t>(-1)) {
    std::size_t taken = 0, n = 0;
    while (head_ < frames_.size()) {
      if (!frames_[head_]) {  // replaced by a newer frame of its key
        ++head_;
        --tombstones_;
        continue;
      }
      std::size_t size = frames_[head_]->bytes.size();
      if (n > 0 && taken + size > max_bytes) break;
      taken += size;
      ++n;
      out.push_back(std::move(frames_[head_++]));
    }
    bytes_ -= taken;
    in_flight_ += taken;
    compact();
    return n;
  }

  // The transport wrote `bytes` of what it took.
  void written(std::size_t bytes) noexcept {
    in_flight_ = bytes > in_flight_ ? 0 : in_flight_ - bytes;
    report_bytes();
  }
  // For transports that only know their own buffered amount.
  void set_in_flight(std::size_t bytes) noexcept {
    in_flight_ = bytes;
    report_bytes();
  }

  bool empty() const noexcept { return size() == 0; }
  std::size_t size() const noexcept { return frames_.size() - head_ - tombstones_; }
  std::size_t queued_bytes() const noexcept { return bytes_; }
  std::size_t in_flight_bytes() const noexcept { return in_flight_; }
  std::size_t max_bytes() const noexcept { return max_bytes_; }
  SlowConsumerPolicy policy() const noexcept { return policy_; }
  std::uint64_t dropped() const noexcept { return dropped_; }
  // Publications replaced by a newer one of their key (not counted in dropped()).
  std::uint64_t coalesced() const noexcept { return coalesced_; }

  // The session ended: its queue no longer counts in the shard's gauge.
  void clear() noexcept {
    frames_.clear();
    frames_.shrink_to_fit();
    head_ = 0;
    tombstones_ = 0;
    bytes_ = 0;
    forget_keys();
    detach_gauge();
  }

 private:
  // The gauge is read at a scrape without walking every session. Its only
  // writers are the queues of one shard, on that shard's thread, so a
  // relaxed load and store do (a locked add on every push cost the fan-out
  // a fifth of its time in memory).
  void report_bytes() noexcept {
    if (!bytes_gauge_) return;
    const std::size_t now = bytes_ + in_flight_;
    if (now == reported_) return;
    add_to_gauge(static_cast<std::int64_t>(now) - static_cast<std::int64_t>(reported_));
    reported_ = now;
  }
  void add_to_gauge(std::int64_t delta) noexcept {
    bytes_gauge_->store(bytes_gauge_->load(std::memory_order_relaxed) + delta, std::memory_order_relaxed);
  }
  void detach_gauge() noexcept {
    if (bytes_gauge_ && reported_) add_to_gauge(-static_cast<std::int64_t>(reported_));
    bytes_gauge_ = nullptr;
    reported_ = 0;
  }

  // Keeps only the newest queued publication of each topic; drops the older
  // ones of `incoming_topic` entirely since the incoming frame supersedes them.
  void conflate(const std::string& incoming_topic) {
    std::unordered_map<std::string_view, std::size_t> newest;  // topic -> index of its newest frame
    for (std::size_t i = head_; i < frames_.size(); ++i)
      if (frames_[i] && frames_[i]->is_publication()) newest[frames_[i]->topic] = i;
    std::vector<FramePtr> discarded;
    std::size_t w = head_;
    for (std::size_t i = head_; i < frames_.size(); ++i) {
      FramePtr& f = frames_[i];
      if (!f) continue;  // a tombstone goes too
      if (f->is_publication() && (f->topic == incoming_topic || newest[f->topic] != i)) {
        bytes_ -= f->bytes.size();
        ++dropped_;
        // Keep the frame alive until the loop ends: `newest` points into it.
        discarded.push_back(std::move(f));
        continue;
      }
      if (w != i) frames_[w] = std::move(f);
      ++w;
    }
    frames_.resize(w);
    tombstones_ = 0;
  }

  void drop_oldest_until(std::size_t incoming) {
    // Usually the oldest frames are publications: drop them from the front,
    // O(1) each. A full queue of a client that stopped reading takes this
    // path on every publication; walking the whole queue there cost the
    // shard a fifth of its time with 1000 such clients (benchmarks, F).
    while (head_ < frames_.size() && bytes_ + in_flight_ + incoming > max_bytes_) {
      if (!frames_[head_]) {
        --tombstones_;
      } else if (frames_[head_]->is_publication()) {
        bytes_ -= frames_[head_]->bytes.size();
        ++dropped_;
        frames_[head_].reset();
      } else {
        break;
      }
      ++head_;
    }
    if (bytes_ + in_flight_ + incoming <= max_bytes_ || empty()) {
      compact();
      return;
    }
    // A reply at the front: drop the publications behind it, keeping order.
    std::size_t w = head_;
    for (std::size_t i = head_; i < frames_.size(); ++i) {
      FramePtr& f = frames_[i];
      if (!f) continue;  // a tombstone goes too
      if (f->is_publication() && bytes_ + in_flight_ + incoming > max_bytes_) {
        bytes_ -= f->bytes.size();
        ++dropped_;
        continue;
      }
      if (w != i) frames_[w] = std::move(f);
      ++w;
    }
    frames_.resize(w);
    tombstones_ = 0;
  }

  void compact() {
    if (empty()) {
      base_ += frames_.size();
      frames_.clear();
      head_ = 0;
      tombstones_ = 0;
      // Give the memory back once a burst is over.
      if (frames_.capacity() > 64) frames_.shrink_to_fit();
      forget_keys();
    } else if (head_ > 32 && head_ * 2 > frames_.size()) {
      frames_.erase(frames_.begin(), frames_.begin() + static_cast<std::ptrdiff_t>(head_));
      base_ += head_;
      head_ = 0;
    }
  }

  // --- coalescing ---

  // Collisions are harmless: a slot is checked against the incoming frame
  // before it is replaced. A hash rather than the key itself spares every
  // push an allocation.
  static std::size_t hash_of_key(const Frame& frame) noexcept {
    const std::size_t topic = std::hash<std::string_view>{}(frame.topic);
    const std::size_t key = std::hash<std::string_view>{}(frame.coalesce_key);
    return topic ^ (key + 0x9e3779b9u + (topic << 6) + (topic >> 2));
  }

  // The queued frame at absolute position `position`, if it is still a
  // publication of `frame`'s topic and key; else null.
  FramePtr* queued_with_key(std::size_t position, const Frame& frame) noexcept {
    if (position < base_ + head_ || position - base_ >= frames_.size()) return nullptr;  // taken or gone
    FramePtr& slot = frames_[position - base_];
    if (!slot || !slot->is_publication() || slot->topic != frame.topic || slot->coalesce_key != frame.coalesce_key)
      return nullptr;
    return &slot;
  }

  // Replaces the queued frame of `incoming`'s topic and key, if any.
  void replace_queued(const Frame& incoming, std::size_t key_hash) {
    index_first();
    auto it = positions_.find(key_hash);
    if (it == positions_.end()) return;
    FramePtr* older = queued_with_key(it->second, incoming);
    if (!older) return;
    bytes_ -= (*older)->bytes.size();
    older->reset();
    ++tombstones_;
    ++coalesced_;
  }

  // Before the frame is appended. A keyed frame pushed into an empty queue
  // is indexed only once another keyed frame follows it while it is still
  // queued: a reader that keeps up never allocates for the index.
  void index_pushed(std::size_t key_hash) {
    const std::size_t position = base_ + frames_.size();
    if (empty())
      unindexed_ = position;
    else
      positions_[key_hash] = position;
  }
  void index_first() {
    if (unindexed_ == no_position) return;
    const std::size_t position = unindexed_;
    unindexed_ = no_position;
    if (position < base_ + head_ || position - base_ >= frames_.size()) return;
    const FramePtr& first = frames_[position - base_];
    if (first && first->is_publication() && !first->coalesce_key.empty()) positions_[hash_of_key(*first)] = position;
  }

  // A client that stopped reading, on a topic of few keys, leaves a
  // tombstone per push: once they outnumber the frames, squeeze them out
  // (O(frames), so O(1) per push over the pushes that made them) and index
  // the frames where they now are.
  void remove_tombstones_if_many() {
    if (tombstones_ < 32 || tombstones_ < size()) return;
    index_first();
    std::size_t w = head_;
    for (std::size_t i = head_; i < frames_.size(); ++i) {
      if (!frames_[i]) continue;
      if (w != i) frames_[w] = std::move(frames_[i]);
      const Frame& f = *frames_[w];
      if (f.is_publication() && !f.coalesce_key.empty()) positions_[hash_of_key(f)] = base_ + w;
      ++w;
    }
    frames_.resize(w);
    tombstones_ = 0;
  }

  // Empty, the queue owns no memory for its index either.
  void forget_keys() noexcept {
    std::unordered_map<std::size_t, std::size_t>().swap(positions_);
    unindexed_ = no_position;
  }

  static constexpr std::size_t no_position = static_cast<std::size_t>(-1);

  std::vector<FramePtr> frames_;
  std::size_t head_ = 0;
  std::size_t tombstones_ = 0;  // null slots from head_ on: frames replaced by a newer one of their key
  // Absolute positions: frames_[i] is at base_ + i; base_ grows by what the front compaction erases.
  std::size_t base_ = 0;
  std::unordered_map<std::size_t, std::size_t> positions_;  // hash of topic and key -> position of its latest frame
  std::size_t unindexed_ = no_position;  // see index_pushed
  std::uint64_t coalesced_ = 0;
  std::size_t bytes_ = 0;
  std::size_t in_flight_ = 0;
  std::size_t max_bytes_;
  SlowConsumerPolicy policy_;
  std::uint64_t dropped_ = 0;
  std::atomic<std::int64_t>* bytes_gauge_;
  std::size_t reported_ = 0;  // bytes_ + in_flight_ as last added to the gauge
};

}  // namespace detail
LIVECAST_END_NAMESPACE
