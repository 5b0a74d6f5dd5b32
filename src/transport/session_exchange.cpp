// SessionExchange: the session an HTTP exchange owns; BatchExchange: the
// answer-once-with-a-batch that polls and POSTs share.
#include "http_exchanges.hpp"

#include <asio/post.hpp>

#include <utility>

LIVECAST_BEGIN_NAMESPACE
namespace detail {

void SessionExchange::open(Principal principal) {
  session_ = host().open_session(context_.shard, std::move(principal), protocol_, *this);
}

// One client request, so its topics go to the broker as requests: past the
// session's message rate limit, and in no protocol's text.
void SessionExchange::subscribe_all(const UrlSubscriptions& url) {
  tracker_ = CursorTracker(url.cursor, url.topics);
  for (std::size_t i = 0; i < url.topics.size() && session_ && !session_->closing(); ++i) {
    ClientRequest request;
    request.op = ClientRequest::Op::subscribe;
    request.id = static_cast<std::int64_t>(i + 1);
    request.topic = url.topics[i];
    for (const auto& [topic, position] : url.cursor)
      if (topic == url.topics[i]) request.recover = position;
    for (const auto& [topic, recent] : url.recent)
      if (topic == url.topics[i] && !request.recover) request.recent = recent;
    host().execute(*session_, std::move(request));
  }
}

void SessionExchange::end_session() {
  if (!session_) return;
  host().close_session(*session_);
  session_.reset();
}

void SessionExchange::end() {
  if (ended_) return;
  ended_ = true;
  end_session();
  on_end();
}

void SessionExchange::frames_ready() {
  if (frames_posted_ || ended_) return;
  frames_posted_ = true;
  asio::post(connection_.context(), [self = shared_from_this()] {
    self->frames_posted_ = false;
    if (!self->ended_) self->on_frames();
  });
}

void SessionExchange::close(CloseCode code, std::string_view reason) {
  asio::post(connection_.context(), [self = shared_from_this(), code, reason = std::string(reason)] {
    if (!self->ended_ && self->session_) self->on_session_closed(code, reason);
  });
}

void BatchExchange::answer() {
  if (answered_) return;
  collect();
  answered_ = true;
  end_session();
  timer_.cancel();
  bump(counter_);
  connection_.write_ready();
}

void BatchExchange::answer_after(std::chrono::milliseconds after) {
  timer_.expires_after(after);
  timer_.async_wait([self = std::static_pointer_cast<BatchExchange>(shared_from_this())](const std::error_code& ec) {
    if (!ec && !self->ended_) self->answer();
  });
}

// The head and the batch, with the frames unjoined.
bool BatchExchange::fill(HttpOutput& out) {
  if (!answered_) return false;
  const MessageBatchFraming f = framing();
  std::size_t length = f.head.size() + f.tail.size();
  for (std::size_t i = 0; i < frames_.size(); ++i) length += frames_[i]->bytes.size() + (i ? f.separator.size() : 0);
  out.text(connection_.response_head(200, f.content_type, length, "Cache-Control: no-store\r\n"));
  out.text(f.head);
  for (std::size_t i = 0; i < frames_.size(); ++i) {
    if (i) out.text(f.separator);
    const std::string& bytes = out.hold(std::move(frames_[i]));
    out.part(bytes, 0, bytes.size());
  }
  frames_.clear();
  out.text(f.tail);
  return true;
}

}  // namespace detail
LIVECAST_END_NAMESPACE
