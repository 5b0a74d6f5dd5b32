// The WebSocket transport on websocketpp: one endpoint per broker shard, all
// listening on one port with SO_REUSEPORT so the kernel spreads connections
// over the shards. Everything a shard's endpoint and connections do runs on
// that shard's thread, so websocketpp is built without locks or strands.
#include <livecast/websocket_transport.hpp>

#include <websocketpp/common/network.hpp>
#include <websocketpp/concurrency/none.hpp>
#include <websocketpp/config/asio_no_tls.hpp>
#include <websocketpp/logger/stub.hpp>
#include <websocketpp/server.hpp>
#include <websocketpp/utf8_validator.hpp>

#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>

#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <exception>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <utility>
#include <vector>

LIVECAST_BEGIN_NAMESPACE

namespace {

class ShardServer;

// What the handshake decided, kept until the connection opens.
struct PendingOpen {
  std::optional<Principal> principal;  // empty: the Authenticator refused
  std::string refusal;
};

// Our part of every connection, stored inside websocketpp's connection object
// (its user-supplied base class) so that a connection costs no allocation
// beyond websocketpp's own. Small on purpose: idle connections are the norm.
class ConnectionState : public SessionConnection {
 public:
  static constexpr std::uint32_t no_slot = std::numeric_limits<std::uint32_t>::max();

  void frames_ready() override;
  void close(CloseCode code, std::string_view reason) override;

  // Keeps the shard (and its endpoint) alive while this connection exists,
  // so that websocketpp handlers firing after stop() find it.
  std::shared_ptr<ShardServer> shard;
  std::shared_ptr<Session> session;       // from on_open until the close is reported
  std::unique_ptr<PendingOpen> pending;   // from the handshake until on_open
  std::chrono::steady_clock::time_point last_activity{};  // or, once closing, when the close began
  std::uint32_t slot = no_slot;           // index in ShardServer::connections_
  std::uint32_t protocol = 0;
  bool flush_scheduled = false;           // in the shard's dirty or backed-up list
  bool counted = false;                   // counted in ShardServer::open_
};

// websocketpp tuned for one thread per endpoint and little memory per
// connection: no locks, no strands, logging compiled out, a small read buffer,
// no extensions (permessage-deflate stays off: frames are shared, never
// compressed per connection). Handshake timeouts and size limits are set on
// the endpoint from the settings at run time.
// Note: websocketpp 0.8.2's headers are not valid C++20 (template-ids on
// constructors and destructors), so this file is compiled as C++17.
struct ServerConfig : websocketpp::config::asio {
  using type = ServerConfig;
  using base = websocketpp::config::asio;

  using concurrency_type = websocketpp::concurrency::none;
  using alog_type = websocketpp::log::stub;
  using elog_type = websocketpp::log::stub;
  using connection_base = ConnectionState;

  struct transport_config : base::transport_config {
    using concurrency_type = type::concurrency_type;
    using alog_type = type::alog_type;
    using elog_type = type::elog_type;
    using request_type = type::request_type;
    using response_type = type::response_type;
    using socket_type = websocketpp::transport::asio::basic_socket::endpoint;
    static const bool enable_multithreading = false;
  };
  using transport_type = websocketpp::transport::asio::endpoint<transport_config>;

  static const bool enable_multithreading = false;
  static const bool enable_extensions = false;
  static const websocketpp::log::level elog_level = websocketpp::log::elevel::none;
  static const websocketpp::log::level alog_level = websocketpp::log::alevel::none;
  static const std::size_t connection_read_buffer_size = 2048;
};

using Server = websocketpp::server<ServerConfig>;
using Connection = Server::connection_type;
using ConnectionPtr = Server::connection_ptr;
using MessagePtr = ServerConfig::message_type::ptr;
using MessageManager = ServerConfig::con_msg_manager_type;

Connection& connection_of(ConnectionState& state) { return static_cast<Connection&>(state); }

// --- handshake request decoding ---

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string percent_decode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '%' && i + 2 < s.size()) {
      int hi = hex_value(s[i + 1]), lo = hex_value(s[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        continue;
      }
    }
    out.push_back(plus_is_space && c == '+' ? ' ' : c);
  }
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Splits `text` on `separator` into name=value pairs; the first of a name wins.
void parse_pairs(std::string_view text, char separator, bool plus_is_space, bool strip_quotes,
                 std::map<std::string, std::string>& out) {
  while (!text.empty()) {
    std::size_t end = text.find(separator);
    std::string_view item = trim(text.substr(0, end));
    text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
    if (item.empty()) continue;
    std::size_t eq = item.find('=');
    std::string_view name = trim(item.substr(0, eq));
    std::string_view value = eq == std::string_view::npos ? std::string_view() : trim(item.substr(eq + 1));
    if (strip_quotes && value.size() >= 2 && value.front() == '"' && value.back() == '"')
      value = value.substr(1, value.size() - 2);
    out.emplace(percent_decode(name, plus_is_space), percent_decode(value, plus_is_space));
  }
}

HandshakeRequest describe(Connection& con, const char* transport) {
  HandshakeRequest r;
  r.transport = transport;
  std::string_view target = con.get_request().get_uri();
  // An absolute-form target (proxies): drop scheme and authority.
  if (auto scheme = target.find("://"); scheme != std::string_view::npos && scheme < target.find('/')) {
    auto path_start = target.find('/', scheme + 3);
    target = path_start == std::string_view::npos ? std::string_view("/") : target.substr(path_start);
  }
  std::size_t q = target.find('?');
  r.path = std::string(target.substr(0, q));
  if (q != std::string_view::npos) parse_pairs(target.substr(q + 1), '&', true, false, r.query);
  for (const auto& [name, value] : con.get_request().get_headers()) {
    std::string lower = name;
    for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    r.headers.emplace(std::move(lower), value);
  }
  parse_pairs(r.header("cookie"), ';', false, true, r.cookies);
  std::error_code ec;
  auto remote = con.get_raw_socket().remote_endpoint(ec);
  if (!ec) r.remote_address = remote.address().to_string();
  return r;
}

// SO_REUSEPORT as an Asio socket option, so every shard can bind the port.
class ReusePort {
 public:
  template <class Protocol>
  int level(const Protocol&) const noexcept { return SOL_SOCKET; }
  template <class Protocol>
  int name(const Protocol&) const noexcept { return SO_REUSEPORT; }
  template <class Protocol>
  const void* data(const Protocol&) const noexcept { return &value_; }
  template <class Protocol>
  std::size_t size(const Protocol&) const noexcept { return sizeof value_; }

 private:
  int value_ = 1;
};

// One shard's endpoint, listening socket and connections. Every member runs on
// the shard's thread (construction and stop() included: the transport uses
// Broker::execute_on_shard).
class ShardServer : public std::enable_shared_from_this<ShardServer> {
 public:
  ShardServer(Broker& broker, std::size_t index, std::shared_ptr<const WebSocketSettings> settings)
      : broker_(broker),
        index_(index),
        settings_(std::move(settings)),
        context_(broker.shard_context(index)),
        acceptor_(context_),
        heartbeat_(context_),
        retry_(context_),
        messages_(std::make_shared<MessageManager>()) {
    const SessionSettings& session = broker_.settings().session;
    // Frames handed to websocketpp count against the session's byte budget;
    // keep half of it for the SendQueue so its slow-consumer policy can act.
    high_water_ = std::min<std::size_t>(64 * 1024, std::max<std::size_t>(session.send_queue_bytes / 2, 1));
    endpoint_.init_asio(&context_);
    endpoint_.set_open_handshake_timeout(static_cast<long>(settings_->handshake_timeout_ms));
    endpoint_.set_close_handshake_timeout(static_cast<long>(close_timeout.count()));
    endpoint_.set_max_message_size(session.max_message_bytes);
    endpoint_.set_max_http_body_size(64 * 1024);
  }

  ShardServer(const ShardServer&) = delete;
  ShardServer& operator=(const ShardServer&) = delete;

  asio::io_context& context() noexcept { return context_; }
  std::size_t open_connections() const noexcept { return open_.load(std::memory_order_relaxed); }

  // Binds and starts accepting. Throws std::system_error.
  void listen(const asio::ip::tcp::endpoint& where) {
    acceptor_.open(where.protocol());
    acceptor_.set_option(asio::socket_base::reuse_address(true));
    acceptor_.set_option(ReusePort());
    acceptor_.bind(where);
    acceptor_.listen(settings_->listen_backlog);
    accept();
    arm_heartbeat();
  }

  std::uint16_t local_port() const { return acceptor_.local_endpoint().port(); }

  // Stops accepting, reports every session closed and closes every connection
  // with going_away. Afterwards nothing here calls the broker.
  void stop() {
    if (stopped_) return;
    stopped_ = true;
    std::error_code ignored;
    acceptor_.close(ignored);
    heartbeat_.cancel();
    retry_.cancel();
    dirty_.clear();
    backed_up_.clear();
    prepared_.clear();
    std::vector<ConnectionPtr> all;
    all.swap(connections_);
    for (auto& con : all) con->slot = ConnectionState::no_slot;
    for (auto& con : all) {
      con->pending.reset();
      if (con->counted) {
        con->counted = false;
        open_.fetch_sub(1, std::memory_order_relaxed);
      }
      if (con->session) {
        // Reported now, not when the close handshake ends: once stop()
        // returns the broker must not reach this session.
        broker_.close_session(*con->session);
        con->session.reset();
      }
      close_connection(*con, CloseCode::going_away, "server shutting down");
      if (con->get_state() != websocketpp::session::state::closed) closing_after_stop_.push_back(con);
    }
    if (closing_after_stop_.empty()) return;
    // A client that stopped reading never lets the close frame out; cut it
    // off once the close handshake had its time.
    retry_.expires_after(close_timeout);
    retry_.async_wait([weak = weak_from_this()](const std::error_code&) {
      auto self = weak.lock();
      if (!self) return;
      for (auto& w : self->closing_after_stop_)
        if (auto con = w.lock(); con && con->get_state() != websocketpp::session::state::closed)
          con->terminate(std::error_code());
      self->closing_after_stop_.clear();
    });
  }

  // The session's queue became non-empty: flush it once, later in this turn
  // of the event loop, together with every other connection that has frames.
  void schedule_flush(Connection& con) {
    if (con.flush_scheduled || stopped_) return;
    con.flush_scheduled = true;
    dirty_.push_back(con.get_shared());
    post_flush();
  }

  // Closes gracefully with `code`, or at once when the connection is backed
  // up (the close frame would wait behind data the client does not read) or
  // closed for being a slow consumer. May run the termination handler inline,
  // so it is never called from inside a broker call.
  void close_connection(Connection& con, CloseCode code, const std::string& reason) {
    const auto state = con.get_state();
    if (state == websocketpp::session::state::connecting) {
      con.terminate(std::error_code());
      return;
    }
    if (state != websocketpp::session::state::open) return;
    if (code == CloseCode::slow_consumer || con.get_buffered_amount() >= high_water_) {
      con.terminate(std::error_code());
      return;
    }
    con.last_activity = std::chrono::steady_clock::now();
    std::error_code ec;
    con.close(static_cast<websocketpp::close::status::value>(code), reason, ec);
  }

 private:
  static constexpr std::chrono::milliseconds close_timeout{2000};
  static constexpr std::chrono::milliseconds backed_up_retry{10};

  // --- accepting ---

  void accept() {
    if (stopped_) return;
    ConnectionPtr con = endpoint_.get_connection();
    if (!con) {
      retry_accept();
      return;
    }
    // The pending accept owns the connection, and only a weak reference to
    // the shard, so a stopped shard is never kept alive by it.
    acceptor_.async_accept(con->get_raw_socket(), [weak = weak_from_this(), con](const std::error_code& ec) {
      if (auto self = weak.lock()) self->on_accept(con, ec);
    });
  }

  void on_accept(const ConnectionPtr& con, const std::error_code& ec) {
    if (stopped_ || ec == asio::error::operation_aborted) return;
    if (ec) {
      // Out of descriptors or similar: try again shortly instead of spinning.
      retry_accept();
      return;
    }
    std::error_code ignored;
    con->get_raw_socket().set_option(asio::ip::tcp::no_delay(true), ignored);
    if (settings_->socket_send_buffer_bytes > 0)
      con->get_raw_socket().set_option(
          asio::socket_base::send_buffer_size(static_cast<int>(settings_->socket_send_buffer_bytes)), ignored);
    con->shard = shared_from_this();
    install_handlers(*con);
    con->slot = static_cast<std::uint32_t>(connections_.size());
    connections_.push_back(con);
    con->start();
    accept();
  }

  void retry_accept() {
    auto timer = std::make_shared<asio::steady_timer>(context_, std::chrono::milliseconds(100));
    timer->async_wait([weak = weak_from_this(), timer](const std::error_code& ec) {
      if (auto self = weak.lock(); self && !ec) self->accept();
    });
  }

  // Handlers live inside the connection and run only while it is alive, so
  // they capture the raw connection; the connection keeps its shard alive.
  void install_handlers(Connection& con) {
    Connection* c = &con;
    con.set_validate_handler([c](websocketpp::connection_hdl) { return c->shard->on_validate(*c); });
    con.set_http_handler([c](websocketpp::connection_hdl) { c->shard->on_http(*c); });
    con.set_open_handler([c](websocketpp::connection_hdl) { c->shard->on_open(*c); });
    con.set_message_handler([c](websocketpp::connection_hdl, MessagePtr msg) { c->shard->on_message(*c, msg); });
    con.set_ping_handler([c](websocketpp::connection_hdl, std::string) {
      c->last_activity = std::chrono::steady_clock::now();
      return true;  // answer with a pong
    });
    con.set_pong_handler([c](websocketpp::connection_hdl, std::string) {
      c->last_activity = std::chrono::steady_clock::now();
    });
    con.set_termination_handler([](ConnectionPtr p) { p->shard->on_terminated(*p); });
  }

  // --- handshake ---

  bool on_validate(Connection& con) {
    if (stopped_ || !broker_.accepting()) {
      con.set_status(websocketpp::http::status_code::service_unavailable);
      return false;
    }
    HandshakeRequest request = describe(con, "websocket");
    if (!settings_->allowed_origins.empty()) {
      const std::string& origin = request.header("origin");
      const auto& allowed = settings_->allowed_origins;
      if (!origin.empty() && std::find(allowed.begin(), allowed.end(), origin) == allowed.end()) {
        con.set_status(websocketpp::http::status_code::forbidden);
        return false;
      }
    }
    if (request.path != settings_->path) {
      con.set_status(websocketpp::http::status_code::not_found);
      return false;
    }
    // Shared prepared frames use RFC 6455 framing; refuse the 2010 drafts.
    if (con.get_request_header("Sec-WebSocket-Version") != "13") {
      con.set_status(websocketpp::http::status_code::upgrade_required);
      con.replace_header("Sec-WebSocket-Version", "13");
      return false;
    }
    std::optional<std::size_t> protocol;
    const std::vector<std::string>& offered = con.get_requested_subprotocols();
    if (offered.empty()) protocol = 0;
    for (const std::string& name : offered) {
      if (name.empty()) continue;
      if (auto found = broker_.find_protocol(name)) {
        std::error_code ignored;
        con.select_subprotocol(name, ignored);
        protocol = found;
        break;
      }
    }
    if (!protocol) {
      con.set_status(websocketpp::http::status_code::bad_request, "Unsupported Subprotocol");
      return false;
    }
    AuthResult verdict;
    try {
      const Authenticator& authenticate = broker_.settings().authenticator;
      verdict = authenticate ? authenticate(request) : AuthResult::accept(Principal{});
    } catch (const std::exception&) {
      broker_.report_error("the authenticator threw", make_error_code(Errc::unauthorized));
      con.set_status(websocketpp::http::status_code::internal_server_error);
      return false;
    }
    // A refused client still gets the upgrade, then a close with
    // CloseCode::unauthorized: a browser cannot read the status of a failed
    // handshake, but it can read a close code, and 4001 tells it not to
    // reconnect with the same token. No session is opened for it.
    con.pending = std::make_unique<PendingOpen>();
    con.pending->principal = std::move(verdict.principal);
    con.pending->refusal = std::move(verdict.reason);
    con.protocol = static_cast<std::uint32_t>(*protocol);
    return true;
  }

  void on_http(Connection& con) {
    HttpResponse response;
    try {
      response = settings_->http_handler ? settings_->http_handler(describe(con, "http")) : HttpResponse::not_found();
    } catch (const std::exception&) {
      response = HttpResponse{500, "text/plain; charset=utf-8", "internal server error\n", {}};
    }
    con.set_status(static_cast<websocketpp::http::status_code::value>(response.status));
    con.replace_header("Content-Type", response.content_type);
    for (const auto& [name, value] : response.headers) con.append_header(name, value);
    con.set_body(response.body);
  }

  void on_open(Connection& con) {
    std::unique_ptr<PendingOpen> pending = std::move(con.pending);
    if (stopped_ || !broker_.accepting()) {
      close_connection(con, CloseCode::going_away, "server shutting down");
      return;
    }
    if (!pending || !pending->principal) {
      broker_.count_error(Errc::unauthorized);
      close_connection(con, CloseCode::unauthorized,
                       pending && !pending->refusal.empty() ? pending->refusal : "unauthorized");
      return;
    }
    con.last_activity = std::chrono::steady_clock::now();
    con.counted = true;
    open_.fetch_add(1, std::memory_order_relaxed);
    // open_session may queue frames (server-side joins) before it returns;
    // frames_ready only schedules a flush, which finds the session set.
    con.session = broker_.open_session(index_, std::move(*pending->principal), con.protocol, con);
  }

  void on_message(Connection& con, const MessagePtr& msg) {
    con.last_activity = std::chrono::steady_clock::now();
    if (!con.session || con.session->closing()) return;
    if (msg->get_opcode() != websocketpp::frame::opcode::text) {
      con.session->close(CloseCode::unsupported_data, "binary frames are not supported");
      return;
    }
    broker_.handle_message(*con.session, msg->get_payload());
  }

  // Every connection ends here, whatever ended it (close handshake, error,
  // handshake failure, plain HTTP request served).
  void on_terminated(Connection& con) {
    unlist(con);
    con.pending.reset();
    if (con.counted) {
      con.counted = false;
      open_.fetch_sub(1, std::memory_order_relaxed);
    }
    if (!con.session) return;
    // websocketpp refused an oversized frame itself, before it became a message.
    if (con.get_local_close_code() == websocketpp::close::status::message_too_big)
      broker_.count_error(Errc::message_too_large);
    broker_.close_session(*con.session);
    con.session.reset();
  }

  void unlist(Connection& con) {
    if (con.slot == ConnectionState::no_slot) return;
    const std::uint32_t slot = con.slot;
    con.slot = ConnectionState::no_slot;
    if (slot + 1 != connections_.size()) {
      connections_[slot] = std::move(connections_.back());
      connections_[slot]->slot = slot;
    }
    connections_.pop_back();
  }

  // --- writing ---

  void post_flush() {
    if (flush_posted_) return;
    flush_posted_ = true;
    asio::post(context_, [self = shared_from_this()] { self->flush_all(); });
  }

  void flush_all() {
    flush_posted_ = false;
    if (stopped_) return;
    flushing_.swap(dirty_);
    for (auto& con : flushing_) {
      con->flush_scheduled = false;
      flush(*con);
    }
    flushing_.clear();
    // Prepared frames are shared within one pass only, so a publication's
    // copy lives no longer than the pass that sent it to every subscriber.
    prepared_.clear();
  }

  // Hands queued frames to websocketpp while it buffers less than the high
  // water mark; websocketpp sends everything handed over in one turn in one
  // gathered write. The rest stays in the SendQueue, under its policy.
  void flush(Connection& con) {
    if (!con.session || con.get_state() != websocketpp::session::state::open) return;
    SendQueue& queue = con.session->queue();
    std::size_t buffered = con.get_buffered_amount();
    if (buffered >= high_water_) {
      // websocketpp did not start writing what it got last time: the socket
      // is full. Look again shortly rather than on every turn.
      queue.set_in_flight(buffered);
      park(con);
      return;
    }
    while (!queue.empty() && buffered < high_water_) {
      queue.take(taken_, high_water_ - buffered);
      bool open = true;
      for (const FramePtr& frame : taken_) {
        MessagePtr message = prepare(frame);
        if (message && con.send(message)) open = false;
        if (!open) break;
      }
      taken_.clear();
      if (!open) return;  // closing: the termination handler reports the session
      buffered = con.get_buffered_amount();
    }
    queue.set_in_flight(buffered);
    // websocketpp takes what it buffers into its write before our next pass.
    if (!queue.empty()) schedule_flush(con);
  }

  void park(Connection& con) {
    con.flush_scheduled = true;
    backed_up_.push_back(con.get_shared());
    if (retry_armed_) return;
    retry_armed_ = true;
    retry_.expires_after(backed_up_retry);
    retry_.async_wait([weak = weak_from_this()](const std::error_code& ec) {
      auto self = weak.lock();
      if (!self || ec || self->stopped_) return;
      self->retry_armed_ = false;
      for (auto& con : self->backed_up_) self->dirty_.push_back(std::move(con));
      self->backed_up_.clear();
      self->post_flush();
    });
  }

  // A websocketpp message already framed for the wire (server frames are
  // unmasked and uncompressed, so one message serves every connection); a
  // publication is framed once per pass however many subscribers take it.
  MessagePtr prepare(const FramePtr& frame) {
    const bool shared = frame->is_publication();
    if (shared) {
      auto it = prepared_.find(frame.get());
      if (it != prepared_.end()) return it->second.second;
    }
    if (!websocketpp::utf8_validator::validate(frame->bytes)) {
      broker_.report_error("dropped a frame that is not valid UTF-8", make_error_code(Errc::invalid_payload));
      return nullptr;
    }
    const auto size = static_cast<std::uint64_t>(frame->bytes.size());
    MessagePtr message = messages_->get_message(websocketpp::frame::opcode::text, 0);
    message->set_header(websocketpp::frame::prepare_header(
        websocketpp::frame::basic_header(websocketpp::frame::opcode::text, size, true, false),
        websocketpp::frame::extended_header(size)));
    message->get_raw_payload() = frame->bytes;
    message->set_prepared(true);
    // Holding the frame keeps its address from being reused within the pass.
    if (shared) prepared_.emplace(frame.get(), std::make_pair(frame, message));
    return message;
  }

  // --- heartbeats ---

  std::chrono::milliseconds heartbeat_period() const {
    const SessionSettings& s = broker_.settings().session;
    std::chrono::milliseconds period{0};
    if (s.ping_interval.count() > 0) period = s.ping_interval;
    if (s.idle_timeout.count() > 0 && (period.count() == 0 || s.idle_timeout / 2 < period))
      period = s.idle_timeout / 2;
    return period;
  }

  // One timer per shard walks its connections: pings, idle timeouts, and
  // closes that never completed.
  void arm_heartbeat() {
    auto period = heartbeat_period();
    if (period.count() <= 0 || stopped_) return;
    heartbeat_.expires_after(period);
    heartbeat_.async_wait([weak = weak_from_this()](const std::error_code& ec) {
      auto self = weak.lock();
      if (self && !ec) self->heartbeat();
    });
  }

  void heartbeat() {
    if (stopped_) return;
    const SessionSettings& s = broker_.settings().session;
    const auto now = std::chrono::steady_clock::now();
    // Ticks may come more often than pings (a short idle timeout); a tick a
    // little early still pings.
    const bool ping = s.ping_interval.count() > 0 && now - last_ping_ >= s.ping_interval - heartbeat_period() / 4;
    if (ping) last_ping_ = now;
    std::vector<ConnectionPtr> idle, stuck;
    for (const ConnectionPtr& con : connections_) {
      const auto state = con->get_state();
      if (state == websocketpp::session::state::open && con->session && !con->session->closing()) {
        if (s.idle_timeout.count() > 0 && now - con->last_activity > s.idle_timeout) {
          idle.push_back(con);
          continue;
        }
        std::error_code ignored;
        if (ping) con->ping(std::string(), ignored);
      } else if (state == websocketpp::session::state::closing && now - con->last_activity > close_timeout) {
        stuck.push_back(con);
      }
    }
    for (auto& con : idle) con->session->close(CloseCode::idle_timeout, "idle timeout");
    for (auto& con : stuck) con->terminate(std::error_code());
    arm_heartbeat();
  }

  Broker& broker_;
  std::size_t index_;
  std::shared_ptr<const WebSocketSettings> settings_;
  asio::io_context& context_;
  Server endpoint_;
  asio::ip::tcp::acceptor acceptor_;
  asio::steady_timer heartbeat_;
  asio::steady_timer retry_;  // backed-up connections; after stop(), the close deadline
  std::shared_ptr<MessageManager> messages_;
  std::size_t high_water_ = 0;
  std::vector<ConnectionPtr> connections_;  // every accepted connection until it terminates
  std::vector<ConnectionPtr> dirty_;        // to flush in the next pass
  std::vector<ConnectionPtr> flushing_;     // the pass in progress (kept for its capacity)
  std::vector<ConnectionPtr> backed_up_;    // to flush when the retry timer fires
  std::vector<std::weak_ptr<Connection>> closing_after_stop_;
  std::vector<FramePtr> taken_;
  std::unordered_map<const Frame*, std::pair<FramePtr, MessagePtr>> prepared_;
  std::chrono::steady_clock::time_point last_ping_{};
  std::atomic<std::size_t> open_{0};
  bool flush_posted_ = false;
  bool retry_armed_ = false;
  bool stopped_ = false;
};

void ConnectionState::frames_ready() {
  Connection& con = connection_of(*this);
  // Pushes before the flush see what websocketpp still holds, not what it
  // held at the last flush.
  if (session) session->queue().set_in_flight(con.get_buffered_amount());
  shard->schedule_flush(con);
}

void ConnectionState::close(CloseCode code, std::string_view reason) {
  // Called from inside broker code: close on a later turn, so that the
  // termination handler never re-enters the broker.
  ConnectionPtr con = connection_of(*this).get_shared();
  asio::post(shard->context(), [con, code, reason = std::string(reason)] {
    con->shard->close_connection(*con, code, reason);
  });
}

}  // namespace

struct WebSocketTransport::Impl {
  Impl(Broker& b, WebSocketSettings s)
      : broker(b), settings(std::make_shared<const WebSocketSettings>(std::move(s))) {}

  Broker& broker;
  std::shared_ptr<const WebSocketSettings> settings;
  mutable std::mutex mutex;                          // guards shards
  std::vector<std::shared_ptr<ShardServer>> shards;  // index = broker shard; empty when stopped
  std::atomic<std::uint16_t> port{0};
};

WebSocketTransport::WebSocketTransport(Broker& broker, WebSocketSettings settings)
    : impl_(std::make_unique<Impl>(broker, std::move(settings))) {}

WebSocketTransport::~WebSocketTransport() { stop(); }

void WebSocketTransport::start() {
  // websocketpp detects the byte order lazily in a function-local static it
  // writes without synchronisation (a data race between shards, and with any
  // websocketpp client in the process); settle it before any shard runs.
  (void)websocketpp::lib::net::_htonll(0);
  Impl& d = *impl_;
  std::lock_guard<std::mutex> lock(d.mutex);
  if (!d.shards.empty()) return;
  const asio::ip::address address = asio::ip::make_address(d.settings->address);
  std::uint16_t port = d.settings->port;
  std::vector<std::shared_ptr<ShardServer>> started;
  if (port != 0) {
    // SO_REUSEPORT would let this instance silently share a port another
    // process already listens on. A probe bound without it fails instead.
    asio::io_context probe_context;
    asio::ip::tcp::acceptor probe(probe_context);
    const asio::ip::tcp::endpoint where(address, port);
    probe.open(where.protocol());
    probe.set_option(asio::socket_base::reuse_address(true));
    probe.bind(where);  // throws std::system_error (address_in_use)
  }
  try {
    // Shard 0 binds first so that with port 0 the others bind the port it got.
    for (std::size_t i = 0; i < d.broker.shard_count(); ++i) {
      std::exception_ptr failure;
      d.broker.execute_on_shard(i, [&] {
        try {
          started.push_back(std::make_shared<ShardServer>(d.broker, i, d.settings));
          started.back()->listen(asio::ip::tcp::endpoint(address, port));
          if (i == 0) port = started.back()->local_port();
        } catch (...) {
          failure = std::current_exception();
        }
      });
      if (failure) std::rethrow_exception(failure);
    }
  } catch (...) {
    for (std::size_t i = 0; i < started.size(); ++i) d.broker.execute_on_shard(i, [&] { started[i]->stop(); });
    throw;
  }
  d.shards = std::move(started);
  d.port.store(port);
}

void WebSocketTransport::stop() {
  Impl& d = *impl_;
  std::vector<std::shared_ptr<ShardServer>> shards;
  {
    std::lock_guard<std::mutex> lock(d.mutex);
    shards.swap(d.shards);
  }
  for (std::size_t i = 0; i < shards.size(); ++i) d.broker.execute_on_shard(i, [&] { shards[i]->stop(); });
}

std::uint16_t WebSocketTransport::port() const noexcept { return impl_->port.load(); }

std::size_t WebSocketTransport::connection_count() const noexcept {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  std::size_t n = 0;
  for (const auto& shard : impl_->shards) n += shard->open_connections();
  return n;
}

LIVECAST_END_NAMESPACE
