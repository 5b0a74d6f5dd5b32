// LongPoll: a transient session that waits for news on its topics and
// answers with one batch (the session's Protocol frames it) and the cursor
// to poll again with. Stateless between polls, so any instance sharing the
// backend can serve the next one.
#include "http_exchanges.hpp"

#include <utility>

LIVECAST_BEGIN_NAMESPACE
namespace detail {

void LongPoll::start(const HttpExchangeContext& context, HttpConnection& connection, std::size_t protocol,
                     Principal principal, const UrlSubscriptions& url, std::chrono::milliseconds timeout) {
  auto poll = std::make_shared<LongPoll>(context, connection, protocol);
  connection.serve(poll);
  poll->open(std::move(principal));
  poll->subscribe_all(url);
  poll->answer_after(timeout);
  poll->frames_ready();  // what the subscriptions queued already
}

// What does not fit stays queued, under the session's policy, until the
// answer; the next poll continues from the cursor.
bool LongPoll::collect() {
  if (!session_) return false;
  bool news = false;
  const std::size_t budget = context_.settings.max_poll_response_bytes;
  while (bytes_ < budget && host().has_frames(*session_)) {
    taken_.clear();
    host().take_frames(*session_, taken_, budget - bytes_);
    for (FramePtr& frame : taken_) {
      host().frames_written(*session_, frame->bytes.size());
      const CursorTracker::PollVerdict verdict = tracker_.on_poll_frame(*frame);
      if (verdict == CursorTracker::PollVerdict::skip) continue;
      if (verdict == CursorTracker::PollVerdict::news) news = true;
      bytes_ += frame->bytes.size() + 1;
      frames_.push_back(std::move(frame));
    }
  }
  taken_.clear();
  if (bytes_ >= budget) return true;
  // After the first news, wait a moment for more: a burst costs one round
  // trip, not one per publication.
  if (news && !coalescing_) {
    coalescing_ = true;
    answer_after(context_.settings.poll_coalescing);
  }
  return false;
}

}  // namespace detail
LIVECAST_END_NAMESPACE
