// Where an HTTP client stands on each of its topics while frames go out to
// it, so that every SSE event id and every poll answer carries the cursor the
// client resumes from (docs/protocol.md, "The cursor"). Sans-I/O: frames in,
// verdicts and a cursor out. It reads only a frame's metadata (kind, topic,
// offset, head), never its bytes, so it follows any protocol.
#pragma once

#include "http_request_parser.hpp"

#include <livecast/config.hpp>
#include <livecast/publication.hpp>

#include <string>
#include <string_view>
#include <vector>

LIVECAST_BEGIN_NAMESPACE
namespace detail {

class CursorTracker {
 public:
  CursorTracker() = default;
  // `client`: the cursor the request came with; `topics`: what the request
  // subscribes. Positions on topics the request no longer names are dropped.
  CursorTracker(const StreamCursor& client, const std::vector<std::string>& topics);

  // An SSE stream sends every frame. True when the frame moved a position
  // (a publication of a tracked topic, a subscription start): its event then
  // carries the cursor as `id:`.
  bool on_stream_frame(const Frame& frame);

  // What a long-poll does with a frame.
  enum class PollVerdict {
    skip,  // the client has it already (the cursor covers it)
    send,  // part of the answer, but no reason to answer now (a notice the cursor already implies)
    news,  // part of the answer, and the poll should answer soon
  };
  PollVerdict on_poll_frame(const Frame& frame);

  // The current positions, as the client should send them back.
  std::string cursor() const;

 private:
  struct Tracked {
    std::string topic;
    StreamPosition position;
    // The subscription restarted (not recovered) while the client's cursor
    // said otherwise: the snapshot at position.offset is still to come and
    // is news even though the offset is not above the position.
    bool snapshot_pending = false;
  };

  Tracked* find(std::string_view topic);
  Tracked& track(const std::string& topic);
  // A subscription started at `frame.head`: recovered, the client's position
  // stands and the missed publications follow; otherwise it starts over.
  Tracked& start(const Frame& frame);
  // Whether a subscription start tells the client something its cursor
  // does not: a topic it had no position on, another epoch, or a restart
  // that moved the head.
  bool is_news(const Frame& frame) const;

  StreamCursor client_;
  std::vector<Tracked> tracked_;
};

}  // namespace detail
LIVECAST_END_NAMESPACE
