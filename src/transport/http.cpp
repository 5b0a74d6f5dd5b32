// SSE and long-polling on raw Asio: one acceptor per broker shard, all on one
// port with SO_REUSEPORT, and every connection driven by its shard's thread,
// so nothing here takes a lock. Requests are parsed by the sans-I/O
// HttpRequestParser; this file is the socket glue and the mapping of the
// session's SendQueue onto event-stream chunks or a poll's answer. Any
// Protocol the broker speaks runs here (`protocol=`): positions come from the
// frames' metadata (CursorTracker), batches from Protocol::batch_framing.
#include <livecast/http_transport.hpp>

#include <livecast/session_host.hpp>

#include "admission.hpp"
#include "cursor_tracker.hpp"
#include "http_request_parser.hpp"
#include "shard_listeners.hpp"

#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/write.hpp>


#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <cstring>
#include <exception>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

LIVECAST_BEGIN_NAMESPACE

namespace {

using asio::ip::tcp;
using detail::HttpRequestParser;
using detail::ParsedHttpRequest;
using detail::CursorTracker;
using detail::StreamCursor;

struct Counters {
  std::atomic<std::uint64_t> connections{0}, connections_active{0}, requests{0}, sse_streams{0}, sse_active{0},
      polls{0}, posts{0}, preflights{0}, handler_requests{0}, refused_malformed{0}, refused_bad_parameters{0},
      refused_too_large{0}, refused_method{0}, refused_unauthorized{0}, refused_origin{0}, refused_not_found{0},
      refused_timeout{0}, refused_too_many_connections{0}, refused_shutting_down{0};
};

void bump(std::atomic<std::uint64_t>& counter) noexcept { counter.fetch_add(1, std::memory_order_relaxed); }
void drop(std::atomic<std::uint64_t>& counter) noexcept { counter.fetch_sub(1, std::memory_order_relaxed); }

const char* reason_phrase(int status) noexcept {
  switch (status) {
    case 200: return "OK";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
  }
}

std::string json_error_body(std::string_view code, std::string_view message) {
  std::string body = "{\"error\":{\"code\":";
  append_json_string(body, code);
  body += ",\"message\":";
  append_json_string(body, message);
  body += "}}";
  return body;
}

class ShardServer;

// One TCP connection. At most one request is being served at a time; an SSE
// stream, a waiting poll or a POST own a Session for their duration.
class HttpConnection final : public SessionConnection, public std::enable_shared_from_this<HttpConnection> {
 public:
  static constexpr std::uint32_t no_slot = static_cast<std::uint32_t>(-1);

  HttpConnection(std::shared_ptr<ShardServer> shard, tcp::socket socket);
  ~HttpConnection() override;
  HttpConnection(const HttpConnection&) = delete;
  HttpConnection& operator=(const HttpConnection&) = delete;

  void start(bool over_capacity);
  // The transport is stopping: end what is being served, report the session
  // closed now, and let only the last bytes go out afterwards.
  void shut_down();

  void frames_ready() override;
  void close(CloseCode code, std::string_view reason) override;

  std::uint32_t slot = no_slot;

 private:
  enum class Mode {
    reading,     // waiting for (the rest of) a request
    responding,  // writing a complete answer; then reading again or closing
    sse,         // streaming events
    poll,        // a GET poll waiting for news
    post,        // a POST waiting for its reply
    lingering,   // our side is shut; draining the client's bytes until it closes
    closed,
  };

  // A part of the next write: bytes of scratch_ or of a taken frame.
  struct Piece {
    const std::string* source;  // null: scratch_
    std::size_t offset;
    std::size_t length;
  };

  const HttpTransportSettings& settings() const;
  SessionHost& host();
  Counters& counters();

  // --- reading ---
  void read_more();
  void on_read(const std::error_code& ec, std::size_t n);
  void process_input();
  void send_continue();
  void enter_reading();
  void on_request_timeout();

  // --- requests ---
  void handle_request();
  HandshakeRequest describe(const ParsedHttpRequest& r, std::string_view path, std::string_view query,
                            const char* transport) const;
  std::optional<Principal> authenticate(const HandshakeRequest& request);
  std::optional<std::vector<std::string>> topics_of(std::string_view query);
  bool choose_protocol(const HandshakeRequest& request);
  void start_sse(const ParsedHttpRequest& r, std::string_view query, const HandshakeRequest& request);
  void start_poll(std::string_view query, const HandshakeRequest& request);
  void start_post(const ParsedHttpRequest& r, const HandshakeRequest& request);
  void subscribe_all(const std::vector<std::string>& topics, const StreamCursor& cursor);
  std::string batch_head(const MessageBatchFraming& framing, std::size_t* length);
  void open(Principal principal);

  // --- answers ---
  void respond(int status, std::string_view content_type, std::string_view body, std::string_view extra_headers = {});
  void refuse(int status, std::string_view code, std::string_view message, std::atomic<std::uint64_t>& counter,
              std::string_view extra_headers = {});
  std::string common_headers() const;

  // --- sessions ---
  void on_session_closed(CloseCode code, const std::string& reason);
  void end_session();
  void begin_sse_close(CloseCode code, std::string_view reason);
  bool take_poll_frames();  // true: answer now (size limit)
  void answer_poll();
  bool take_post_frames();  // true: the reply is in
  void answer_post();

  // --- writing ---
  void post_flush();
  void flush();
  void write_pass();
  void on_written(const std::error_code& ec);
  std::size_t add_scratch(std::string_view text);
  void add_sse_event(const FramePtr& frame, bool with_id);

  // --- ending ---
  void linger();
  void terminate();
  void arm_deadline(std::chrono::milliseconds after, void (HttpConnection::*action)());
  void arm_tick(std::chrono::milliseconds after, void (HttpConnection::*action)());
  void on_heartbeat();
  void on_coalesced();
  void on_close_deadline();

  std::shared_ptr<ShardServer> shard_;
  tcp::socket socket_;
  asio::steady_timer deadline_;  // request, poll, POST, close and linger time limits
  asio::steady_timer tick_;      // SSE heartbeats, poll coalescing
  std::uint64_t deadline_generation_ = 0;
  std::uint64_t tick_generation_ = 0;
  HttpRequestParser parser_;
  std::array<char, 2048> read_buffer_{};
  std::string input_;  // received, not yet parsed
  Mode mode_ = Mode::reading;
  bool reading_ = false;
  bool keep_alive_ = true;
  bool head_request_ = false;
  bool continue_sent_ = false;
  bool chunked_ = true;  // SSE body framing: chunked, or close-delimited for HTTP/1.0 clients
  std::string cors_;  // CORS headers for the request being served

  std::shared_ptr<Session> session_;
  std::size_t protocol_ = 0;
  CursorTracker tracker_;  // SSE and poll: where the client stands
  std::optional<std::int64_t> post_id_;
  std::vector<FramePtr> answer_frames_;  // the poll's or POST's messages
  std::size_t answer_bytes_ = 0;
  bool coalescing_ = false;

  // Writing: one write in flight; what comes meanwhile waits for the next pass.
  bool writing_ = false;
  bool flush_posted_ = false;
  std::string response_;    // a complete answer, or the SSE response head
  std::string sse_text_;    // event-stream text that goes before the next frames (retry, heartbeat)
  std::string sse_close_;   // the close event, sent after the last frames
  std::string answer_separator_;  // between a poll's or POST's messages
  std::string answer_suffix_;     // after them
  bool end_stream_ = false;  // the next pass ends the chunked body
  bool finish_after_write_ = false;
  std::string scratch_;
  std::vector<Piece> pieces_;
  std::vector<FramePtr> taken_;
  std::vector<asio::const_buffer> buffers_;
  std::size_t taken_bytes_ = 0;
};

class ShardServer : public std::enable_shared_from_this<ShardServer> {
 public:
  ShardServer(SessionHost& host, std::size_t index, std::shared_ptr<const HttpTransportSettings> settings,
              std::shared_ptr<Counters> counters)
      : host(host),
        index(index),
        settings(std::move(settings)),
        counters(std::move(counters)),
        context(host.shard_context(index)),
        acceptor_(context),
        retry_(context) {}

  void listen(const tcp::endpoint& where) {
    acceptor_.open(where.protocol());
    acceptor_.set_option(asio::socket_base::reuse_address(true));
    acceptor_.set_option(detail::ReusePort());
    acceptor_.bind(where);
    acceptor_.listen(settings->listen_backlog);
    accept();
  }

  std::uint16_t local_port() const { return acceptor_.local_endpoint().port(); }

  void stop() {
    if (stopped) return;
    stopped = true;
    std::error_code ignored;
    acceptor_.close(ignored);
    retry_.cancel();
    // Every listed connection is alive (it unlists itself when destroyed);
    // hold them while shut_down() may let go of their last handler.
    std::vector<std::shared_ptr<HttpConnection>> all;
    all.reserve(connections_.size());
    for (HttpConnection* c : connections_) all.push_back(c->shared_from_this());
    for (auto& c : all) c->shut_down();
  }

  void add(HttpConnection& c) {
    c.slot = static_cast<std::uint32_t>(connections_.size());
    connections_.push_back(&c);
  }

  void remove(HttpConnection& c) {
    if (c.slot == HttpConnection::no_slot) return;
    const std::uint32_t slot = c.slot;
    c.slot = HttpConnection::no_slot;
    if (slot + 1 != connections_.size()) {
      connections_[slot] = connections_.back();
      connections_[slot]->slot = slot;
    }
    connections_.pop_back();
  }

  SessionHost& host;
  const std::size_t index;
  const std::shared_ptr<const HttpTransportSettings> settings;
  const std::shared_ptr<Counters> counters;
  asio::io_context& context;
  bool stopped = false;

 private:
  void accept() {
    if (stopped) return;
    acceptor_.async_accept([weak = weak_from_this()](const std::error_code& ec, tcp::socket socket) {
      auto self = weak.lock();
      if (!self || self->stopped || ec == asio::error::operation_aborted) return;
      if (ec) {
        // Out of descriptors or similar: try again shortly instead of spinning.
        self->retry_.expires_after(std::chrono::milliseconds(100));
        self->retry_.async_wait([weak](const std::error_code& e) {
          if (auto s = weak.lock(); s && !e) s->accept();
        });
        return;
      }
      self->on_accept(std::move(socket));
      self->accept();
    });
  }

  void on_accept(tcp::socket socket) {
    std::error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    if (settings->socket_send_buffer_bytes > 0)
      socket.set_option(asio::socket_base::send_buffer_size(static_cast<int>(settings->socket_send_buffer_bytes)),
                        ignored);
    bump(counters->connections);
    const bool over = counters->connections_active.fetch_add(1, std::memory_order_relaxed) >= settings->max_connections;
    auto c = std::make_shared<HttpConnection>(shared_from_this(), std::move(socket));
    add(*c);
    c->start(over);
  }

  tcp::acceptor acceptor_;
  asio::steady_timer retry_;
  // Not owners: a connection lives as long as its pending handlers, so that
  // destroying the io_context with work pending frees everything.
  std::vector<HttpConnection*> connections_;
};

constexpr std::chrono::milliseconds close_timeout{2000};
// Per write: enough for a burst, small enough that the SendQueue, not the
// socket, holds the backlog and its slow-consumer policy can act.
constexpr std::size_t max_bytes_per_sse_write = 64 * 1024;

HttpConnection::HttpConnection(std::shared_ptr<ShardServer> shard, tcp::socket socket)
    : shard_(std::move(shard)),
      socket_(std::move(socket)),
      deadline_(shard_->context),
      tick_(shard_->context),
      parser_(detail::HttpRequestLimits{shard_->settings->max_request_line_bytes, shard_->settings->max_header_bytes,
                                        shard_->settings->max_header_fields, shard_->settings->max_body_bytes}),
      protocol_(0) {}

HttpConnection::~HttpConnection() {
  shard_->remove(*this);
  // Only when the io_context went away with handlers pending; otherwise
  // terminate() already counted the end.
  if (mode_ != Mode::closed) drop(counters().connections_active);
}

const HttpTransportSettings& HttpConnection::settings() const { return *shard_->settings; }
SessionHost& HttpConnection::host() { return shard_->host; }
Counters& HttpConnection::counters() { return *shard_->counters; }

void HttpConnection::start(bool over_capacity) {
  if (over_capacity) {
    keep_alive_ = false;
    refuse(503, "unavailable", "too many connections", counters().refused_too_many_connections);
    read_more();
    return;
  }
  enter_reading();
  read_more();
}

// --- reading ---

void HttpConnection::read_more() {
  if (reading_ || mode_ == Mode::closed) return;
  reading_ = true;
  socket_.async_read_some(asio::buffer(read_buffer_), [self = shared_from_this()](const std::error_code& ec,
                                                                                  std::size_t n) {
    self->reading_ = false;
    self->on_read(ec, n);
  });
}

void HttpConnection::on_read(const std::error_code& ec, std::size_t n) {
  if (mode_ == Mode::closed) return;
  if (ec) {
    // The client went away (or half-closed, which for these requests means
    // it will not read an answer either).
    terminate();
    return;
  }
  if (mode_ == Mode::lingering) {
    read_more();
    return;
  }
  input_.append(read_buffer_.data(), n);
  if (mode_ == Mode::reading) {
    process_input();
  } else {
    // Bytes while serving: a pipelined next request, kept for later, but
    // never more than one request could hold.
    const auto& s = settings();
    if (input_.size() > s.max_request_line_bytes + s.max_header_bytes + s.max_body_bytes) {
      terminate();
      return;
    }
  }
  if (mode_ != Mode::closed) read_more();
}

void HttpConnection::enter_reading() {
  mode_ = Mode::reading;
  parser_.reset();
  head_request_ = false;
  continue_sent_ = false;
  cors_.clear();
  arm_deadline(settings().request_timeout, &HttpConnection::on_request_timeout);
}

void HttpConnection::process_input() {
  while (mode_ == Mode::reading && !input_.empty()) {
    const std::size_t used = parser_.feed(input_);
    input_.erase(0, used);
    if (parser_.failed()) {
      keep_alive_ = false;
      const int status = parser_.error_status();
      auto& counter = status == 413 || status == 414 || status == 431 ? counters().refused_too_large
                                                                        : counters().refused_malformed;
      refuse(status, status == 413 || status == 414 || status == 431 ? "too_large" : "bad_request",
             parser_.error_reason(), counter);
      return;
    }
    if (!parser_.complete()) {
      if (parser_.state() == HttpRequestParser::State::body && !continue_sent_ &&
          parser_.request().header("expect") == "100-continue")
        send_continue();
      return;
    }
    handle_request();
  }
}

// Clients such as curl hold a body back until told to send it.
void HttpConnection::send_continue() {
  static constexpr std::string_view line = "HTTP/1.1 100 Continue\r\n\r\n";
  continue_sent_ = true;
  writing_ = true;
  asio::async_write(socket_, asio::buffer(line.data(), line.size()),
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
  if (mode_ != Mode::reading) return;
  if (!parser_.started()) {
    // An idle kept-alive connection: close quietly.
    linger();
    return;
  }
  keep_alive_ = false;
  refuse(408, "timeout", "request not received in time", counters().refused_timeout);
}

// --- requests ---

HandshakeRequest HttpConnection::describe(const ParsedHttpRequest& r, std::string_view path, std::string_view query,
                                          const char* transport) const {
  HandshakeRequest h;
  h.transport = transport;
  h.path = std::string(path);
  detail::parse_query(query, h.query);
  h.headers = r.headers;
  detail::parse_cookies(r.header("cookie"), h.cookies);
  std::error_code ec;
  auto remote = socket_.remote_endpoint(ec);
  if (!ec) h.remote_address = remote.address().to_string();
  return h;
}

void HttpConnection::handle_request() {
  deadline_.cancel();
  ++deadline_generation_;
  bump(counters().requests);
  const ParsedHttpRequest& r = parser_.request();
  keep_alive_ = r.keep_alive;
  head_request_ = r.method == "HEAD";

  const std::string_view target = detail::origin_form(r.target);
  if (target.empty() || (target.front() != '/' && !(r.method == "OPTIONS" && target == "*"))) {
    keep_alive_ = false;
    refuse(400, "bad_request", "malformed request target", counters().refused_malformed);
    return;
  }
  const std::size_t q = target.find('?');
  const std::string_view path = target.substr(0, q);
  const std::string_view query = q == std::string_view::npos ? std::string_view() : target.substr(q + 1);

  const std::string& origin = r.header("origin");
  if (!detail::origin_allowed(settings().allowed_origins, origin)) {
    refuse(403, "forbidden", "origin not allowed", counters().refused_origin);
    return;
  }
  if (!origin.empty()) {
    cors_ = "Access-Control-Allow-Origin: " + origin + "\r\nVary: Origin\r\n";
    // Credentials (cookies) only for origins the operator listed: with an
    // empty list any site could otherwise read answers meant for the user.
    if (!settings().allowed_origins.empty()) cors_ += "Access-Control-Allow-Credentials: true\r\n";
  }
  if (shard_->stopped || !host().accepting()) {
    keep_alive_ = false;
    refuse(503, "unavailable", "server shutting down", counters().refused_shutting_down);
    return;
  }

  const bool is_sse = path == settings().sse_path;
  const bool is_poll = path == settings().poll_path;
  if (is_sse || is_poll) {
    const char* allow = is_sse ? "Allow: GET, OPTIONS\r\n" : "Allow: GET, POST, OPTIONS\r\n";
    if (r.method == "OPTIONS") {
      bump(counters().preflights);
      std::string headers = allow;
      headers += "Access-Control-Allow-Methods: ";
      headers += is_sse ? "GET" : "GET, POST";
      headers += "\r\nAccess-Control-Allow-Headers: Content-Type, Authorization, Last-Event-ID\r\n"
                 "Access-Control-Max-Age: 600\r\n";
      respond(204, {}, {}, headers);
      return;
    }
    if (r.method == "GET" && is_sse) {
      start_sse(r, query, describe(r, path, query, "sse"));
    } else if (r.method == "GET") {
      start_poll(query, describe(r, path, query, "long-poll"));
    } else if (r.method == "POST" && is_poll) {
      start_post(r, describe(r, path, query, "long-poll"));
    } else {
      refuse(405, "method_not_allowed", "method not allowed here", counters().refused_method, allow);
    }
    return;
  }

  if (r.method != "GET" && r.method != "HEAD") {
    refuse(405, "method_not_allowed", "method not allowed here", counters().refused_method, "Allow: GET, HEAD\r\n");
    return;
  }
  HttpResponse response = host().serve_http(settings().http_handler, describe(r, path, query, "http"));
  if (settings().http_handler)
    bump(counters().handler_requests);
  else
    bump(counters().refused_not_found);
  std::string extra;
  for (const auto& [name, value] : response.headers) {
    // A handler's header with a line break would split the response.
    if (name.find_first_of("\r\n") != std::string::npos || value.find_first_of("\r\n") != std::string::npos) continue;
    extra += name + ": " + value + "\r\n";
  }
  respond(response.status, response.content_type, response.body, extra);
}

std::optional<Principal> HttpConnection::authenticate(const HandshakeRequest& request) {
  std::optional<AuthResult> verdict = host().authenticate(request);
  if (!verdict) {
    // A server fault, not a verdict on the token: the client may retry.
    refuse(500, "internal_error", "authentication failed", counters().refused_unauthorized);
    return std::nullopt;
  }
  if (verdict->accepted()) return std::move(verdict->principal);
  host().count_error(Errc::unauthorized);
  refuse(401, "unauthorized", verdict->reason.empty() ? "unauthorized" : verdict->reason,
         counters().refused_unauthorized);
  return std::nullopt;
}

std::optional<std::vector<std::string>> HttpConnection::topics_of(std::string_view query) {
  auto raw = detail::raw_query_parameter(query, "topics");
  std::optional<std::vector<std::string>> topics;
  if (raw) topics = detail::parse_topic_list(*raw);
  if (!topics) refuse(400, "bad_request", "missing or malformed \"topics\"", counters().refused_bad_parameters);
  return topics;
}

void HttpConnection::open(Principal principal) {
  session_ = host().open_session(shard_->index, std::move(principal), protocol_, *this);
}

// The URL's topics in order, as if the client had sent subscribe requests
// with ids 1..N (and its cursor's positions to recover from). They are one
// client request, so they go to the broker as requests, past the session's
// message rate limit, and in no protocol's text.
void HttpConnection::subscribe_all(const std::vector<std::string>& topics, const StreamCursor& cursor) {
  tracker_ = CursorTracker(cursor, topics);
  for (std::size_t i = 0; i < topics.size() && session_ && !session_->closing(); ++i) {
    ClientRequest request;
    request.op = ClientRequest::Op::subscribe;
    request.id = static_cast<std::int64_t>(i + 1);
    request.topic = topics[i];
    for (const auto& [topic, position] : cursor)
      if (topic == topics[i]) request.recover = position;
    host().execute(*session_, std::move(request));
  }
}

// `protocol=<name>` picks one of the broker's protocols; none: its default.
bool HttpConnection::choose_protocol(const HandshakeRequest& request) {
  std::optional<std::size_t> found = host().find_protocol(request.query_param("protocol"));
  if (!found) {
    refuse(400, "bad_request", "unknown \"protocol\"", counters().refused_bad_parameters);
    return false;
  }
  protocol_ = *found;
  return true;
}

void HttpConnection::start_sse(const ParsedHttpRequest& r, std::string_view query, const HandshakeRequest& request) {
  auto topics = topics_of(query);
  if (!topics) return;
  // EventSource's own reconnect sends the id of the last event it saw.
  const std::string& last_event_id = r.header("last-event-id");
  auto cursor = detail::parse_cursor(r.headers.count("last-event-id") ? last_event_id : request.query_param("cursor"));
  if (!cursor) {
    refuse(400, "bad_request", "malformed cursor", counters().refused_bad_parameters);
    return;
  }
  if (!choose_protocol(request)) return;
  auto principal = authenticate(request);
  if (!principal) return;
  mode_ = Mode::sse;
  keep_alive_ = false;  // the stream ends the connection
  bump(counters().sse_streams);
  bump(counters().sse_active);
  // Chunked rather than close-delimited: proxies then know the response is
  // complete when the stream ends on purpose, and can tell it from a cut.
  chunked_ = r.version_minor >= 1;
  response_ = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n"
              "Cache-Control: no-cache, no-transform\r\nX-Accel-Buffering: no\r\n";
  response_ += chunked_ ? "Transfer-Encoding: chunked\r\n" : "Connection: close\r\n";
  response_ += cors_;
  response_ += "\r\n";
  sse_text_ = "retry: 2000\n\n";
  open(std::move(*principal));
  subscribe_all(*topics, *cursor);
  if (settings().sse_heartbeat.count() > 0) arm_tick(settings().sse_heartbeat, &HttpConnection::on_heartbeat);
  flush();
}

void HttpConnection::start_poll(std::string_view query, const HandshakeRequest& request) {
  auto topics = topics_of(query);
  if (!topics) return;
  auto cursor = detail::parse_cursor(request.query_param("cursor"));
  if (!cursor) {
    refuse(400, "bad_request", "malformed cursor", counters().refused_bad_parameters);
    return;
  }
  std::chrono::milliseconds timeout = settings().poll_timeout;
  if (request.query.count("timeout")) {
    const std::string& text = request.query_param("timeout");
    std::uint64_t ms = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), ms);
    if (text.empty() || ec != std::errc() || end != text.data() + text.size()) {
      refuse(400, "bad_request", "malformed \"timeout\"", counters().refused_bad_parameters);
      return;
    }
    const auto most = static_cast<std::uint64_t>(settings().max_poll_timeout.count());
    timeout = std::chrono::milliseconds(static_cast<std::int64_t>(std::min(ms, most)));
  }
  if (!choose_protocol(request)) return;
  auto principal = authenticate(request);
  if (!principal) return;
  mode_ = Mode::poll;
  answer_frames_.clear();
  answer_bytes_ = 0;
  coalescing_ = false;
  open(std::move(*principal));
  subscribe_all(*topics, *cursor);
  if (mode_ != Mode::poll) return;  // answered already (the session closed)
  arm_deadline(timeout, &HttpConnection::answer_poll);
  post_flush();
}

void HttpConnection::start_post(const ParsedHttpRequest& r, const HandshakeRequest& request) {
  if (!choose_protocol(request)) return;
  auto principal = authenticate(request);
  if (!principal) return;
  const Protocol& protocol = host().protocol(protocol_);
  DecodeResult decoded = protocol.decode(r.body);
  if (decoded.request && (decoded.request->op == ClientRequest::Op::subscribe ||
                          decoded.request->op == ClientRequest::Op::unsubscribe)) {
    bump(counters().refused_bad_parameters);
    host().count_error(Errc::bad_request);
    const MessageBatchFraming framing = protocol.batch_framing(std::nullopt);
    FramePtr error = protocol.encode_error(decoded.id, Errc::bad_request,
                                           "subscribe and unsubscribe go through GET /poll or /sse");
    respond(200, framing.content_type, framing.head + error->bytes + framing.tail, "Cache-Control: no-store\r\n");
    return;
  }
  mode_ = Mode::post;
  post_id_ = decoded.id;
  answer_frames_.clear();
  answer_bytes_ = 0;
  open(std::move(*principal));
  host().handle_message(*session_, r.body);
  if (mode_ != Mode::post) return;
  if (post_id_) {
    arm_deadline(settings().request_timeout, &HttpConnection::answer_post);
    post_flush();
  } else {
    // No reply will name this request: answer with what it caused at once
    // (errors are queued synchronously).
    asio::post(shard_->context, [self = shared_from_this()] {
      if (self->mode_ == Mode::post) self->answer_post();
    });
  }
}

// --- answers ---

std::string HttpConnection::common_headers() const {
  std::string h = cors_;
  if (!keep_alive_)
    h += "Connection: close\r\n";
  else if (parser_.request().version_minor == 0)
    h += "Connection: keep-alive\r\n";
  return h;
}

void HttpConnection::respond(int status, std::string_view content_type, std::string_view body,
                             std::string_view extra_headers) {
  mode_ = Mode::responding;
  response_ = "HTTP/1.1 " + std::to_string(status) + " " + reason_phrase(status) + "\r\n";
  if (!content_type.empty()) {
    response_ += "Content-Type: ";
    response_ += content_type;
    response_ += "\r\n";
  }
  if (status != 204) response_ += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  response_ += extra_headers;
  response_ += common_headers();
  response_ += "\r\n";
  if (!head_request_ && status != 204) response_ += body;
  finish_after_write_ = true;
  flush();
}

void HttpConnection::refuse(int status, std::string_view code, std::string_view message,
                            std::atomic<std::uint64_t>& counter, std::string_view extra_headers) {
  bump(counter);
  std::string headers(extra_headers);
  headers += "Cache-Control: no-store\r\n";
  respond(status, "application/json", json_error_body(code, message), headers);
}

// --- sessions ---

void HttpConnection::frames_ready() {
  // Called from inside broker code: write on a later turn.
  post_flush();
}

void HttpConnection::close(CloseCode code, std::string_view reason) {
  // Called from inside broker code, which must not be re-entered.
  asio::post(shard_->context, [self = shared_from_this(), code, reason = std::string(reason)] {
    self->on_session_closed(code, reason);
  });
}

void HttpConnection::on_session_closed(CloseCode code, const std::string& reason) {
  if (!session_) return;
  switch (mode_) {
    case Mode::sse: begin_sse_close(code, reason); break;
    case Mode::poll: answer_poll(); break;
    case Mode::post: answer_post(); break;
    default: end_session(); break;
  }
}

void HttpConnection::end_session() {
  if (!session_) return;
  host().close_session(*session_);
  session_.reset();
  if (mode_ == Mode::sse) drop(counters().sse_active);
}

void HttpConnection::begin_sse_close(CloseCode code, std::string_view reason) {
  if (end_stream_) return;
  end_session();
  std::string data = "{\"code\":" + std::to_string(static_cast<int>(code)) + ",\"reason\":";
  append_json_string(data, reason);
  data += "}";
  sse_close_ = "event: close\ndata: " + data + "\n\n";
  end_stream_ = true;
  ++tick_generation_;
  tick_.cancel();
  // A client that stopped reading never lets the close event out.
  arm_deadline(close_timeout, &HttpConnection::on_close_deadline);
  flush();
}

void HttpConnection::on_close_deadline() { terminate(); }

bool HttpConnection::take_poll_frames() {
  if (!session_) return false;
  bool news = false;
  const std::size_t budget = settings().max_poll_response_bytes;
  // What does not fit stays queued, under the session's policy, until the
  // answer; the next poll continues from the cursor.
  while (answer_bytes_ < budget && host().has_frames(*session_)) {
    taken_.clear();
    host().take_frames(*session_, taken_, budget - answer_bytes_);
    for (FramePtr& frame : taken_) {
      host().frames_written(*session_, frame->bytes.size());
      const CursorTracker::PollVerdict verdict = tracker_.on_poll_frame(*frame);
      if (verdict == CursorTracker::PollVerdict::skip) continue;
      if (verdict == CursorTracker::PollVerdict::news) news = true;
      answer_bytes_ += frame->bytes.size() + 1;
      answer_frames_.push_back(std::move(frame));
    }
  }
  taken_.clear();
  if (answer_bytes_ >= budget) return true;
  if (news && !coalescing_) {
    coalescing_ = true;
    arm_tick(settings().poll_coalescing, &HttpConnection::on_coalesced);
  }
  return false;
}

void HttpConnection::on_coalesced() {
  if (mode_ == Mode::poll) answer_poll();
}

void HttpConnection::answer_poll() {
  if (mode_ != Mode::poll) return;
  take_poll_frames();
  end_session();
  ++tick_generation_;
  tick_.cancel();
  bump(counters().polls);
  const MessageBatchFraming framing = host().protocol(protocol_).batch_framing(tracker_.cursor());
  std::size_t length = 0;
  std::string head = batch_head(framing, &length);
  mode_ = Mode::responding;
  response_ = std::move(head);
  finish_after_write_ = true;
  flush();
}

// The response head and the batch's head; `length` gets the body's length
// with answer_frames_ between head and tail. Sets the separator and tail.
std::string HttpConnection::batch_head(const MessageBatchFraming& framing, std::size_t* length) {
  *length = framing.head.size() + framing.tail.size();
  for (std::size_t i = 0; i < answer_frames_.size(); ++i)
    *length += answer_frames_[i]->bytes.size() + (i ? framing.separator.size() : 0);
  answer_separator_ = framing.separator;
  answer_suffix_ = framing.tail;
  return "HTTP/1.1 200 OK\r\nContent-Type: " + framing.content_type +
         "\r\nCache-Control: no-store\r\nContent-Length: " + std::to_string(*length) + "\r\n" + common_headers() +
         "\r\n" + framing.head;
}

bool HttpConnection::take_post_frames() {
  if (!session_) return false;
  taken_.clear();
  host().take_frames(*session_, taken_);
  bool answered = false;
  for (FramePtr& frame : taken_) {
    host().frames_written(*session_, frame->bytes.size());
    // Server-side joins also speak on this transient session; only what
    // answers the request (or names no request, like rate_limited) is kept.
    if (frame->is_publication() || frame->starts_subscription()) continue;
    if (frame->request_id && post_id_ && *frame->request_id == *post_id_) answered = true;
    const bool unaddressed_error = frame->kind == Frame::Kind::error && !frame->request_id;
    if (frame->request_id != post_id_ && !unaddressed_error) continue;
    answer_frames_.push_back(std::move(frame));
  }
  taken_.clear();
  return answered;
}

void HttpConnection::answer_post() {
  if (mode_ != Mode::post) return;
  take_post_frames();
  mode_ = Mode::responding;
  end_session();
  bump(counters().posts);
  std::size_t length = 0;
  response_ = batch_head(host().protocol(protocol_).batch_framing(std::nullopt), &length);
  finish_after_write_ = true;
  flush();
}

// --- writing ---

void HttpConnection::post_flush() {
  if (flush_posted_) return;
  flush_posted_ = true;
  asio::post(shard_->context, [self = shared_from_this()] {
    self->flush_posted_ = false;
    self->flush();
  });
}

std::size_t HttpConnection::add_scratch(std::string_view text) {
  pieces_.push_back(Piece{nullptr, scratch_.size(), text.size()});
  scratch_.append(text);
  return text.size();
}

// One event: `id:` when it moves a position, then the JSON on `data:`
// lines. livecast.v1 frames are single-line JSON; a publication's data may
// hold raw line breaks (JSON whitespace), each of which starts a new line.
void HttpConnection::add_sse_event(const FramePtr& frame, bool with_id) {
  if (with_id) {
    add_scratch("id: ");
    add_scratch(tracker_.cursor());
    add_scratch("\n");
  }
  const std::string& text = frame->bytes;
  std::size_t start = 0;
  while (true) {
    std::size_t end = text.find_first_of("\r\n", start);
    add_scratch("data: ");
    const std::size_t stop = end == std::string::npos ? text.size() : end;
    if (stop > start) pieces_.push_back(Piece{&text, start, stop - start});
    add_scratch("\n");
    if (end == std::string::npos) break;
    start = end + 1;
    if (text[end] == '\r' && start < text.size() && text[start] == '\n') ++start;
  }
  add_scratch("\n");
}

void HttpConnection::flush() {
  if (writing_ || mode_ == Mode::closed || mode_ == Mode::lingering) return;
  switch (mode_) {
    case Mode::poll:
      if (take_poll_frames()) answer_poll();
      return;
    case Mode::post:
      if (take_post_frames()) answer_post();
      return;
    case Mode::reading: return;
    default: break;
  }
  write_pass();
}

void HttpConnection::write_pass() {
  scratch_.clear();
  pieces_.clear();
  taken_bytes_ = 0;
  if (mode_ == Mode::responding) {
    if (response_.empty()) return;
    add_scratch(response_);
    response_.clear();
    // A poll's or POST's messages follow the head unjoined, comma-separated.
    for (std::size_t i = 0; i < answer_frames_.size(); ++i) {
      if (i) add_scratch(answer_separator_);
      pieces_.push_back(Piece{&answer_frames_[i]->bytes, 0, answer_frames_[i]->bytes.size()});
    }
    if (!answer_suffix_.empty()) {
      add_scratch(answer_suffix_);
      answer_suffix_.clear();
    }
    taken_ = std::move(answer_frames_);
    answer_frames_.clear();
  } else if (mode_ == Mode::sse) {
    if (!response_.empty()) {
      add_scratch(response_);
      response_.clear();
    }
    const std::size_t chunk_header = pieces_.size();
    pieces_.push_back(Piece{nullptr, 0, 0});
    std::size_t body = 0;
    const std::size_t body_start = pieces_.size();
    if (!sse_text_.empty()) {
      add_scratch(sse_text_);
      sse_text_.clear();
    }
    if (session_ && !session_->closing()) {
      // One frame at a time: with many topics the id lines can outweigh
      // small frames, and the pass is bounded by what it writes.
      while (host().has_frames(*session_) && scratch_.size() + taken_bytes_ < max_bytes_per_sse_write) {
        host().take_frames(*session_, taken_, 0);
        const FramePtr& frame = taken_.back();
        taken_bytes_ += frame->bytes.size();
        const bool with_id = tracker_.on_stream_frame(*frame);
        add_sse_event(frame, with_id);
      }
    }
    if (!sse_close_.empty()) {
      add_scratch(sse_close_);
      sse_close_.clear();
    }
    for (std::size_t i = body_start; i < pieces_.size(); ++i) body += pieces_[i].length;
    if (body > 0 && chunked_) {
      char hex[20];
      auto r = std::to_chars(hex, hex + sizeof hex, body, 16);
      std::string line(hex, r.ptr);
      line += "\r\n";
      pieces_[chunk_header] = Piece{nullptr, scratch_.size(), line.size()};
      scratch_ += line;
      add_scratch("\r\n");
    }
    if (end_stream_) {
      if (chunked_) add_scratch("0\r\n\r\n");
      finish_after_write_ = true;
      keep_alive_ = false;
    }
  } else {
    return;
  }
  buffers_.clear();
  std::size_t total = 0;
  for (const Piece& p : pieces_) {
    if (p.length == 0) continue;
    const char* base = p.source ? p.source->data() : scratch_.data();
    buffers_.push_back(asio::buffer(base + p.offset, p.length));
    total += p.length;
  }
  if (total == 0) {
    taken_.clear();
    return;
  }
  writing_ = true;
  asio::async_write(socket_, buffers_, [self = shared_from_this()](const std::error_code& ec, std::size_t) {
    self->on_written(ec);
  });
}

void HttpConnection::on_written(const std::error_code& ec) {
  writing_ = false;
  taken_.clear();
  if (session_) host().frames_written(*session_, taken_bytes_);
  taken_bytes_ = 0;
  if (mode_ == Mode::closed) return;
  if (ec) {
    terminate();
    return;
  }
  if (mode_ == Mode::responding && finish_after_write_) {
    finish_after_write_ = false;
    if (keep_alive_ && !shard_->stopped) {
      enter_reading();
      process_input();
    } else {
      linger();
    }
    return;
  }
  if (mode_ == Mode::sse) {
    if (finish_after_write_) {
      linger();
      return;
    }
    if (!sse_text_.empty() || !sse_close_.empty() || (session_ && host().has_frames(*session_))) write_pass();
  }
}

// --- timers ---

void HttpConnection::arm_deadline(std::chrono::milliseconds after, void (HttpConnection::*action)()) {
  const std::uint64_t generation = ++deadline_generation_;
  deadline_.expires_after(after);
  deadline_.async_wait([self = shared_from_this(), generation, action](const std::error_code& ec) {
    if (ec || generation != self->deadline_generation_ || self->mode_ == Mode::closed) return;
    ((*self).*action)();
  });
}

void HttpConnection::arm_tick(std::chrono::milliseconds after, void (HttpConnection::*action)()) {
  const std::uint64_t generation = ++tick_generation_;
  tick_.expires_after(after);
  tick_.async_wait([self = shared_from_this(), generation, action](const std::error_code& ec) {
    if (ec || generation != self->tick_generation_ || self->mode_ == Mode::closed) return;
    ((*self).*action)();
  });
}

void HttpConnection::on_heartbeat() {
  if (mode_ != Mode::sse || end_stream_) return;
  // A write still in flight shows the stream is not quiet; do not pile up
  // comments behind a client that does not read.
  if (!writing_ && sse_text_.empty()) {
    sse_text_ = ": hb\n\n";
    flush();
  }
  arm_tick(settings().sse_heartbeat, &HttpConnection::on_heartbeat);
}

// --- ending ---

void HttpConnection::shut_down() {
  keep_alive_ = false;
  switch (mode_) {
    case Mode::sse: begin_sse_close(CloseCode::going_away, "server shutting down"); break;
    case Mode::poll: answer_poll(); break;
    case Mode::post: answer_post(); break;
    case Mode::reading: terminate(); return;
    default: break;
  }
  end_session();
  if (mode_ != Mode::closed) arm_deadline(close_timeout, &HttpConnection::on_close_deadline);
}

// Shuts our side and reads until the client closes, so that a client still
// sending (an oversized body) sees our answer instead of a reset.
void HttpConnection::linger() {
  if (mode_ == Mode::closed) return;
  end_session();
  mode_ = Mode::lingering;
  input_.clear();
  input_.shrink_to_fit();
  std::error_code ignored;
  socket_.shutdown(tcp::socket::shutdown_send, ignored);
  arm_deadline(close_timeout, &HttpConnection::on_close_deadline);
  read_more();
}

void HttpConnection::terminate() {
  if (mode_ == Mode::closed) return;
  end_session();
  mode_ = Mode::closed;
  ++deadline_generation_;
  ++tick_generation_;
  deadline_.cancel();
  tick_.cancel();
  std::error_code ignored;
  socket_.close(ignored);
  drop(counters().connections_active);
}

}  // namespace

struct HttpTransport::Impl {
  Impl(Broker& b, HttpTransportSettings s)
      : host(b.session_host()), settings(std::make_shared<const HttpTransportSettings>(std::move(s))) {}

  SessionHost& host;
  std::shared_ptr<const HttpTransportSettings> settings;
  std::shared_ptr<Counters> counters = std::make_shared<Counters>();
  mutable std::mutex mutex;                          // guards shards
  std::vector<std::shared_ptr<ShardServer>> shards;  // index = broker shard; empty when stopped
  std::atomic<std::uint16_t> port{0};
};

HttpTransport::HttpTransport(Broker& broker, HttpTransportSettings settings)
    : impl_(std::make_unique<Impl>(broker, std::move(settings))) {}

HttpTransport::~HttpTransport() { stop(); }

void HttpTransport::start() {
  Impl& d = *impl_;
  std::lock_guard<std::mutex> lock(d.mutex);
  if (!d.shards.empty()) return;
  const asio::ip::address address = asio::ip::make_address(d.settings->address);
  std::uint16_t port = d.settings->port;
  auto started = detail::listen_on_every_shard<ShardServer>(d.host, address, port, [&](std::size_t shard) {
    return std::make_shared<ShardServer>(d.host, shard, d.settings, d.counters);
  });
  d.shards = std::move(started);
  d.port.store(port);
}

void HttpTransport::stop() {
  Impl& d = *impl_;
  std::vector<std::shared_ptr<ShardServer>> shards;
  {
    std::lock_guard<std::mutex> lock(d.mutex);
    shards.swap(d.shards);
  }
  detail::stop_every_shard(d.host, shards);
}

std::uint16_t HttpTransport::port() const noexcept { return impl_->port.load(); }

HttpTransportMetrics HttpTransport::metrics() const {
  const Counters& c = *impl_->counters;
  auto get = [](const std::atomic<std::uint64_t>& a) { return a.load(std::memory_order_relaxed); };
  HttpTransportMetrics m;
  m.connections = get(c.connections);
  m.connections_active = get(c.connections_active);
  m.requests = get(c.requests);
  m.sse_streams = get(c.sse_streams);
  m.sse_active = get(c.sse_active);
  m.polls = get(c.polls);
  m.posts = get(c.posts);
  m.preflights = get(c.preflights);
  m.handler_requests = get(c.handler_requests);
  m.refused_malformed = get(c.refused_malformed);
  m.refused_bad_parameters = get(c.refused_bad_parameters);
  m.refused_too_large = get(c.refused_too_large);
  m.refused_method = get(c.refused_method);
  m.refused_unauthorized = get(c.refused_unauthorized);
  m.refused_origin = get(c.refused_origin);
  m.refused_not_found = get(c.refused_not_found);
  m.refused_timeout = get(c.refused_timeout);
  m.refused_too_many_connections = get(c.refused_too_many_connections);
  m.refused_shutting_down = get(c.refused_shutting_down);
  return m;
}

LIVECAST_END_NAMESPACE
