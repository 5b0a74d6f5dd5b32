#include "http_connection.hpp"

#include "http_response.hpp"

#include <livecast/json.hpp>

#include <asio/post.hpp>
#include <asio/write.hpp>

#include <utility>

LIVECAST_BEGIN_NAMESPACE
namespace detail {

namespace {

constexpr std::chrono::milliseconds close_timeout{2000};

std::string json_error_body(std::string_view code, std::string_view message) {
  std::string body = "{\"error\":{\"code\":";
  append_json_string(body, code);
  body += ",\"message\":";
  append_json_string(body, message);
  body += "}}";
  return body;
}

}  // namespace

// --- HttpOutput ---

void HttpOutput::text(std::string_view s) {
  if (s.empty()) return;
  pieces_.push_back(Piece{nullptr, scratch_.size(), s.size()});
  scratch_.append(s);
}

const std::string& HttpOutput::hold(FramePtr frame) {
  held_.push_back(std::move(frame));
  return held_.back()->bytes;
}

void HttpOutput::part(const std::string& source, std::size_t offset, std::size_t length) {
  if (length > 0) pieces_.push_back(Piece{&source, offset, length});
}

std::size_t HttpOutput::bytes_since(std::size_t mark) const noexcept {
  std::size_t n = 0;
  for (std::size_t i = mark; i < pieces_.size(); ++i) n += pieces_[i].length;
  return n;
}

void HttpOutput::insert_text(std::size_t mark, std::string_view s) {
  pieces_.insert(pieces_.begin() + static_cast<std::ptrdiff_t>(mark), Piece{nullptr, scratch_.size(), s.size()});
  scratch_.append(s);
}

std::size_t HttpOutput::size() const noexcept { return bytes_since(0); }

const std::vector<asio::const_buffer>& HttpOutput::buffers() {
  buffers_.clear();
  for (const Piece& p : pieces_) {
    const char* base = p.source ? p.source->data() : scratch_.data();
    buffers_.push_back(asio::buffer(base + p.offset, p.length));
  }
  return buffers_;
}

void HttpOutput::clear() {
  scratch_.clear();
  pieces_.clear();
  held_.clear();
  buffers_.clear();
}

// --- HttpConnection ---

HttpConnection::HttpConnection(ByteStream stream, std::shared_ptr<RequestHandler> handler, Limits limits,
                               HttpCounters& counters, AddressSlot address)
    : context_(static_cast<asio::io_context&>(stream.socket().get_executor().context())),
      stream_(std::move(stream)),
      handler_(std::move(handler)),
      counters_(counters),
      address_(std::move(address)),
      request_timeout_(limits.request_timeout),
      max_pending_input_(limits.request.max_request_line_bytes + limits.request.max_header_bytes +
                         limits.request.max_body_bytes),
      deadline_(context_),
      write_timeout_(limits.write_timeout),
      write_deadline_(context_),
      parser_(limits.request) {}

HttpConnection::~HttpConnection() {
  // Only when the io_context went away with handlers pending; otherwise
  // terminate() already counted the end.
  if (state_ != State::closed) drop(counters_.connections_active);
}

std::string HttpConnection::remote_address() const {
  std::error_code ec;
  auto remote = stream_.remote_endpoint(ec);
  return ec ? std::string() : remote.address().to_string();
}

void HttpConnection::start(std::atomic<std::uint64_t>* refusal) {
  if (refusal) {
    keep_alive_ = false;
    refuse(503, "unavailable", "too many connections", *refusal);
  } else {
    enter_reading();  // the request time limit covers the TLS handshake too
  }
  if (stream_.handshake_pending()) {
    start_tls_handshake();
    return;
  }
  read_more();
}

void HttpConnection::start_tls_handshake() {
  tls_handshake_pending_ = true;
  stream_.async_handshake([self = shared_from_this()](const std::error_code& ec) {
    self->tls_handshake_pending_ = false;
    if (self->state_ == State::closed) return;
    if (ec) {
      bump(self->counters_.tls_handshakes_failed);
      self->terminate();
      return;
    }
    self->read_more();
  });
}

// --- reading ---

void HttpConnection::read_more() {
  if (reading_ || state_ == State::closed) return;
  reading_ = true;
  stream_.async_read_some(asio::buffer(read_buffer_), [self = shared_from_this()](const std::error_code& ec,
                                                                                  std::size_t n) {
    self->reading_ = false;
    self->on_read(ec, n);
  });
}

void HttpConnection::on_read(const std::error_code& ec, std::size_t n) {
  if (state_ == State::closed) return;
  if (ec) {
    // The client went away (or half-closed, which for these requests means
    // it will not read an answer either).
    terminate();
    return;
  }
  if (state_ == State::lingering) {
    if (!stream_.is_tls()) read_more();  // TLS: its shutdown reads to the end
    return;
  }
  input_.append(read_buffer_.data(), n);
  if (state_ == State::reading) {
    process_input();
  } else if (input_.size() > max_pending_input_) {
    // Bytes while serving are a pipelined next request, kept for later, but
    // never more than one request could hold.
    terminate();
    return;
  }
  if (state_ != State::closed) read_more();
}

void HttpConnection::enter_reading() {
  state_ = State::reading;
  parser_.reset();
  continue_sent_ = false;
  response_headers_.clear();
  arm_deadline(request_timeout_, &HttpConnection::on_request_timeout);
}

void HttpConnection::process_input() {
  while (state_ == State::reading && !input_.empty()) {
    const std::size_t used = parser_.feed(input_);
    input_.erase(0, used);
    if (parser_.failed()) {
      keep_alive_ = false;
      const int status = parser_.error_status();
      const bool too_large = status == 413 || status == 414 || status == 431;
      refuse(status, too_large ? "too_large" : "bad_request", parser_.error_reason(),
             too_large ? counters_.refused_too_large : counters_.refused_malformed);
      return;
    }
    if (!parser_.complete()) {
      if (parser_.state() == HttpRequestParser::State::body && !continue_sent_ &&
          parser_.request().header("expect") == "100-continue")
        send_continue();
      return;
    }
    ++deadline_generation_;
    deadline_.cancel();
    bump(counters_.requests);
    keep_alive_ = parser_.request().keep_alive;
    handler_->on_request(*this);
  }
}

// Clients such as curl hold a body back until told to send it.
void HttpConnection::send_continue() {
  static constexpr std::string_view line = "HTTP/1.1 100 Continue\r\n\r\n";
  continue_sent_ = true;
  writing_ = true;
  watch_write();
  stream_.async_write(asio::buffer(line.data(), line.size()),
                      [self = shared_from_this()](const std::error_code& ec, std::size_t) {
                      self->writing_ = false;
                      if (ec) {
                        self->terminate();
                        return;
                      }
                      self->flush();  // an answer that was ready meanwhile
                    });
}

void HttpConnection::on_request_timeout() {
  if (state_ != State::reading) return;
  if (tls_handshake_pending_) {
    bump(counters_.tls_handshakes_failed);
    terminate();
    return;
  }
  if (!parser_.started()) {
    // An idle kept-alive connection: close quietly.
    linger();
    return;
  }
  keep_alive_ = false;
  refuse(408, "timeout", "request not received in time", counters_.refused_timeout);
}

// --- answers ---

std::string HttpConnection::common_headers() const {
  std::string h = response_headers_;
  if (!keep_alive_)
    h += "Connection: close\r\n";
  else if (parser_.request().version_minor == 0)
    h += "Connection: keep-alive\r\n";
  return h;
}

std::string HttpConnection::response_head(int status, std::string_view content_type, std::size_t content_length,
                                          std::string_view extra_headers) const {
  std::string head = "HTTP/1.1 " + std::to_string(status) + " " + reason_phrase(status) + "\r\n";
  if (!content_type.empty()) {
    head += "Content-Type: ";
    head += content_type;
    head += "\r\n";
  }
  if (status != 204) head += "Content-Length: " + std::to_string(content_length) + "\r\n";
  head += extra_headers;
  head += common_headers();
  head += "\r\n";
  return head;
}

void HttpConnection::respond(int status, std::string_view content_type, std::string_view body,
                             std::string_view extra_headers) {
  state_ = State::responding;
  response_ = response_head(status, content_type, body.size(), extra_headers);
  if (parser_.request().method != "HEAD" && status != 204) response_ += body;
  flush();
}

void HttpConnection::refuse(int status, std::string_view code, std::string_view message,
                            std::atomic<std::uint64_t>& counter, std::string_view extra_headers) {
  bump(counter);
  std::string headers(extra_headers);
  headers += "Cache-Control: no-store\r\n";
  respond(status, "application/json", json_error_body(code, message), headers);
}

void HttpConnection::serve(std::shared_ptr<HttpExchange> exchange) {
  state_ = State::exchange;
  exchange_ = std::move(exchange);
}

void HttpConnection::write_ready() {
  if (flush_posted_ || state_ != State::exchange) return;
  flush_posted_ = true;
  asio::post(context_, [self = shared_from_this()] {
    self->flush_posted_ = false;
    self->flush();
  });
}

void HttpConnection::limit_remaining_time(std::chrono::milliseconds after) {
  arm_deadline(after, &HttpConnection::terminate);
}

ByteStream HttpConnection::take_stream(std::string& received) {
  // The request as websocketpp will parse it again, then what came after it.
  const ParsedHttpRequest& r = parser_.request();
  received = format_request_head(r);
  received += r.body;
  received += input_;
  input_.clear();
  ++deadline_generation_;
  deadline_.cancel();
  write_deadline_.cancel();
  state_ = State::closed;
  drop(counters_.connections_active);
  address_.release();  // the WebSocket transport counts it from now on
  // A read may be pending: it completes with operation_aborted, and what
  // arrives afterwards is the new owner's.
  return stream_.take();
}

// --- writing ---

void HttpConnection::flush() {
  if (writing_ || state_ == State::closed || state_ == State::lingering || state_ == State::reading) return;
  out_.clear();
  if (state_ == State::responding) {
    if (response_.empty()) return;
    out_.text(response_);
    response_.clear();
    finish_after_write_ = true;
  } else if (exchange_->fill(out_)) {
    finish_after_write_ = true;
  }
  if (out_.empty()) {
    if (finish_after_write_) finish_response();
    return;
  }
  writing_ = true;
  watch_write();
  stream_.async_write(out_.buffers(), [self = shared_from_this()](const std::error_code& ec, std::size_t) {
    self->on_written(ec);
  });
}

void HttpConnection::on_written(const std::error_code& ec) {
  writing_ = false;
  if (state_ == State::closed) return;
  out_.clear();
  if (ec) {
    terminate();
    return;
  }
  if (exchange_) exchange_->written();
  if (finish_after_write_) {
    finish_response();
    return;
  }
  if (state_ == State::exchange) flush();
}

void HttpConnection::finish_response() {
  finish_after_write_ = false;
  end_exchange();
  if (keep_alive_) {
    enter_reading();
    process_input();
  } else {
    linger();
  }
}

void HttpConnection::end_exchange() {
  if (!exchange_) return;
  auto exchange = std::move(exchange_);
  exchange->end();
}

// --- ending ---

void HttpConnection::shut_down() {
  keep_alive_ = false;
  switch (state_) {
    case State::reading: terminate(); return;
    case State::exchange:
      exchange_->shut_down();
      flush();  // now, not on a later turn: the shard may stop running soon
      break;
    default: break;
  }
  if (state_ != State::closed) arm_deadline(close_timeout, &HttpConnection::terminate);
}

// Shuts our side and reads until the client closes, so that a client still
// sending (an oversized body) sees our answer instead of a reset.
void HttpConnection::linger() {
  if (state_ == State::closed) return;
  end_exchange();
  state_ = State::lingering;
  input_.clear();
  input_.shrink_to_fit();
  arm_deadline(close_timeout, &HttpConnection::terminate);
  if (stream_.is_tls()) {
    // close_notify, then the client's, or its end of stream.
    stream_.async_tls_shutdown([self = shared_from_this()](const std::error_code&) { self->terminate(); });
    return;
  }
  stream_.shutdown_send();
  read_more();
}

void HttpConnection::terminate() {
  if (state_ == State::closed) return;
  end_exchange();
  state_ = State::closed;
  ++deadline_generation_;
  deadline_.cancel();
  write_deadline_.cancel();
  std::error_code ignored;
  stream_.close(ignored);
  drop(counters_.connections_active);
  address_.release();
}

void HttpConnection::arm_deadline(std::chrono::milliseconds after, void (HttpConnection::*action)()) {
  const std::uint64_t generation = ++deadline_generation_;
  deadline_.expires_after(after);
  deadline_.async_wait([self = shared_from_this(), generation, action](const std::error_code& ec) {
    if (ec || generation != self->deadline_generation_ || self->state_ == State::closed) return;
    ((*self).*action)();
  });
}

// A write that does not reach the kernel within write_timeout means a client
// that stopped reading: it is cut off (terminate() ends the exchange, which
// closes its session). Most writes complete at once, so a write costs a
// clock read, not a timer operation: the timer is armed when none is, and
// when it fires with a write still in flight it waits for that write's own
// deadline, or cuts the connection off if it passed.
void HttpConnection::watch_write() {
  write_started_ = std::chrono::steady_clock::now();
  if (write_timeout_.count() > 0 && !write_deadline_armed_) arm_write_deadline(write_timeout_);
}

void HttpConnection::arm_write_deadline(std::chrono::steady_clock::duration after) {
  write_deadline_armed_ = true;
  write_deadline_.expires_after(after);
  write_deadline_.async_wait([self = shared_from_this()](const std::error_code& ec) {
    self->write_deadline_armed_ = false;
    if (ec || self->state_ == State::closed || !self->writing_) return;
    const auto due = self->write_started_ + self->write_timeout_;
    const auto now = std::chrono::steady_clock::now();
    if (now < due) {
      self->arm_write_deadline(due - now);
      return;
    }
    bump(self->counters_.write_timeouts);
    self->terminate();
  });
}

}  // namespace detail
LIVECAST_END_NAMESPACE
