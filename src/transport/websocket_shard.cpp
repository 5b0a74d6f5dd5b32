#include "websocket_shard.hpp"

#include "engineio.hpp"

#include "websocket_frames.hpp"

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
  ConnectionPtr con = endpoint_.get_connection();
  if (!con) {  // out of memory
    admission_.leave_limits(address, true);
    return;
  }
  con->address = address;
  con->handshaking = true;
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
  con->set_secure(stream.is_tls());
  con->stream.emplace(std::move(stream));
  con->shard = shared_from_this();
  con->last_activity = std::chrono::steady_clock::now();
  install_handlers(*con);
  con->slot = static_cast<std::uint32_t>(connections_.size());
  connections_.push_back(con);
  con->request_head = std::make_unique<HttpRequestParser>();
  if (upgrade_from) {
    con->pending = std::make_unique<PendingOpen>();
    con->pending->upgrade_from = std::move(upgrade_from);
  }
  con->start();  // websocketpp waits for the handshake's first bytes
  if (!received.empty()) receive(*con, received);
  if (con->stream->handshake_pending()) {
    start_tls_handshake(con);
    return;
  }
  wait_readable(con);
}

// Within the opening handshake's time limit and under max_pending_handshakes:
// the connection is `connecting` to websocketpp, and counted as handshaking,
// from the accept on (Housekeeping cuts it off when the time is up).
void ShardServer::start_tls_handshake(const ConnectionPtr& con) {
  con->read_waiting = true;
  con->stream->async_handshake([con](const std::error_code& ec) {
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
  std::vector<ConnectionPtr> all;
  all.swap(connections_);
  for (auto& con : all) con->slot = ConnectionState::no_slot;
  std::vector<std::weak_ptr<Connection>> closing;
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
    if (!con->terminated || (con->stream && con->stream->is_open())) closing.push_back(con);
  }
  housekeeping_.stop(std::move(closing));
}

void ShardServer::close_connection(Connection& con, CloseCode code, const std::string& reason) {
  const auto state = con.get_state();
  if (state == websocketpp::session::state::connecting) {
    abort(con);
    return;
  }
  if (state != websocketpp::session::state::open) return;
  if (code == CloseCode::slow_consumer || con.buffered >= writer_.high_water()) {
    abort(con);
    return;
  }
  con.last_activity = std::chrono::steady_clock::now();
  std::error_code ec;
  con.close(static_cast<websocketpp::close::status::value>(code), std::string(fit_close_reason(reason)), ec);
}

void ShardServer::abort(Connection& con) {
  con.abort_on_shutdown = true;
  // As a socket error would: websocketpp's pending read (the handshake's,
  // or the next frame's) holds the connection's own shared_ptr inside the
  // iostream transport until it completes, so it must be completed, not
  // just abandoned by terminate(), or the connection (and its shard) leak.
  con.fatal_error();
  if (!con.terminated) con.terminate(std::error_code());
  ShardWriter::close_socket(con);
}

// Handlers live inside the connection and run only while it is alive, so
// they capture the raw connection; the connection keeps its shard alive.
void ShardServer::install_handlers(Connection& con) {
  Connection* c = &con;
  con.set_validate_handler(
      [c](websocketpp::connection_hdl) { return c->shard->admission_.validate(*c, c->shard->stopped_); });
  con.set_http_handler([c](websocketpp::connection_hdl) { c->shard->admission_.serve_http(*c); });
  con.set_open_handler([c](websocketpp::connection_hdl) { c->shard->on_open(*c); });
  con.set_message_handler([c](websocketpp::connection_hdl, MessagePtr msg) { c->shard->on_message(*c, msg); });
  con.set_ping_handler([c](websocketpp::connection_hdl, std::string) {
    c->last_activity = std::chrono::steady_clock::now();
    return true;  // answer with a pong
  });
  con.set_pong_handler(
      [c](websocketpp::connection_hdl, std::string) { c->last_activity = std::chrono::steady_clock::now(); });
  con.set_termination_handler([](ConnectionPtr p) { p->shard->on_terminated(*p); });
  // websocketpp's own writes (handshake response, pongs, pings, close
  // frames) join the outgoing stream in order with the frames.
  con.set_vector_write_handler(
      [c](websocketpp::connection_hdl, const std::vector<websocketpp::transport::buffer>& bufs) {
        std::string bytes;
        std::size_t total = 0;
        for (const auto& b : bufs) total += b.len;
        bytes.reserve(total);
        for (const auto& b : bufs) bytes.append(b.buf, b.len);
        c->shard->writer_.queue_owned(*c, std::move(bytes));
        return std::error_code();
      });
  con.set_write_handler([c](websocketpp::connection_hdl, const char* data, std::size_t size) {
    c->shard->writer_.queue_owned(*c, std::string(data, size));
    return std::error_code();
  });
  con.set_shutdown_handler([c](websocketpp::connection_hdl) {
    c->shard->writer_.on_shutdown(*c);
    return std::error_code();
  });
}

// --- reading ---

// Readiness, then non-blocking reads into the shard's one buffer: no
// connection holds a read buffer of its own while it waits.
void ShardServer::wait_readable(const ConnectionPtr& con) {
  if (con->read_waiting || con->terminated || !con->stream || !con->stream->is_open()) return;
  con->read_waiting = true;
  if (con->stream->is_tls()) {
    // The engine decides when bytes are data: an asynchronous read, into
    // the stream's own buffer (TLS holds record buffers per connection anyway).
    std::vector<char>& buffer = con->stream->read_buffer();
    if (buffer.empty()) buffer.resize(tls_read_bytes);
    con->stream->async_read_some(asio::buffer(buffer), [con](const std::error_code& ec, std::size_t n) {
      con->read_waiting = false;
      if (ec == asio::error::operation_aborted) return;  // the socket was closed
      ShardServer& shard = *con->shard;
      if (ec) {
        shard.on_read_error(con, ec);
        return;
      }
      if (con->terminated || !con->stream->is_open()) return;
      shard.receive(*con, std::string_view(con->stream->read_buffer().data(), n));
      shard.wait_readable(con);
    });
    return;
  }
  con->stream->socket().async_wait(asio::socket_base::wait_read, [con](const std::error_code& ec) {
    con->read_waiting = false;
    if (ec == asio::error::operation_aborted) return;  // the socket was closed
    con->shard->on_readable(con, ec);
  });
}

void ShardServer::on_readable(const ConnectionPtr& con, std::error_code ec) {
  for (int turn = 0; !ec && turn < reads_per_turn; ++turn) {
    if (con->terminated || !con->stream || !con->stream->is_open()) return;
    std::size_t n = con->stream->read_some(asio::buffer(read_buffer_), ec);
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

void ShardServer::on_read_error(const ConnectionPtr& con, const std::error_code& ec) {
  // End of stream or a socket error: websocketpp's pending read hears of
  // it and ends the connection; one that was not reading is ended here. A
  // TLS client that closes without close_notify is an end of stream too.
  if (ec == asio::error::eof || ec == asio::ssl::error::stream_truncated) con->eof();
  else con->fatal_error();
  if (!con->terminated) con->terminate(ec);
  ShardWriter::close_socket(*con);
}

void ShardServer::receive(Connection& con, std::string_view bytes) {
  if (!con.request_head) {
    con.read_all(bytes.data(), bytes.size());
    return;
  }
  HandshakeAdmission::RequestHeadStep step = admission_.read_request_head(con, bytes);
  if (!step.refusal.empty()) {
    refuse(con, std::move(step.refusal));
    return;
  }
  if (!step.forward.empty()) con.read_all(step.forward.data(), step.forward.size());
}

void ShardServer::refuse(Connection& con, std::string response) {
  writer_.queue_owned(con, std::move(response));
  // As websocketpp ends a handshake it refuses itself: its pending read
  // fails, it terminates, and the shutdown handler (ShardWriter::on_shutdown)
  // closes the socket once the answer is out.
  con.fatal_error();
  if (!con.terminated) con.terminate(std::make_error_code(std::errc::protocol_error));
}

// --- a connection's life ---

namespace {

// websocketpp keeps the handshake's request and response, header maps
// included (about 1 KB per connection), for the connection's life; nothing
// reads them after the open (its close logging is compiled out, and copes
// with empty ones). The objects are members, not const: resetting them
// through the const accessors is well-defined.
void forget_handshake(Connection& con) {
  const_cast<Connection::request_type&>(con.get_request()) = Connection::request_type();
  const_cast<Connection::response_type&>(con.get_response()) = Connection::response_type();
}

}  // namespace

void ShardServer::on_open(Connection& con) {
  std::unique_ptr<PendingOpen> pending = std::move(con.pending);
  forget_handshake(con);
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
void ShardServer::open_in_band(Connection& con, HandshakeRequest request) {
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

void ShardServer::on_upgrade_message(Connection& con, const std::string& message) {
  if (message == "2probe") {
    // websocketpp frames it; its bytes join the outgoing stream like a pong's.
    const std::error_code ec = con.send(std::string("3probe"), websocketpp::frame::opcode::text);
    if (ec) {
      close_connection(con, CloseCode::internal_error, "the probe could not be answered");
      return;
    }
    con.pending->upgrade_from->probed();
    return;
  }
  std::shared_ptr<Session> session;
  if (message == "5") session = con.pending->upgrade_from->hand_over();
  con.pending.reset();
  if (!session) {
    close_connection(con, message == "5" ? CloseCode::going_away : CloseCode::protocol_error,
                     message == "5" ? "the polling session ended" : "expected the upgrade probe");
    return;
  }
  con.session = std::move(session);
  host_.rebind(*con.session, con);
}

void ShardServer::on_message(Connection& con, const MessagePtr& msg) {
  con.last_activity = std::chrono::steady_clock::now();
  if (!con.session && con.pending && con.pending->upgrade_from &&
      msg->get_opcode() == websocketpp::frame::opcode::text) {
    on_upgrade_message(con, msg->get_payload());
    return;
  }
  if (!con.session || con.session->closing()) return;
  if (msg->get_opcode() != websocketpp::frame::opcode::text) {
    con.session->close(CloseCode::unsupported_data, "binary frames are not supported");
    return;
  }
  // As websocketpp answers a text frame that is not UTF-8.
  if (ends_inside_utf8_character(msg->get_payload())) {
    con.session->close(CloseCode::invalid_payload, "a text message must be UTF-8");
    return;
  }
  host_.handle_message(*con.session, msg->get_payload());
}

// Every connection ends here, whatever ended it (close handshake, error,
// handshake failure, plain HTTP request served).
void ShardServer::on_terminated(Connection& con) {
  con.terminated = true;
  con.last_activity = std::chrono::steady_clock::now();
  unlist(con);
  admission_.leave_limits(con);
  con.pending.reset();
  if (con.counted) {
    con.counted = false;
    open_.fetch_sub(1, std::memory_order_relaxed);
  }
  // Bytes still on their way (a close frame to a slow reader) get
  // close_timeout before the socket is closed regardless.
  if (con.stream && con.stream->is_open() && !stopped_) housekeeping_.linger(con.get_shared());
  if (!con.session) return;
  // websocketpp refused an oversized frame itself, before it became a message.
  if (con.get_local_close_code() == websocketpp::close::status::message_too_big)
    host_.count_error(Errc::message_too_large);
  host_.close_session(*con.session);
  con.session.reset();
}

void ShardServer::unlist(Connection& con) {
  if (con.slot == ConnectionState::no_slot) return;
  const std::uint32_t slot = con.slot;
  con.slot = ConnectionState::no_slot;
  if (slot + 1 != connections_.size()) {
    connections_[slot] = std::move(connections_.back());
    connections_[slot]->slot = slot;
  }
  connections_.pop_back();
}

// --- the session's side of the connection ---

void ConnectionState::frames_ready() {
  Connection& con = connection_of(*this);
  // Pushes before the flush see what is on its way to the socket.
  if (session) shard->host().set_in_flight(*session, buffered);
  shard->writer().schedule_flush(con);
}

void ConnectionState::close(CloseCode code, std::string_view reason) {
  // Called from inside broker code: close on a later turn, so that the
  // termination handler never re-enters the broker.
  ConnectionPtr con = connection_of(*this).get_shared();
  asio::post(shard->context(), [con, code, reason = std::string(reason)] {
    con->shard->close_connection(*con, code, reason);
  });
}

}  // namespace detail::ws
LIVECAST_END_NAMESPACE
