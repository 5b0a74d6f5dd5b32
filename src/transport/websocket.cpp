// The WebSocket transport: one endpoint per broker shard, all listening on
// one port with SO_REUSEPORT so the kernel spreads connections over the
// shards. Everything a shard's endpoint and connections do runs on that
// shard's thread, so nothing here takes a lock but the connection limits'
// count per address, once when a connection starts and once when it ends.
//
// websocketpp parses (handshake, incoming frames, control frames, close
// handshake) through its iostream transport; the sockets are ours. That
// keeps websocketpp's Asio transport out of every connection (two 1 KiB
// handler buffers, timers and a socket holder each: a third of an idle
// connection's memory), lets one shard-wide buffer serve every read, and
// lets a publication's frame go to the socket as it is: its header is built
// per write, its payload shared by every subscriber, and all frames queued on
// a connection leave in one gathered write.
#include <livecast/websocket_transport.hpp>

#include <livecast/session_host.hpp>

#include "address_counts.hpp"
#include "admission.hpp"
#include "http_request_parser.hpp"
#include "shard_listeners.hpp"
#include "websocket_config.hpp"
#include "websocket_frames.hpp"
#include "websocket_handover.hpp"

#include <websocketpp/common/network.hpp>
#include <websocketpp/utf8_validator.hpp>

#include <asio/buffer.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/write.hpp>


#include <algorithm>
#include <array>
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

namespace detail::ws {

// The connection limits of one transport (WebSocketSettings), each over all
// its shards, so shared by them: what is held, and what was refused.
struct ConnectionLimits {
  std::atomic<std::size_t> held{0};         // taken, not yet ended
  std::atomic<std::size_t> handshaking{0};  // of those, not yet open
  std::atomic<std::uint64_t> taken{0};
  std::atomic<std::uint64_t> refused_too_many_connections{0};
  std::atomic<std::uint64_t> refused_per_address{0};
  std::atomic<std::uint64_t> refused_pending_handshakes{0};
  detail::AddressCounts addresses;
};

void bump(std::atomic<std::uint64_t>& counter) noexcept { counter.fetch_add(1, std::memory_order_relaxed); }

// --- handshake request decoding ---

HandshakeRequest describe(Connection& con, const char* transport, const WebSocketSettings& settings) {
  HandshakeRequest r;
  r.transport = transport;
  const std::string_view target = detail::origin_form(con.get_request().get_uri());
  std::size_t q = target.find('?');
  r.path = std::string(target.substr(0, q));
  if (q != std::string_view::npos) detail::parse_query(target.substr(q + 1), r.query);
  for (const auto& [name, value] : con.get_request().get_headers()) {
    std::string lower = name;
    for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    r.headers.emplace(std::move(lower), value);
  }
  detail::parse_cookies(r.header("cookie"), r.cookies);
  detail::vouch_for_cookies(r, settings.allowed_origins);
  std::error_code ec;
  if (con.socket) {
    auto remote = con.socket->remote_endpoint(ec);
    if (!ec) r.remote_address = remote.address().to_string();
  }
  return r;
}

// One shard's endpoint, listening socket and connections. Every member runs on
// the shard's thread (construction and stop() included: the transport uses
// Broker::execute_on_shard).
class ShardServer : public std::enable_shared_from_this<ShardServer> {
 public:
  ShardServer(SessionHost& host, std::size_t index, std::shared_ptr<const WebSocketSettings> settings,
              std::shared_ptr<ConnectionLimits> limits)
      : host_(host),
        index_(index),
        settings_(std::move(settings)),
        limits_(std::move(limits)),
        context_(host.shard_context(index)),
        acceptor_(context_),
        housekeeping_(context_),
        close_deadline_(context_),
        flush_timer_(context_),
        read_buffer_(16 * 1024) {
    const SessionSettings& session = host_.session_settings();
    // Frames handed to the socket count against the session's byte budget;
    // keep half of it for the SendQueue so its slow-consumer policy can act.
    high_water_ = std::min<std::size_t>(64 * 1024, std::max<std::size_t>(session.send_queue_bytes / 2, 1));
    endpoint_.set_max_message_size(session.max_message_bytes);
    endpoint_.set_max_http_body_size(64 * 1024);
  }

  ShardServer(const ShardServer&) = delete;
  ShardServer& operator=(const ShardServer&) = delete;

  asio::io_context& context() noexcept { return context_; }
  SessionHost& host() noexcept { return host_; }
  std::size_t open_connections() const noexcept { return open_.load(std::memory_order_relaxed); }

  // Starts the shard's timers; connections come from listen() or adopt().
  void start() { arm_housekeeping(); }

  // Binds and starts accepting. Throws std::system_error.
  void listen(const asio::ip::tcp::endpoint& where) {
    acceptor_.listen(where, settings_->listen_backlog, [this](asio::ip::tcp::socket socket) {
      adopt(std::move(socket), {});
    });
  }

  std::uint16_t local_port() const { return acceptor_.local_port(); }

  // A connected socket, from this shard's acceptor or handed over by
  // another transport on this shard's port (an upgrade request it read
  // first: `received`, the bytes it already took from the socket).
  // Beyond a limit it is closed at once, unanswered: under a flood the
  // cheapest refusal, and nothing of the client's is read.
  void adopt(asio::ip::tcp::socket socket, std::string_view received) {
    if (stopped_) return;
    detail::AddressCounts::Entry* address = enter_limits(socket);
    if (!address) return;  // the socket closes as it goes out of scope
    ConnectionPtr con = endpoint_.get_connection();
    if (!con) {  // out of memory
      leave_limits(address, true);
      return;
    }
    con->address = address;
    con->handshaking = true;
    std::error_code ignored;
    socket.set_option(asio::ip::tcp::no_delay(true), ignored);
    socket.non_blocking(true, ignored);
    if (settings_->socket_send_buffer_bytes > 0)
      socket.set_option(asio::socket_base::send_buffer_size(static_cast<int>(settings_->socket_send_buffer_bytes)),
                        ignored);
    con->socket.emplace(std::move(socket));
    con->shard = shared_from_this();
    con->last_activity = std::chrono::steady_clock::now();
    install_handlers(*con);
    con->slot = static_cast<std::uint32_t>(connections_.size());
    connections_.push_back(con);
    con->start();  // websocketpp waits for the handshake's first bytes
    if (!received.empty()) con->read_all(received.data(), received.size());
    wait_readable(con);
  }

  // Stops accepting, reports every session closed and closes every connection
  // with going_away. Afterwards nothing here calls the broker.
  void stop() {
    if (stopped_) return;
    stopped_ = true;
    acceptor_.close();
    housekeeping_.cancel();
    flush_timer_.cancel();
    dirty_.clear();
    std::vector<ConnectionPtr> all;
    all.swap(connections_);
    for (auto& con : all) con->slot = ConnectionState::no_slot;
    for (auto& con : all) {
      con->pending.reset();
      leave_limits(*con);
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
      if (!con->terminated || (con->socket && con->socket->is_open())) closing_after_stop_.push_back(con);
    }
    for (auto& w : lingering_) closing_after_stop_.push_back(std::move(w));
    lingering_.clear();
    if (closing_after_stop_.empty()) return;
    // A client that stopped reading never lets the close frame out; cut it
    // off once the close handshake had its time.
    close_deadline_.expires_after(close_timeout);
    close_deadline_.async_wait([weak = weak_from_this()](const std::error_code&) {
      auto self = weak.lock();
      if (!self) return;
      for (auto& w : self->closing_after_stop_)
        if (auto con = w.lock()) self->abort(*con);
      self->closing_after_stop_.clear();
    });
  }

  // The session's queue became non-empty: flush it once, later in this turn
  // of the event loop, together with every other connection that has frames.
  void schedule_flush(Connection& con) {
    if (con.flush_scheduled || stopped_) return;
    con.flush_scheduled = true;
    dirty_.push_back(shared(con));
    post_flush();
  }

  // Closes gracefully with `code`, or at once when the connection is backed
  // up (the close frame would wait behind data the client does not read) or
  // closed for being a slow consumer. May run the termination handler inline,
  // so it is never called from inside a broker call. A reason too long for
  // the close frame is cut at a whole UTF-8 character (fit_close_reason).
  void close_connection(Connection& con, CloseCode code, const std::string& reason) {
    const auto state = con.get_state();
    if (state == websocketpp::session::state::connecting) {
      abort(con);
      return;
    }
    if (state != websocketpp::session::state::open) return;
    if (code == CloseCode::slow_consumer || con.buffered >= high_water_) {
      abort(con);
      return;
    }
    con.last_activity = std::chrono::steady_clock::now();
    std::error_code ec;
    con.close(static_cast<websocketpp::close::status::value>(code), std::string(detail::fit_close_reason(reason)), ec);
  }

 private:
  static constexpr std::chrono::milliseconds close_timeout{2000};
  // Reads per readiness before other connections get their turn.
  static constexpr int reads_per_turn = 4;

  // An owning pointer to a connection: a copy of the one in connections_ (one
  // atomic increment) rather than websocketpp's get_shared() (a weak_ptr
  // lock), since this runs for every write.
  ConnectionPtr shared(Connection& con) {
    return con.slot != ConnectionState::no_slot ? connections_[con.slot] : con.get_shared();
  }

  // Ends the connection now: websocketpp terminates it, and the socket is
  // closed without waiting for queued bytes.
  void abort(Connection& con) {
    con.abort_on_shutdown = true;
    // As a socket error would: websocketpp's pending read (the handshake's,
    // or the next frame's) holds the connection's own shared_ptr inside the
    // iostream transport until it completes, so it must be completed, not
    // just abandoned by terminate(), or the connection (and its shard) leak.
    con.fatal_error();
    if (!con.terminated) con.terminate(std::error_code());
    close_socket(con);
  }

  void close_socket(Connection& con) {
    if (!con.socket || !con.socket->is_open()) return;
    std::error_code ignored;
    con.socket->close(ignored);  // cancels the pending wait and write, which release their references
    con.outgoing.clear();
    con.close_when_written = false;
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
    // websocketpp's own writes (handshake response, pongs, pings, close
    // frames) join the outgoing stream in order with the frames.
    con.set_vector_write_handler([c](websocketpp::connection_hdl, const std::vector<websocketpp::transport::buffer>& bufs) {
      std::string bytes;
      std::size_t total = 0;
      for (const auto& b : bufs) total += b.len;
      bytes.reserve(total);
      for (const auto& b : bufs) bytes.append(b.buf, b.len);
      c->shard->queue_owned(*c, std::move(bytes));
      return std::error_code();
    });
    con.set_write_handler([c](websocketpp::connection_hdl, const char* data, std::size_t size) {
      c->shard->queue_owned(*c, std::string(data, size));
      return std::error_code();
    });
    con.set_shutdown_handler([c](websocketpp::connection_hdl) {
      c->shard->on_shutdown(*c);
      return std::error_code();
    });
  }

  // --- reading ---

  // Readiness, then non-blocking reads into the shard's one buffer: no
  // connection holds a read buffer of its own while it waits.
  void wait_readable(const ConnectionPtr& con) {
    if (con->read_waiting || con->terminated || !con->socket || !con->socket->is_open()) return;
    con->read_waiting = true;
    con->socket->async_wait(asio::socket_base::wait_read, [con](const std::error_code& ec) {
      con->read_waiting = false;
      if (ec == asio::error::operation_aborted) return;  // the socket was closed
      con->shard->on_readable(con, ec);
    });
  }

  void on_readable(const ConnectionPtr& con, std::error_code ec) {
    for (int turn = 0; !ec && turn < reads_per_turn; ++turn) {
      if (con->terminated || !con->socket || !con->socket->is_open()) return;
      std::size_t n = con->socket->read_some(asio::buffer(read_buffer_), ec);
      if (ec == asio::error::would_block || ec == asio::error::try_again) {
        ec.clear();
        break;
      }
      if (ec) break;
      con->read_all(read_buffer_.data(), n);
    }
    if (ec) {
      // End of stream or a socket error: websocketpp's pending read hears of
      // it and ends the connection; one that was not reading is ended here.
      if (ec == asio::error::eof) con->eof();
      else con->fatal_error();
      if (!con->terminated) con->terminate(ec);
      close_socket(*con);
      return;
    }
    wait_readable(con);
  }

  // --- writing ---

  void queue_owned(Connection& con, std::string bytes) {
    if (!con.socket || !con.socket->is_open()) return;
    con.buffered += bytes.size();
    con.outgoing.push_back(OutgoingChunk::of_bytes(std::move(bytes)));
    start_write(con);
  }

  // `already_written`: bytes at the front of the stream the kernel took
  // before (write_directly); they are skipped, and no immediate write is
  // tried, since the socket just said it is full.
  void start_write(Connection& con, std::size_t already_written = 0) {
    if (con.write_in_flight || con.outgoing.empty() || !con.socket || !con.socket->is_open()) return;
    con.writing.swap(con.outgoing);
    con.write_buffers.clear();
    std::size_t total = 0;
    for (const OutgoingChunk& chunk : con.writing) {
      chunk.append_buffers(con.write_buffers);
      total += chunk.size();
    }
    // Most writes fit in the socket's buffer: one non-blocking sendmsg, done,
    // with no operation, handler or completion queued. Asio gets only what
    // the kernel did not take (or an error, which it reports on its path).
    std::error_code ec;
    std::size_t written = already_written;
    if (already_written == 0) written = con.socket->write_some(BufferView{&con.write_buffers}, ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) {
      ec.clear();
      written = 0;
    }
    if (!ec && written == total) {
      write_done(con);
      return;
    }
    if (ec) written = 0;
    detail::drop_written(con.write_buffers, written);
    con.write_in_flight = true;
    asio::async_write(*con.socket, BufferView{&con.write_buffers},
                      [con = shared(con)](const std::error_code& ec, std::size_t) { con->shard->on_written(*con, ec); });
  }

  void on_written(Connection& con, const std::error_code& ec) {
    con.write_in_flight = false;
    if (ec) {
      release_written(con);
      if (ec == asio::error::operation_aborted) return;
      if (!con.terminated) con.terminate(ec);
      close_socket(con);
      return;
    }
    write_done(con);
  }

  void release_written(Connection& con) {
    for (const OutgoingChunk& chunk : con.writing) con.buffered -= chunk.size();
    con.writing.clear();
    con.write_buffers.clear();
    if (con.writing.capacity() > 64) {  // a burst is over: give its memory back
      con.writing.shrink_to_fit();
      con.write_buffers.shrink_to_fit();
    }
  }

  // Everything in `writing` reached the kernel. Never calls into websocketpp:
  // it may run inside websocketpp's own write (queue_owned).
  void write_done(Connection& con) {
    release_written(con);
    if (con.session) host_.set_in_flight(*con.session, con.buffered);
    if (!con.outgoing.empty()) {
      start_write(con);
    } else if (con.close_when_written) {
      std::error_code ignored;
      con.socket->shutdown(asio::socket_base::shutdown_send, ignored);
      close_socket(con);
      return;
    }
    if (con.session && host_.has_frames(*con.session)) schedule_flush(con);
  }

  // websocketpp is done with the connection (close handshake over, error, or
  // a plain HTTP response sent): the socket closes once its bytes are out.
  void on_shutdown(Connection& con) {
    if (con.abort_on_shutdown || !con.write_in_flight) {
      if (!con.abort_on_shutdown && con.outgoing.empty() && con.socket && con.socket->is_open()) {
        std::error_code ignored;
        con.socket->shutdown(asio::socket_base::shutdown_send, ignored);
      }
      if (con.abort_on_shutdown || con.outgoing.empty()) {
        close_socket(con);
        return;
      }
    }
    con.close_when_written = true;
    start_write(con);
  }

  void post_flush() {
    if (flush_posted_) return;
    flush_posted_ = true;
    if (settings_->flush_delay.count() <= 0) {
      asio::post(context_, [self = shared_from_this()] { self->flush_all(); });
      return;
    }
    flush_timer_.expires_after(settings_->flush_delay);
    flush_timer_.async_wait([self = shared_from_this()](const std::error_code& ec) {
      if (!ec) self->flush_all();
    });
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
  }

  // Moves queued frames to the socket while less than the high water mark
  // is on its way; everything moved in one pass leaves in one gathered
  // write. The rest stays in the SendQueue, under its policy.
  void flush(Connection& con) {
    if (!con.session || con.get_state() != websocketpp::session::state::open || !con.socket ||
        !con.socket->is_open())
      return;
    Session& session = *con.session;
    if (!con.write_in_flight && con.outgoing.empty() && write_directly(con, session)) return;
    while (host_.has_frames(session) && con.buffered < high_water_) {
      take_frames(session, high_water_ - con.buffered);
      move_taken_to_outgoing(con);
    }
    host_.set_in_flight(session, con.buffered);
    start_write(con);
  }

  void move_taken_to_outgoing(Connection& con) {
    for (FramePtr& frame : taken_) {
      con.outgoing.push_back(OutgoingChunk::of_frame(std::move(frame)));
      con.buffered += con.outgoing.back().size();
    }
    taken_.clear();
  }

  // The common case, a connection with nothing on its way: the queued frames
  // go from the SendQueue to the socket in one sendmsg through this shard's
  // scratch buffers, touching none of the connection's own write state.
  // When the kernel does not take everything, the frames go to the
  // connection's outgoing stream and what was taken is skipped there.
  bool write_directly(Connection& con, Session& session) {
    take_frames(session, high_water_);
    scratch_headers_.resize(taken_.size());
    scratch_buffers_.clear();
    std::size_t total = 0;
    for (std::size_t i = 0; i < taken_.size(); ++i) {
      const FramePtr& frame = taken_[i];
      std::array<char, 10>& header = scratch_headers_[i];
      const std::uint8_t header_size = detail::text_frame_header(header, frame->bytes.size());
      scratch_buffers_.emplace_back(header.data(), header_size);
      scratch_buffers_.emplace_back(frame->bytes.data(), frame->bytes.size());
      total += header_size + frame->bytes.size();
    }
    std::error_code ec;
    std::size_t written = total == 0 ? 0 : con.socket->write_some(BufferView{&scratch_buffers_}, ec);
    if (ec) written = 0;  // would_block; an error surfaces on the async path
    if (written == total) {
      taken_.clear();
      host_.set_in_flight(session, con.buffered);
      if (host_.has_frames(session)) schedule_flush(con);
      return true;
    }
    // The rest waits in the connection's stream, behind what was written.
    move_taken_to_outgoing(con);
    host_.set_in_flight(session, con.buffered);
    start_write(con, written);
    return true;
  }

  // Text frames must be UTF-8. A publication's frame is by construction: its
  // topic and payload were validated when published (or, from Redis, when
  // received), so only the rare others (replies, errors) are checked here,
  // and the per-delivery path does no work for it.
  // Takes up to `max_bytes` of frames from the queue into taken_, leaving
  // out (and reporting) any that cannot go into a text frame.
  void take_frames(Session& session, std::size_t max_bytes) {
    host_.take_frames(session, taken_, max_bytes);
    taken_.erase(std::remove_if(taken_.begin(), taken_.end(), [this](const FramePtr& f) { return !valid_utf8(f); }),
                 taken_.end());
  }

  bool valid_utf8(const FramePtr& frame) {
    if (frame->is_publication()) return true;
    const bool valid = websocketpp::utf8_validator::validate(frame->bytes);
    if (!valid)
      host_.report_error("dropped a frame that is not valid UTF-8", make_error_code(Errc::invalid_payload));
    return valid;
  }

  // --- handshake ---

  bool on_validate(Connection& con) {
    if (stopped_ || !host_.accepting()) {
      con.set_status(websocketpp::http::status_code::service_unavailable);
      return false;
    }
    // websocketpp answers 101 to any key it finds; a malformed handshake is
    // refused before the host's code (origin rules, Authenticator) sees it.
    if (!detail::valid_websocket_key(con.get_request_header("Sec-WebSocket-Key"))) {
      con.set_status(websocketpp::http::status_code::bad_request);
      return false;
    }
    HandshakeRequest request = describe(con, "websocket", *settings_);
    if (!detail::origin_allowed(settings_->allowed_origins, request.header("origin"))) {
      con.set_status(websocketpp::http::status_code::forbidden);
      return false;
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
      if (auto found = host_.find_protocol(name)) {
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
    std::optional<AuthResult> verdict = host_.authenticate(request);
    if (!verdict) {
      con.set_status(websocketpp::http::status_code::internal_server_error);
      return false;
    }
    // A refused client still gets the upgrade, then a close with
    // CloseCode::unauthorized: a browser cannot read the status of a failed
    // handshake, but it can read a close code, and 4001 tells it not to
    // reconnect with the same token. No session is opened for it.
    con.pending = std::make_unique<PendingOpen>();
    con.pending->principal = std::move(verdict->principal);
    con.pending->refusal = std::move(verdict->reason);
    con.protocol = static_cast<std::uint32_t>(*protocol);
    return true;
  }

  void on_http(Connection& con) {
    HttpResponse response = host_.serve_http(settings_->http_handler, describe(con, "http", *settings_));
    con.set_status(static_cast<websocketpp::http::status_code::value>(response.status));
    con.replace_header("Content-Type", response.content_type);
    for (const auto& [name, value] : response.headers) con.append_header(name, value);
    con.set_body(response.body);
  }

  void on_open(Connection& con) {
    std::unique_ptr<PendingOpen> pending = std::move(con.pending);
    forget_handshake(con);
    end_handshake(con);
    if (stopped_ || !host_.accepting()) {
      close_connection(con, CloseCode::going_away, "server shutting down");
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

  // websocketpp keeps the handshake's request and response, header maps
  // included (about 1 KB per connection), for the connection's life; nothing
  // reads them after the open (its close logging is compiled out, and copes
  // with empty ones). The objects are members, not const: resetting them
  // through the const accessors is well-defined.
  static void forget_handshake(Connection& con) {
    const_cast<Connection::request_type&>(con.get_request()) = Connection::request_type();
    const_cast<Connection::response_type&>(con.get_response()) = Connection::response_type();
  }

  void on_message(Connection& con, const MessagePtr& msg) {
    con.last_activity = std::chrono::steady_clock::now();
    if (!con.session || con.session->closing()) return;
    if (msg->get_opcode() != websocketpp::frame::opcode::text) {
      con.session->close(CloseCode::unsupported_data, "binary frames are not supported");
      return;
    }
    host_.handle_message(*con.session, msg->get_payload());
  }

  // Every connection ends here, whatever ended it (close handshake, error,
  // handshake failure, plain HTTP request served).
  void on_terminated(Connection& con) {
    con.terminated = true;
    con.last_activity = std::chrono::steady_clock::now();
    unlist(con);
    leave_limits(con);
    con.pending.reset();
    if (con.counted) {
      con.counted = false;
      open_.fetch_sub(1, std::memory_order_relaxed);
    }
    // Bytes still on their way (a close frame to a slow reader) get
    // close_timeout before the socket is closed regardless.
    if (con.socket && con.socket->is_open() && !stopped_) lingering_.push_back(con.get_shared());
    if (!con.session) return;
    // websocketpp refused an oversized frame itself, before it became a message.
    if (con.get_local_close_code() == websocketpp::close::status::message_too_big)
      host_.count_error(Errc::message_too_large);
    host_.close_session(*con.session);
    con.session.reset();
  }

  // --- limits ---

  // Takes the new connection's places under every limit, or none: then it
  // is refused, counted under the first limit it hits, and the answer is
  // null. Refusing undoes the increments, so a burst over a limit may refuse
  // a few more than needed, never admit more than allowed.
  detail::AddressCounts::Entry* enter_limits(const asio::ip::tcp::socket& socket) {
    ConnectionLimits& limits = *limits_;
    bump(limits.taken);
    std::error_code ec;
    const asio::ip::tcp::endpoint remote = socket.remote_endpoint(ec);
    if (ec) return nullptr;  // the client is already gone
    if (limits.held.fetch_add(1) >= settings_->max_connections) {
      limits.held.fetch_sub(1);
      bump(limits.refused_too_many_connections);
      return nullptr;
    }
    detail::AddressCounts::Entry* address =
        limits.addresses.acquire(remote.address(), settings_->max_connections_per_address);
    if (!address) {
      limits.held.fetch_sub(1);
      bump(limits.refused_per_address);
      return nullptr;
    }
    if (limits.handshaking.fetch_add(1) >= settings_->max_pending_handshakes) {
      leave_limits(address, true);
      bump(limits.refused_pending_handshakes);
      return nullptr;
    }
    return address;
  }

  void leave_limits(detail::AddressCounts::Entry* address, bool handshaking) {
    if (handshaking) limits_->handshaking.fetch_sub(1);
    limits_->addresses.release(address);
    limits_->held.fetch_sub(1);
  }

  // When the connection ends, whatever ends it; once.
  void leave_limits(Connection& con) {
    if (!con.address) return;
    leave_limits(std::exchange(con.address, nullptr), std::exchange(con.handshaking, false));
  }

  void end_handshake(Connection& con) {
    if (std::exchange(con.handshaking, false)) limits_->handshaking.fetch_sub(1);
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

  // --- timeouts ---

  // One timer per shard walks its connections: handshakes and closes that
  // take too long, pings, idle timeouts, sockets left open after the end.
  std::chrono::milliseconds housekeeping_period() const {
    const SessionSettings& s = host_.session_settings();
    std::chrono::milliseconds period{500};
    if (s.ping_interval.count() > 0) period = std::min(period, s.ping_interval);
    if (s.idle_timeout.count() > 0) period = std::min(period, std::max(s.idle_timeout / 2, std::chrono::milliseconds(1)));
    return period;
  }

  void arm_housekeeping() {
    if (stopped_) return;
    housekeeping_.expires_after(housekeeping_period());
    housekeeping_.async_wait([weak = weak_from_this()](const std::error_code& ec) {
      auto self = weak.lock();
      if (self && !ec) self->housekeeping();
    });
  }

  void housekeeping() {
    if (stopped_) return;
    const SessionSettings& s = host_.session_settings();
    const auto now = std::chrono::steady_clock::now();
    const auto handshake_timeout = std::chrono::milliseconds(settings_->handshake_timeout_ms);
    const bool ping = s.ping_interval.count() > 0 && now - last_ping_ >= s.ping_interval;
    if (ping) last_ping_ = now;
    std::vector<ConnectionPtr> idle, stuck;
    for (const ConnectionPtr& con : connections_) {
      const auto state = con->get_state();
      const auto since = now - con->last_activity;
      if (state == websocketpp::session::state::open && con->session && !con->session->closing()) {
        if (s.idle_timeout.count() > 0 && since > s.idle_timeout) {
          idle.push_back(con);
          continue;
        }
        std::error_code ignored;
        if (ping) con->ping(std::string(), ignored);
      } else if ((state == websocketpp::session::state::connecting && since > handshake_timeout) ||
                 (state == websocketpp::session::state::closing && since > close_timeout)) {
        stuck.push_back(con);
      }
    }
    for (auto& con : idle) con->session->close(CloseCode::idle_timeout, "idle timeout");
    for (auto& con : stuck) abort(*con);
    // Ended connections whose last bytes a client does not take.
    std::size_t kept = 0;
    for (auto& con : lingering_) {
      if (!con->socket || !con->socket->is_open()) continue;
      if (now - con->last_activity > close_timeout) {
        close_socket(*con);
        continue;
      }
      lingering_[kept++] = std::move(con);
    }
    lingering_.resize(kept);
    arm_housekeeping();
  }

  SessionHost& host_;
  std::size_t index_;
  std::shared_ptr<const WebSocketSettings> settings_;
  std::shared_ptr<ConnectionLimits> limits_;
  asio::io_context& context_;
  Server endpoint_;
  detail::ShardAcceptor acceptor_;
  asio::steady_timer housekeeping_;
  asio::steady_timer close_deadline_;  // after stop(): when the last connections are cut off
  asio::steady_timer flush_timer_;  // with a flush_delay
  std::vector<char> read_buffer_;  // every read of this shard's connections goes through it
  std::size_t high_water_ = 0;
  std::vector<ConnectionPtr> connections_;  // every accepted connection until it terminates
  std::vector<ConnectionPtr> lingering_;    // terminated, socket still open for its last bytes
  std::vector<ConnectionPtr> dirty_;        // to flush in the next pass
  std::vector<ConnectionPtr> flushing_;     // the pass in progress (kept for its capacity)
  std::vector<std::weak_ptr<Connection>> closing_after_stop_;
  std::vector<FramePtr> taken_;
  std::vector<std::array<char, 10>> scratch_headers_;  // write_directly's frame headers
  std::vector<asio::const_buffer> scratch_buffers_;  // and its buffers
  std::chrono::steady_clock::time_point last_ping_ = std::chrono::steady_clock::now();
  std::atomic<std::size_t> open_{0};
  bool flush_posted_ = false;
  bool stopped_ = false;
};

void ConnectionState::frames_ready() {
  Connection& con = connection_of(*this);
  // Pushes before the flush see what is on its way to the socket.
  if (session) shard->host().set_in_flight(*session, buffered);
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

}  // namespace detail::ws

struct WebSocketTransport::Impl {
  Impl(Broker& b, WebSocketSettings s)
      : host(b.session_host()), settings(std::make_shared<const WebSocketSettings>(std::move(s))), shards(host) {}

  SessionHost& host;
  std::shared_ptr<const WebSocketSettings> settings;
  std::shared_ptr<detail::ws::ConnectionLimits> limits = std::make_shared<detail::ws::ConnectionLimits>();
  detail::TransportShards<detail::ws::ShardServer> shards;
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
  d.shards.start(d.settings->address, d.settings->port, d.settings->listen, [&](std::size_t shard) {
    auto server = std::make_shared<detail::ws::ShardServer>(d.host, shard, d.settings, d.limits);
    server->start();
    return server;
  });
}

void WebSocketTransport::stop() { impl_->shards.stop(); }

std::uint16_t WebSocketTransport::port() const noexcept { return impl_->shards.port(); }

std::size_t WebSocketTransport::connection_count() const noexcept {
  std::size_t n = 0;
  impl_->shards.for_each([&](const detail::ws::ShardServer& shard) { n += shard.open_connections(); });
  return n;
}

WebSocketTransportMetrics WebSocketTransport::metrics() const {
  const detail::ws::ConnectionLimits& l = *impl_->limits;
  auto get = [](const std::atomic<std::uint64_t>& a) { return a.load(std::memory_order_relaxed); };
  WebSocketTransportMetrics m;
  m.connections = get(l.taken);
  m.connections_active = l.held.load();
  m.handshakes_pending = l.handshaking.load();
  m.refused_too_many_connections = get(l.refused_too_many_connections);
  m.refused_per_address = get(l.refused_per_address);
  m.refused_pending_handshakes = get(l.refused_pending_handshakes);
  return m;
}

void detail::WebSocketHandover::adopt(WebSocketTransport& transport, std::size_t shard, asio::ip::tcp::socket socket,
                                      std::string_view received) {
  if (auto server = transport.impl_->shards.shard(shard)) server->adopt(std::move(socket), received);
}

LIVECAST_END_NAMESPACE
