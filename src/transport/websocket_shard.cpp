#include "websocket_shard.hpp"

#include "engineio.hpp"

#include <livecast/error.hpp>

#include <asio/post.hpp>
#include <asio/ssl/error.hpp>

#include <chrono>
#include <utility>

LIVECAST_BEGIN_NAMESPACE
namespace detail::ws {

ShardServer::ShardServer(SessionHost& host, std::size_t index, std::shared_ptr<const WebSocketSettings> settings,
                         std::shared_ptr<ConnectionLimits> limits, std::shared_ptr<TlsContext> tls)
    : host_(host),
      index_(index),
      settings_(settings),
      tls_(std::move(tls)),
      context_(host.shard_context(index)),
      acceptor_(context_),
      admission_(host, settings, std::move(limits)),
      writer_(*this, host, settings, context_),
      housekeeping_(*this, host, settings, context_),
      read_buffer_(16 * 1024) {
  endpoint_.set_max_message_size(host_.session_settings().max_message_bytes);
  endpoint_.set_max_http_body_size(64 * 1024);
}

void ShardServer::listen(const asio::ip::tcp::endpoint& where) {
  acceptor_.listen(where, settings_->listen_backlog, [this](asio::ip::tcp::socket socket) {
    adopt(ByteStream(std::move(socket)), {}, /*start_tls=*/tls_ != nullptr);
  });
}

void ShardServer::adopt(ByteStream stream, std::string_view received, bool start_tls,
                        std::shared_ptr<EngineIoUpgradeSource> upgrade_from) {
  if (stopped_) return;
  AddressCounts::Entry* address = admission_.enter_limits(stream.socket());
  if (!address) return;  // the socket closes as it goes out of scope
  ConnectionPtr handshake = endpoint_.get_connection();
  if (!handshake) {  // out of memory
    admission_.leave_limits(address, true);
    return;
  }
  asio::ip::tcp::socket& socket = stream.socket();
  std::error_code ignored;
  socket.set_option(asio::ip::tcp::no_delay(true), ignored);
  socket.non_blocking(true, ignored);
  if (settings_->socket_send_buffer_bytes > 0)
    socket.set_option(asio::socket_base::send_buffer_size(static_cast<int>(settings_->socket_send_buffer_bytes)),
                      ignored);
  // TLS state (an SSL object, record buffers) only for a connection that
  // fits under the limits, with the certificate current at its handshake.
  if (start_tls) stream = ByteStream(std::move(socket), tls_->current());
  auto con = std::make_shared<LeanConnection>(shared_from_this(), std::move(stream));
  con->address = address;
  con->handshaking = true;
  con->last_activity = std::chrono::steady_clock::now();
  con->handshake = handshake;
  handshake->lean = con.get();
  handshake->set_secure(con->stream.is_tls());
  install_handlers(*handshake);
  con->slot = static_cast<std::uint32_t>(connections_.size());
  connections_.push_back(con);
  handshake->request_head = std::make_unique<HttpRequestParser>();
  if (upgrade_from) {
    handshake->pending = std::make_unique<PendingOpen>();
    handshake->pending->upgrade_from = std::move(upgrade_from);
  }
  handshake->start();  // websocketpp waits for the handshake's first bytes
  if (!received.empty()) receive(*con, received);
  if (con->stream.handshake_pending()) {
    start_tls_handshake(con);
    return;
  }
  wait_readable(con);
}

// Within the opening handshake's time limit and under max_pending_handshakes:
// the connection is in its handshake, and counted as handshaking, from the
// accept on (Housekeeping cuts it off when the time is up).
void ShardServer::start_tls_handshake(const LeanPtr& con) {
  con->read_waiting = true;
  con->stream.async_handshake([con](const std::error_code& ec) {
    con->read_waiting = false;
    ShardServer& shard = *con->shard;
    if (ec) {
      shard.tls_->count_handshake_failure();
      shard.abort(*con);
      return;
    }
    shard.wait_readable(con);
  });
}

void ShardServer::stop() {
  if (stopped_) return;
  stopped_ = true;
  acceptor_.close();
  writer_.stop();
  std::vector<LeanPtr> all;
  all.swap(connections_);
  for (auto& con : all) con->slot = LeanConnection::no_slot;
  std::vector<std::weak_ptr<LeanConnection>> closing;
  for (auto& con : all) {
    con->pending.reset();
    admission_.leave_limits(*con);
    if (con->counted) {
      con->counted = false;
      open_.fetch_sub(1, std::memory_order_relaxed);
    }
    if (con->session) {
      // Reported now, not when the close handshake ends: once stop()
      // returns the broker must not reach this session.
      host_.close_session(*con->session);
      con->session.reset();
    }
    close_connection(*con, CloseCode::going_away, "server shutting down");
    if (!con->ended() || con->stream.is_open()) closing.push_back(con);
  }
  housekeeping_.stop(std::move(closing));
}

void ShardServer::close_connection(LeanConnection& con, CloseCode code, std::string_view reason) {
  if (con.in_handshake()) {
    abort(con);
    return;
  }
  if (con.phase != LeanConnection::Phase::open) return;
  if (code == CloseCode::slow_consumer || con.buffered >= writer_.high_water()) {
    abort(con);
    return;
  }
  send_close(con, static_cast<std::uint16_t>(code), reason);
}

void ShardServer::abort(LeanConnection& con) {
  con.abort_on_shutdown = true;
  end(con);
  ShardWriter::close_socket(con);
}

void ShardServer::end(LeanConnection& con) {
  if (con.ended()) return;
  if (con.in_handshake()) {
    // As a socket error would: websocketpp's pending read (the handshake's)
    // holds its connection's own shared_ptr until it completes, so it must
    // be completed, not just abandoned by terminate(), or it leaks. Its
    // shutdown and termination handlers then end ours.
    ConnectionPtr handshake = con.handshake;
    handshake->fatal_error();
    if (handshake->get_state() != websocketpp::session::state::closed) handshake->terminate(std::error_code());
    if (!con.ended()) on_terminated(con);  // its handlers were let go already
    return;
  }
  writer_.on_shutdown(con);
  on_terminated(con);
}

// websocketpp's handlers run only while its connection is ours (`lean` set):
// they capture the raw connection, whose LeanConnection keeps the shard alive.
void ShardServer::install_handlers(Connection& handshake) {
  Connection* c = &handshake;
  handshake.set_validate_handler([c](websocketpp::connection_hdl) {
    return c->lean && c->lean->shard->admission_.validate(*c, c->lean->shard->stopped_);
  });
  handshake.set_http_handler([c](websocketpp::connection_hdl) {
    if (c->lean) c->lean->shard->admission_.serve_http(*c);
  });
  handshake.set_open_handler([c](websocketpp::connection_hdl) {
    if (c->lean) c->lean->shard->on_open(*c);
  });
  handshake.set_termination_handler([](ConnectionPtr p) {
    if (p->lean) p->lean->shard->on_handshake_terminated(*p);
  });
  // websocketpp's writes (the handshake's answer) join the outgoing stream.
  handshake.set_vector_write_handler(
      [c](websocketpp::connection_hdl, const std::vector<websocketpp::transport::buffer>& bufs) {
        if (!c->lean) return std::error_code();
        std::string bytes;
        std::size_t total = 0;
        for (const auto& b : bufs) total += b.len;
        bytes.reserve(total);
        for (const auto& b : bufs) bytes.append(b.buf, b.len);
        c->lean->shard->writer_.queue_owned(*c->lean, std::move(bytes));
        return std::error_code();
      });
  handshake.set_write_handler([c](websocketpp::connection_hdl, const char* data, std::size_t size) {
    if (c->lean) c->lean->shard->writer_.queue_owned(*c->lean, std::string(data, size));
    return std::error_code();
  });
  handshake.set_shutdown_handler([c](websocketpp::connection_hdl) {
    if (c->lean) c->lean->shard->writer_.on_shutdown(*c->lean);
    return std::error_code();
  });
}

// --- reading ---

namespace {

// The allocator of a connection's pending wait for readability: plain
// operator new, sized to the operation. Asio's default recycles blocks per
// thread and hands a wait the larger block an accept just freed (about
// 280 bytes against 136): on every idle connection, for as long as it waits.
template <class T>
struct ExactAllocator {
  using value_type = T;
  ExactAllocator() noexcept = default;
  template <class U>
  ExactAllocator(const ExactAllocator<U>&) noexcept {}
  T* allocate(std::size_t n) { return static_cast<T*>(::operator new(n * sizeof(T))); }
  void deallocate(T* p, std::size_t) noexcept { ::operator delete(p); }
  template <class U>
  bool operator==(const ExactAllocator<U>&) const noexcept { return true; }
  template <class U>
  bool operator!=(const ExactAllocator<U>&) const noexcept { return false; }
};

// The wait's handler, a named type carrying that allocator
// (asio::bind_allocator's wrapper would add an executor to the operation).
struct ReadableHandler {
  LeanPtr con;
  using allocator_type = ExactAllocator<void>;
  allocator_type get_allocator() const noexcept { return {}; }
  void operator()(const std::error_code& ec) const {
    con->read_waiting = false;
    if (ec == asio::error::operation_aborted) return;  // the socket was closed
    con->shard->on_readable(con, ec);
  }
};

}  // namespace

// Readiness, then non-blocking reads into the shard's one buffer: no
// connection holds a read buffer of its own while it waits.
void ShardServer::wait_readable(const LeanPtr& con) {
  if (con->read_waiting || con->ended() || !con->stream.is_open()) return;
  con->read_waiting = true;
  if (con->stream.is_tls()) {
    // The engine decides when bytes are data: an asynchronous read, into
    // the stream's own buffer (TLS holds record buffers per connection anyway).
    std::vector<char>& buffer = con->stream.read_buffer();
    if (buffer.empty()) buffer.resize(tls_read_bytes);
    con->stream.async_read_some(asio::buffer(buffer), [con](const std::error_code& ec, std::size_t n) {
      con->read_waiting = false;
      if (ec == asio::error::operation_aborted) return;  // the socket was closed
      ShardServer& shard = *con->shard;
      if (ec) {
        shard.on_read_error(con, ec);
        return;
      }
      if (con->ended() || !con->stream.is_open()) return;
      shard.receive(*con, std::string_view(con->stream.read_buffer().data(), n));
      shard.wait_readable(con);
    });
    return;
  }
  con->stream.socket().async_wait(asio::socket_base::wait_read, ReadableHandler{con});
}

void ShardServer::on_readable(const LeanPtr& con, std::error_code ec) {
  for (int turn = 0; !ec && turn < reads_per_turn; ++turn) {
    if (con->ended() || !con->stream.is_open()) return;
    std::size_t n = con->stream.read_some(asio::buffer(read_buffer_), ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) {
      ec.clear();
      break;
    }
    if (ec) break;
    receive(*con, std::string_view(read_buffer_.data(), n));
  }
  if (ec) {
    on_read_error(con, ec);
    return;
  }
  wait_readable(con);
}

void ShardServer::on_read_error(const LeanPtr& con, const std::error_code& ec) {
  // End of stream (a TLS client that closes without close_notify too) or a
  // socket error: the connection ends, and with it the socket.
  (void)ec;
  end(*con);
  ShardWriter::close_socket(*con);
}

void ShardServer::receive(LeanConnection& con, std::string_view bytes) {
  if (con.in_handshake()) {
    ConnectionPtr handshake = con.handshake;  // websocketpp may end it while it reads
    if (!handshake->request_head) return;     // the request was read: nothing more until the answer
    HandshakeAdmission::RequestHeadStep step = admission_.read_request_head(*handshake, bytes);
    if (!step.refusal.empty()) {
      refuse(con, std::move(step.refusal));
      return;
    }
    if (step.forward.empty()) return;
    // The whole request: websocketpp answers it (and opens, or refuses)
    // before read_all returns.
    handshake->read_all(step.forward.data(), step.forward.size());
    if (con.in_handshake() || con.ended()) return;
    release_handshake(con);
    bytes = step.rest;  // frames sent right behind the request
    if (bytes.empty()) return;
    // `step` owns the bytes; read them before it goes.
    read_frames(con, bytes);
    return;
  }
  read_frames(con, bytes);
}

void ShardServer::refuse(LeanConnection& con, std::string response) {
  writer_.queue_owned(con, std::move(response));
  // As websocketpp ends a handshake it refuses itself: its shutdown handler
  // (ShardWriter::on_shutdown) closes the socket once the answer is out.
  end(con);
}

// --- the opening handshake's end ---

void ShardServer::release_handshake(LeanConnection& con) {
  ConnectionPtr handshake = std::move(con.handshake);
  if (!handshake) return;
  handshake->lean = nullptr;  // its handlers do nothing from here on
  // Completes websocketpp's pending read of the first frame, which holds
  // the connection's own shared_ptr (see end()); it then terminates, and
  // the object goes with the last reference, here.
  handshake->fatal_error();
  if (handshake->get_state() != websocketpp::session::state::closed) handshake->terminate(std::error_code());
}

void ShardServer::on_handshake_terminated(Connection& handshake) {
  LeanConnection& con = *handshake.lean;
  handshake.lean = nullptr;
  on_terminated(con);
}

void ShardServer::on_open(Connection& handshake) {
  LeanConnection& con = *handshake.lean;
  std::unique_ptr<PendingOpen> pending = std::move(handshake.pending);
  con.protocol = handshake.protocol;
  con.phase = LeanConnection::Phase::open;
  admission_.end_handshake(con);
  // A handshake that passed its check before a drain began still opens: the
  // drain closes its session as it closes the others (with a reconnect delay).
  if (stopped_ || (!host_.accepting() && !host_.draining())) {
    close_connection(con, CloseCode::going_away, "server shutting down");
    return;
  }
  if (pending && pending->in_band) {
    open_in_band(con, std::move(*pending->in_band));
    return;
  }
  if (pending && pending->upgrade_from) {
    // No session yet: the client probes, then asks for the polling one.
    con.last_activity = std::chrono::steady_clock::now();
    con.counted = true;
    open_.fetch_add(1, std::memory_order_relaxed);
    con.pending = std::move(pending);
    return;
  }
  if (!pending || !pending->principal) {
    host_.count_error(Errc::unauthorized);
    close_connection(con, CloseCode::unauthorized,
                     pending && !pending->refusal.empty() ? pending->refusal : "unauthorized");
    return;
  }
  con.last_activity = std::chrono::steady_clock::now();
  con.counted = true;
  open_.fetch_add(1, std::memory_order_relaxed);
  // open_session may queue frames (server-side joins) before it returns;
  // frames_ready only schedules a flush, which finds the session set.
  con.session = host_.open_session(index_, std::move(*pending->principal), con.protocol, con);
}

// Socket.IO over a WebSocket (Engine.IO's websocket transport): the session
// opens unauthenticated, greeted with Engine.IO's open packet; its CONNECT
// message brings the credentials (SessionHost::open_unauthenticated).
void ShardServer::open_in_band(LeanConnection& con, HandshakeRequest request) {
  con.last_activity = std::chrono::steady_clock::now();
  con.counted = true;
  open_.fetch_add(1, std::memory_order_relaxed);
  const SessionSettings& s = host_.session_settings();
  Greeting greeting;
  greeting.session_id = make_engineio_sid(index_);
  if (greeting.session_id.empty()) {
    close_connection(con, CloseCode::internal_error, "no session id could be made");
    return;
  }
  greeting.heartbeat_interval = s.ping_interval;
  greeting.heartbeat_timeout = engineio_heartbeat_timeout(s);
  greeting.max_message_bytes = s.max_message_bytes;
  con.session = host_.open_unauthenticated(index_, con.protocol, con, std::move(request), greeting);
}

}  // namespace detail::ws
LIVECAST_END_NAMESPACE
