// What flows from a publisher to subscribers: the publication as the backend
// stored it, and the immutable wire frame a protocol encodes it into once.
#pragma once

#include <livecast/config.hpp>

#include <cstdint>
#include <memory>
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

// One publication after the backend assigned its offset. The JSON text is
// shared, never copied per subscriber.
struct Publication {
  std::string topic;
  std::uint64_t offset = 0;
  std::shared_ptr<const std::string> data;  // valid JSON text
};

// A message encoded for one wire protocol, shared by every session that uses
// that protocol. Immutable once built; sessions hold pointers, never copies.
struct Frame {
  enum class Kind : std::uint8_t {
    publication,  // may be dropped or conflated by a SlowConsumerPolicy
    control,      // replies, errors: never dropped (overflowing with them closes the session)
  };

  std::string bytes;     // the protocol message (e.g. JSON text for livecast.v1)
  std::string topic;     // for publications: lets the send queue conflate per topic
  std::uint64_t offset = 0;
  Kind kind = Kind::control;

  bool is_publication() const noexcept { return kind == Kind::publication; }
};

using FramePtr = std::shared_ptr<const Frame>;

inline FramePtr make_control_frame(std::string bytes) {
  auto f = std::make_shared<Frame>();
  f->bytes = std::move(bytes);
  f->kind = Frame::Kind::control;
  return f;
}

LIVECAST_END_NAMESPACE
