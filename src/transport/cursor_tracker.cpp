#include "cursor_tracker.hpp"

#include <algorithm>

LIVECAST_BEGIN_NAMESPACE
namespace detail {

CursorTracker::CursorTracker(const StreamCursor& client, const std::vector<std::string>& topics) : client_(client) {
  for (const auto& [topic, position] : client)
    if (std::find(topics.begin(), topics.end(), topic) != topics.end()) tracked_.push_back(Tracked{topic, position, false});
}

CursorTracker::Tracked* CursorTracker::find(std::string_view topic) {
  for (auto& t : tracked_)
    if (t.topic == topic) return &t;
  return nullptr;
}

CursorTracker::Tracked& CursorTracker::track(const std::string& topic) {
  if (Tracked* t = find(topic)) return *t;
  tracked_.push_back(Tracked{topic, {}, false});
  return tracked_.back();
}

CursorTracker::Tracked& CursorTracker::start(const Frame& frame) {
  Tracked& t = track(frame.topic);
  if (!frame.recovered || t.position.epoch != frame.head->epoch) t.position = *frame.head;
  return t;
}

bool CursorTracker::is_news(const Frame& frame) const {
  for (const auto& [topic, position] : client_)
    if (topic == frame.topic)
      return position.epoch != frame.head->epoch || (!frame.recovered && position.offset != frame.head->offset);
  return true;
}

bool CursorTracker::on_stream_frame(const Frame& frame) {
  if (frame.starts_subscription()) {
    start(frame);
    return true;
  }
  if (!frame.is_publication()) return false;
  Tracked* t = find(frame.topic);
  if (!t) return false;
  t->position.offset = std::max(t->position.offset, frame.offset);
  return true;
}

CursorTracker::PollVerdict CursorTracker::on_poll_frame(const Frame& frame) {
  if (frame.starts_subscription()) {
    const bool news = is_news(frame);
    Tracked& t = start(frame);
    t.snapshot_pending = news && !frame.recovered;
    return news ? PollVerdict::news : PollVerdict::skip;
  }
  if (frame.is_publication()) {
    if (Tracked* t = find(frame.topic)) {
      const bool snapshot = t->snapshot_pending && frame.offset == t->position.offset;
      if (!snapshot && frame.offset <= t->position.offset) return PollVerdict::skip;
      t->snapshot_pending = false;
      t->position.offset = frame.offset;
    }
    return PollVerdict::news;
  }
  return frame.kind == Frame::Kind::error ? PollVerdict::news : PollVerdict::send;
}

std::string CursorTracker::cursor() const {
  StreamCursor cursor;
  cursor.reserve(tracked_.size());
  for (const auto& t : tracked_) cursor.emplace_back(t.topic, t.position);
  return format_cursor(cursor);
}

}  // namespace detail
LIVECAST_END_NAMESPACE
