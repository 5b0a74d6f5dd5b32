// A topic (a room) as one shard sees it: the sessions of this shard that
// subscribed, and how a publication reaches them. Offsets, history and the
// latest value are not here: they belong to the Backend, so that every
// instance sharing a backend agrees on them. (The embedder's view of a topic
// is livecast::Topic, include/livecast/topic.hpp.)
#pragma once

#include <livecast/config.hpp>
#include <livecast/publication.hpp>

#include "session_state.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

LIVECAST_BEGIN_NAMESPACE
namespace detail {

// A publication with its frame for every protocol the broker speaks, built
// once by the broker and shared by every shard and session.
struct EncodedPublication {
  Publication publication;
  std::vector<FramePtr> frames;  // indexed by protocol index
};
using EncodedPublicationPtr = std::shared_ptr<const EncodedPublication>;

// Not thread-safe: each shard has its own Topic objects, used on its thread.
class ShardTopic {
 public:
  // Live publications held for a subscriber waiting for its snapshot or
  // recovery read are capped; past the cap the oldest are dropped (counted).
  static constexpr std::size_t max_held = 4096;

  struct Subscriber {
    SessionState* session;             // non-owning: a session leaves every topic before it is destroyed
    std::uint64_t sequence;        // Session::next_subscription_sequence() at subscribe
    std::uint64_t next_offset = 0; // publications below this were already delivered
    bool live = false;             // false until the snapshot/recovery read is delivered
    std::vector<EncodedPublicationPtr> held;  // live publications that arrived before then
  };

  explicit ShardTopic(std::string name) : name_(std::move(name)) {}

  const std::string& name() const noexcept { return name_; }
  std::size_t subscriber_count() const noexcept { return subscribers_.size(); }
  bool empty() const noexcept { return subscribers_.empty(); }

  Subscriber& add(SessionState& session, std::uint64_t sequence) {
    subscribers_.push_back(Subscriber{&session, sequence, 0, false, {}});
    if (index_)
      index_->emplace(&session, static_cast<std::uint32_t>(subscribers_.size() - 1));
    else if (subscribers_.size() > index_above)
      build_index();
    return subscribers_.back();
  }

  Subscriber* find(const Session& session) noexcept {
    const std::size_t i = position_of(session);
    return i == npos ? nullptr : &subscribers_[i];
  }

  bool remove(const Session& session) noexcept {
    const std::size_t i = position_of(session);
    if (i == npos) return false;
    if (i + 1 != subscribers_.size()) {
      subscribers_[i] = std::move(subscribers_.back());
      if (index_) (*index_)[subscribers_[i].session] = static_cast<std::uint32_t>(i);
    }
    subscribers_.pop_back();
    if (index_) {
      index_->erase(&session);
      if (subscribers_.size() < index_above / 2) index_.reset();
    }
    if (subscribers_.empty()) std::vector<Subscriber>().swap(subscribers_);
    return true;
  }

  // Calls f(Subscriber&) for every subscriber past its snapshot or recovery.
  template <class F>
  void for_each_live(F&& f) {
    for (auto& s : subscribers_)
      if (s.live) f(s);
  }

  struct DeliveryCount {
    std::uint64_t delivered = 0;
    std::uint64_t dropped = 0;  // by send queues, or held too long
    std::uint64_t coalesced = 0;  // replaced in send queues by this publication (TopicDelivery::coalesce_by)
  };

  // Queues the frames of `run` (publications of this topic, in order) on
  // every live subscriber that has not seen them; holds them for
  // subscribers still waiting for their read. One pointer copy per
  // subscriber and publication; no allocation, lock or encoding.
  //
  // A run rather than one publication: each subscriber (its session, its
  // send queue) is visited once for the whole run. Past saturation the
  // runs grow with the load (shard_inbox.hpp) and the queues are long, so
  // a visit per publication cost a cache miss per delivery, and the fan-out
  // alone took the shard's time from the writes.
  DeliveryCount deliver(const std::vector<const EncodedPublicationPtr*>& run) {
    DeliveryCount count;
    for (auto& s : subscribers_) {
      if (!s.live) {
        for (const EncodedPublicationPtr* p : run) {
          if (s.held.size() >= max_held) {
            s.held.erase(s.held.begin());
            ++count.dropped;
          }
          s.held.push_back(*p);
        }
        continue;
      }
      SessionState& session = *s.session;
      const std::size_t protocol = session.protocol();
      for (const EncodedPublicationPtr* p : run) {
        const EncodedPublication& publication = **p;
        const std::uint64_t offset = publication.publication.offset;
        if (offset < s.next_offset) continue;  // already delivered by a recovery read
        s.next_offset = offset + 1;
        if (session.send(publication.frames[protocol])) ++count.delivered;
      }
      count.dropped += session.take_new_drops();
      count.coalesced += session.take_new_coalesced();
    }
    return count;
  }

 private:
  // A small topic is searched; a large one has an index from session to
  // position, so that thousands of sessions leaving or resubscribing at
  // once (a reconnect storm) cost O(1) each rather than a scan each. The
  // index costs about 40 bytes a subscriber, on large topics only.
  static constexpr std::size_t index_above = 32;
  static constexpr std::size_t npos = static_cast<std::size_t>(-1);

  std::size_t position_of(const Session& session) const noexcept {
    if (index_) {
      auto it = index_->find(&session);
      return it == index_->end() ? npos : it->second;
    }
    for (std::size_t i = 0; i < subscribers_.size(); ++i)
      if (subscribers_[i].session == &session) return i;
    return npos;
  }

  void build_index() {
    index_ = std::make_unique<std::unordered_map<const Session*, std::uint32_t>>();
    index_->reserve(subscribers_.size() * 2);
    for (std::size_t i = 0; i < subscribers_.size(); ++i)
      index_->emplace(subscribers_[i].session, static_cast<std::uint32_t>(i));
  }

  std::string name_;
  std::vector<Subscriber> subscribers_;
  std::unique_ptr<std::unordered_map<const Session*, std::uint32_t>> index_;  // null while small
};

}  // namespace detail
LIVECAST_END_NAMESPACE
