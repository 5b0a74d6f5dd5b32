// What flows from a publisher to subscribers: the publication as the backend
// stored it, and the immutable wire frame a protocol encodes it into once.
#pragma once

#include <livecast/config.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

LIVECAST_BEGIN_NAMESPACE

// Where a client stands in a topic's stream. `epoch` names one incarnation of
// the topic's history (it changes when history is lost, e.g. on restart of an
// in-process broker); `offset` is the offset of the last publication the
// client has seen, 0 when it has seen none. Offsets start at 1 and grow by
// one per publication within an epoch.
struct StreamPosition {
  std::string epoch;
  std::uint64_t offset = 0;

  friend bool operator==(const StreamPosition& a, const StreamPosition& b) {
    return a.epoch == b.epoch && a.offset == b.offset;
  }
};

// What a subscribe asks for besides the latest value, so that a chart opened
// now starts full instead of empty: the most recent publications, at most
// `count` of them (0: as many as allowed) and, when `max_age` is set, only
// those stored within it. Both are bounded by what the topic's history still
// holds and by RecoverySettings::max_publications. The latest value is
// always included, however old, as on a plain subscribe.
struct RecentHistory {
  std::size_t count = 0;
  std::chrono::milliseconds max_age{0};  // zero: any age

  friend bool operator==(const RecentHistory& a, const RecentHistory& b) {
    return a.count == b.count && a.max_age == b.max_age;
  }
};

// One publication after the backend assigned its offset. The JSON text is
// shared, never copied per subscriber.
struct Publication {
  std::string topic;
  std::uint64_t offset = 0;
  std::shared_ptr<const std::string> data;  // valid JSON text
  // The epoch `offset` belongs to (StreamPosition::epoch); "" when the
  // backend did not say.
  std::string epoch;
};

// A message encoded for one wire protocol, shared by every session that uses
// that protocol. Immutable once built; sessions hold pointers, never copies.
//
// Beside its bytes a frame says what it is (set by Protocol::encode_*), so a
// transport never parses what a protocol encoded: the HTTP fallbacks follow
// positions and match replies to requests from these fields alone, whatever
// the wire format.
struct Frame {
  enum class Kind : std::uint8_t {
    publication,  // a topic's publication; may be dropped or conflated by a SlowConsumerPolicy
    reply,        // the answer to a client request
    error,        // an error, answering a request (request_id) or not
    notice,       // said by the server unasked: a server-side join, history lost
  };

  std::string bytes;  // the protocol message (e.g. JSON text for livecast.v1)
  Kind kind = Kind::reply;
  // The request a reply or error answers, when the request carried an id.
  std::optional<std::int64_t> request_id;
  // Publications, and replies or notices about one topic (lets the send
  // queue conflate per topic).
  std::string topic;
  // Publications: the publication's offset, and its epoch ("" if unknown).
  std::uint64_t offset = 0;
  std::string epoch;
  // Replies and notices that start (or restart) a subscription: the topic's
  // head, and whether the client's asked position was recovered. What follows
  // on the topic continues from there.
  std::optional<StreamPosition> head;
  bool recovered = false;
  // Publications: when the publication reached this instance's broker, for
  // the delivery-latency histogram (zero: not measured, e.g. replays). Set
  // by the broker once, before the frame is shared with any shard: mutable
  // because protocols hand their frames back const.
  mutable std::chrono::steady_clock::time_point published_at{};
  // Publications of a topic with TopicDelivery::coalesce_by: the value of
  // the named member ("" : none). A send queue holding an older frame of the
  // same topic and key replaces it with this one. A string member's value
  // is kept after a '"' (escapes decoded), a number's as written, so that
  // "1" and 1 are two keys. Set by the broker once, like published_at.
  mutable std::string coalesce_key;

  bool is_publication() const noexcept { return kind == Kind::publication; }
  bool starts_subscription() const noexcept { return head.has_value(); }
};

using FramePtr = std::shared_ptr<const Frame>;

LIVECAST_END_NAMESPACE
