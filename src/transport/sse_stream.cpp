// SseStream: a session's frames as a Server-Sent Events stream. Each frame
// is one event (its bytes on `data:` lines); events that move a position
// carry the cursor as `id:`, which EventSource sends back as Last-Event-ID.
#include "http_exchanges.hpp"

#include <algorithm>
#include <charconv>
#include <utility>

LIVECAST_BEGIN_NAMESPACE
namespace detail {

namespace {

constexpr std::chrono::milliseconds close_timeout{2000};
// Per write: enough for a burst, small enough that the send queue, not the
// socket, holds the backlog and its slow-consumer policy can act.
constexpr std::size_t max_bytes_per_write = 64 * 1024;

}  // namespace

void SseStream::start(const HttpExchangeContext& context, HttpConnection& connection, std::size_t protocol,
                      Principal principal, const UrlSubscriptions& url) {
  auto stream = std::make_shared<SseStream>(context, connection, protocol);
  connection.serve(stream);
  connection.no_keep_alive();  // the stream ends the connection
  bump(context.counters.sse_streams);
  bump(context.counters.sse_active);
  stream->counted_active_ = true;
  // Chunked rather than close-delimited: proxies then know the response is
  // complete when the stream ends on purpose, and can tell it from a cut.
  stream->chunked_ = connection.request().version_minor >= 1;
  stream->head_ = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n"
                  "Cache-Control: no-cache, no-transform\r\nX-Accel-Buffering: no\r\n";
  stream->head_ += stream->chunked_ ? "Transfer-Encoding: chunked\r\n" : "Connection: close\r\n";
  stream->head_ += connection.response_headers();
  stream->head_ += "\r\n";
  stream->text_ = "retry: 2000\n\n";
  stream->open(std::move(principal));
  stream->subscribe_all(url);
  stream->arm_heartbeat();
  connection.write_ready();
}

bool SseStream::fill(HttpOutput& out) {
  if (!head_.empty()) {
    out.text(head_);
    head_.clear();
    head_.shrink_to_fit();
  }
  const std::size_t chunk_start = out.mark();
  out.text(text_);
  text_.clear();
  if (session_ && !session_->closing()) {
    // One frame at a time: with many topics the id lines can outweigh
    // small frames, and the pass is bounded by what it writes.
    std::vector<FramePtr> taken;
    while (host().has_frames(*session_) && out.size() < max_bytes_per_write) {
      taken.clear();
      host().take_frames(*session_, taken, 0);
      taken_bytes_ += taken.back()->bytes.size();
      const bool with_id = tracker_.on_stream_frame(*taken.back());
      add_event(out, taken.back(), with_id);
    }
  }
  out.text(closing_);
  closing_.clear();
  const std::size_t body = out.bytes_since(chunk_start);
  if (body > 0 && chunked_) {
    char hex[20];
    auto r = std::to_chars(hex, hex + sizeof hex, body, 16);
    out.insert_text(chunk_start, std::string(hex, r.ptr) + "\r\n");
    out.text("\r\n");
  }
  if (!end_stream_) return false;
  if (chunked_) out.text("0\r\n\r\n");
  return true;
}

// One event: `id:` when it moves a position, then the frame's bytes on
// `data:` lines. A JSON text may hold raw line breaks (whitespace); each
// starts a new data line, and EventSource joins them back with "\n".
void SseStream::add_event(HttpOutput& out, const FramePtr& frame, bool with_id) {
  if (with_id) out.text("id: " + tracker_.cursor() + "\n");
  const std::string& text = out.hold(frame);
  std::size_t start = 0;
  while (true) {
    const std::size_t end = text.find_first_of("\r\n", start);
    out.text("data: ");
    const std::size_t stop = end == std::string::npos ? text.size() : end;
    out.part(text, start, stop - start);
    out.text("\n");
    if (end == std::string::npos) break;
    start = end + 1;
    if (text[end] == '\r' && start < text.size() && text[start] == '\n') ++start;
  }
  out.text("\n");
}

void SseStream::written() {
  if (session_) host().frames_written(*session_, taken_bytes_);
  taken_bytes_ = 0;
}

void SseStream::on_session_closed(CloseCode code, const std::string& reason) { begin_close(code, reason); }

void SseStream::shut_down() { begin_close(CloseCode::going_away, "server shutting down"); }

// The stream ends with `event: close` and the close code, then the response.
void SseStream::begin_close(CloseCode code, std::string_view reason) {
  if (end_stream_) return;
  end_session();
  stop_counting();
  std::string data = "{\"code\":" + std::to_string(static_cast<int>(code)) + ",\"reason\":";
  append_json_string(data, reason);
  data += "}";
  closing_ = "event: close\ndata: " + data + "\n\n";
  end_stream_ = true;
  heartbeat_.cancel();
  // A client that stopped reading never lets the close event out.
  connection_.limit_remaining_time(close_timeout);
  connection_.write_ready();
}

void SseStream::on_end() {
  heartbeat_.cancel();
  stop_counting();
}

void SseStream::stop_counting() {
  if (!counted_active_) return;
  counted_active_ = false;
  drop(context_.counters.sse_active);
}

// A comment line now and then keeps proxies from closing a quiet stream and
// finds dead peers.
void SseStream::arm_heartbeat() {
  const auto every = context_.settings.sse_heartbeat;
  if (every.count() <= 0 || ended_ || end_stream_) return;
  heartbeat_.expires_after(every);
  heartbeat_.async_wait([self = std::static_pointer_cast<SseStream>(shared_from_this())](const std::error_code& ec) {
    if (ec || self->ended_ || self->end_stream_) return;
    // A write still in flight shows the stream is not quiet; do not pile up
    // comments behind a client that does not read.
    if (self->taken_bytes_ == 0 && self->text_.empty()) {
      self->text_ = ": hb\n\n";
      self->connection_.write_ready();
    }
    self->arm_heartbeat();
  });
}

}  // namespace detail
LIVECAST_END_NAMESPACE
