// CursorTracker without a socket: frames built by hand (metadata only, the
// bytes are deliberately not any protocol's) in, verdicts and cursors out.
#include "cursor_tracker.hpp"

#include <doctest/doctest.h>

#include <memory>
#include <string>

using namespace livecast;
using detail::CursorTracker;
using detail::StreamCursor;
using Verdict = CursorTracker::PollVerdict;

namespace {

Frame publication(const std::string& topic, std::uint64_t offset) {
  Frame f;
  f.bytes = "opaque";
  f.kind = Frame::Kind::publication;
  f.topic = topic;
  f.offset = offset;
  return f;
}

Frame subscribed(const std::string& topic, const std::string& epoch, std::uint64_t head, bool recovered,
                 Frame::Kind kind = Frame::Kind::reply) {
  Frame f;
  f.bytes = "opaque";
  f.kind = kind;
  f.topic = topic;
  f.head = StreamPosition{epoch, head};
  f.recovered = recovered;
  return f;
}

Frame error() {
  Frame f;
  f.bytes = "opaque";
  f.kind = Frame::Kind::error;
  f.request_id = 3;
  return f;
}

}  // namespace

TEST_CASE("a stream: subscription starts and publications move the cursor; other frames do not") {
  CursorTracker t({}, {"a", "b"});
  CHECK(t.cursor().empty());
  CHECK(t.on_stream_frame(subscribed("a", "e", 4, false)));
  CHECK(t.cursor() == "a:e:4");
  CHECK(t.on_stream_frame(publication("a", 4)));  // the snapshot
  CHECK(t.cursor() == "a:e:4");
  CHECK(t.on_stream_frame(subscribed("b", "e", 0, false)));
  CHECK(t.on_stream_frame(publication("a", 5)));
  CHECK(t.cursor() == "a:e:5,b:e:0");
  CHECK_FALSE(t.on_stream_frame(error()));
  CHECK_FALSE(t.on_stream_frame(publication("untracked", 9)));
  CHECK(t.cursor() == "a:e:5,b:e:0");
}

TEST_CASE("a stream resuming: a recovered start keeps the client's position, a lost one starts over") {
  StreamCursor client{{"a", {"e", 10}}, {"b", {"e", 3}}, {"gone", {"e", 1}}};
  CursorTracker t(client, {"a", "b"});
  CHECK(t.cursor() == "a:e:10,b:e:3");  // a topic the request no longer names is dropped
  CHECK(t.on_stream_frame(subscribed("a", "e", 12, true)));
  CHECK(t.cursor() == "a:e:10,b:e:3");  // 11 and 12 follow and move it
  CHECK(t.on_stream_frame(publication("a", 11)));
  CHECK(t.on_stream_frame(subscribed("b", "f", 7, false)));  // another epoch
  CHECK(t.cursor() == "a:e:11,b:f:7");
  // A recovered start in another epoch than the client's still moves to it.
  CursorTracker u({{"a", {"old", 2}}}, {"a"});
  u.on_stream_frame(subscribed("a", "new", 5, true));
  CHECK(u.cursor() == "a:new:5");
}

TEST_CASE("a poll: what the cursor covers is skipped, what it does not is news") {
  StreamCursor client{{"a", {"e", 5}}};
  CursorTracker t(client, {"a", "b"});
  // Recovered with nothing missed: only confirms the cursor.
  CHECK(t.on_poll_frame(subscribed("a", "e", 5, true)) == Verdict::skip);
  // A topic the cursor did not name: its reply and snapshot are news.
  CHECK(t.on_poll_frame(subscribed("b", "e", 2, false)) == Verdict::news);
  CHECK(t.on_poll_frame(publication("b", 2)) == Verdict::news);
  // Already seen (a live publication that raced the recovery read).
  CHECK(t.on_poll_frame(publication("a", 5)) == Verdict::skip);
  CHECK(t.on_poll_frame(publication("a", 6)) == Verdict::news);
  CHECK(t.on_poll_frame(publication("a", 6)) == Verdict::skip);
  CHECK(t.cursor() == "a:e:6,b:e:2");
  CHECK(t.on_poll_frame(error()) == Verdict::news);
  Frame pong;
  pong.kind = Frame::Kind::reply;
  pong.request_id = 1;
  CHECK(t.on_poll_frame(pong) == Verdict::send);
}

TEST_CASE("a poll: a restart at the client's own head is not news, and its snapshot is skipped") {
  CursorTracker same({{"a", {"e", 5}}}, {"a"});
  CHECK(same.on_poll_frame(subscribed("a", "e", 5, false)) == Verdict::skip);
  CHECK(same.on_poll_frame(publication("a", 5)) == Verdict::skip);
  // A restart that moved the head (history trimmed past the cursor): the
  // snapshot at the new head is news although the client's offset was lower.
  CursorTracker moved({{"a", {"e", 5}}}, {"a"});
  CHECK(moved.on_poll_frame(subscribed("a", "e", 9, false)) == Verdict::news);
  CHECK(moved.on_poll_frame(publication("a", 9)) == Verdict::news);
  CHECK(moved.on_poll_frame(publication("a", 9)) == Verdict::skip);
  CHECK(moved.cursor() == "a:e:9");
  // A history-lost notice (no id) restarts just the same.
  CursorTracker lost({{"a", {"e", 5}}}, {"a"});
  CHECK(lost.on_poll_frame(subscribed("a", "f", 1, false, Frame::Kind::notice)) == Verdict::news);
  CHECK(lost.cursor() == "a:f:1");
}
