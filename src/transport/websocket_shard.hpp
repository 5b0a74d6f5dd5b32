// One shard's part of the WebSocket transport: its websocketpp endpoint (for
// opening handshakes), its listening socket, its connections
// (LeanConnection) from the accept to the end, and the parts they go
// through: HandshakeAdmission (limits, the handshake's checks), ShardWriter
// (gathered writes) and Housekeeping (time limits). Reading is here:
// readiness, then non-blocking reads into one shard-wide buffer, handed to
// websocketpp during the handshake and to the connection's
// WebSocketFrameReader once open (websocket_open.cpp: frames, messages and
// the close handshake).
//
// Threads: every member runs on the shard's thread (construction and stop()
// included: the transport uses SessionHost::execute_on_shard).
#pragma once

#include "byte_stream.hpp"
#include "shard_listeners.hpp"
#include "tls_context.hpp"
#include "websocket_admission.hpp"
#include "websocket_config.hpp"
#include "websocket_connection.hpp"
#include "websocket_housekeeping.hpp"
#include "websocket_writer.hpp"

#include <livecast/config.hpp>
#include <livecast/session_host.hpp>
#include <livecast/websocket_transport.hpp>

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

LIVECAST_BEGIN_NAMESPACE
namespace detail::ws {

class ShardServer : public std::enable_shared_from_this<ShardServer> {
 public:
  // `tls`: the transport's TLS context for its own port; null: plain TCP.
  ShardServer(SessionHost& host, std::size_t index, std::shared_ptr<const WebSocketSettings> settings,
              std::shared_ptr<ConnectionLimits> limits, std::shared_ptr<TlsContext> tls);

  ShardServer(const ShardServer&) = delete;
  ShardServer& operator=(const ShardServer&) = delete;

  asio::io_context& context() noexcept { return context_; }
  SessionHost& host() noexcept { return host_; }
  std::size_t open_connections() const noexcept { return open_.load(std::memory_order_relaxed); }

  // Starts the shard's timers; connections come from listen() or adopt().
  void start() { housekeeping_.start(); }

  // Binds and starts accepting. Throws std::system_error.
  void listen(const asio::ip::tcp::endpoint& where);
  std::uint16_t local_port() const { return acceptor_.local_port(); }

  // A connected stream, from this shard's acceptor or handed over by
  // another transport on this shard's port (an upgrade request it read
  // first: `received`, the bytes it already took from the stream; TLS, if
  // any, already past its handshake). `start_tls`: a plain socket from our
  // own acceptor that TLS is to be started on.
  // Beyond a limit it is closed at once, unanswered: under a flood the
  // cheapest refusal, and nothing of the client's is read.
  // `upgrade_from`: the Engine.IO polling session (of this shard) that the
  // request's sid names, which this WebSocket may take over.
  void adopt(ByteStream stream, std::string_view received, bool start_tls = false,
             std::shared_ptr<EngineIoUpgradeSource> upgrade_from = nullptr);

  // Stops accepting, reports every session closed and closes every connection
  // with going_away. Afterwards nothing here calls the broker.
  void stop();

  // Closes gracefully with `code` (a close frame, then the client's is
  // awaited), or at once when the connection is backed up (the close frame
  // would wait behind data the client does not read), closed for being a
  // slow consumer, or still in its handshake. May report the session closed
  // inline, so it is never called from inside a broker call. A reason too
  // long for the close frame is cut at a whole UTF-8 character.
  void close_connection(LeanConnection& con, CloseCode code, std::string_view reason);

  // Ends the connection now; the socket is closed without waiting for
  // queued bytes.
  void abort(LeanConnection& con);
  // Ends the connection: its socket closes once its queued bytes are out
  // (or at once after abort_on_shutdown), and its session is reported closed.
  void end(LeanConnection& con);

  // An owning pointer to a connection: a copy of the one in connections_
  // (one atomic increment) rather than a weak_ptr lock, since this runs for
  // every write.
  LeanPtr shared(LeanConnection& con) {
    return con.slot != LeanConnection::no_slot ? connections_[con.slot] : con.shared_from_this();
  }
  // Every accepted connection until it ends.
  const std::vector<LeanPtr>& connections() const noexcept { return connections_; }

  // The socket is readable (or failed): reads what it holds (the pending
  // wait's handler, websocket_shard.cpp).
  void on_readable(const LeanPtr& con, std::error_code ec);

  ShardWriter& writer() noexcept { return writer_; }
  Housekeeping& housekeeping() noexcept { return housekeeping_; }

 private:
  // Reads per readiness before other connections get their turn.
  static constexpr int reads_per_turn = 4;
  // A TLS connection's read buffer (plain ones share read_buffer_).
  static constexpr std::size_t tls_read_bytes = 4096;

  // --- the opening handshake (websocket_shard.cpp) ---
  void install_handlers(Connection& con);
  void start_tls_handshake(const LeanPtr& con);
  // Answers a request refused before websocketpp saw it, then ends the connection.
  void refuse(LeanConnection& con, std::string response);
  void on_open(Connection& handshake);
  void open_in_band(LeanConnection& con, HandshakeRequest request);
  // Lets websocketpp's connection object go once the handshake is over.
  static void release_handshake(LeanConnection& con);
  // websocketpp ended the connection during its handshake, or we did.
  void on_handshake_terminated(Connection& handshake);

  // --- reading (websocket_shard.cpp) ---
  void wait_readable(const LeanPtr& con);
  void on_read_error(const LeanPtr& con, const std::error_code& ec);
  // Bytes from the client: the handshake's request head goes through
  // HandshakeAdmission::read_request_head, then to websocketpp; once the
  // connection is open, to read_frames.
  void receive(LeanConnection& con, std::string_view bytes);

  // --- an open connection (websocket_open.cpp) ---
  void read_frames(LeanConnection& con, std::string_view bytes);
  // Engine.IO's upgrade: the probe, then "5" (the WebSocket takes the session over).
  void on_upgrade_message(LeanConnection& con, const std::string& message);
  void on_message(LeanConnection& con, WebSocketFrameReader::Event kind, std::string message);
  void on_close_frame(LeanConnection& con, std::string payload);
  void on_frame_error(LeanConnection& con);
  // Sends a close frame and waits for the client's.
  void send_close(LeanConnection& con, std::uint16_t code, std::string_view reason);
  // Every connection ends here, whatever ended it (close handshake, error,
  // handshake refused, plain HTTP request served).
  void on_terminated(LeanConnection& con);
  void unlist(LeanConnection& con);

  SessionHost& host_;
  std::size_t index_;
  std::shared_ptr<const WebSocketSettings> settings_;
  std::shared_ptr<TlsContext> tls_;  // null: plain TCP on our own port
  asio::io_context& context_;
  Server endpoint_;
  ShardAcceptor acceptor_;
  HandshakeAdmission admission_;
  ShardWriter writer_;
  Housekeeping housekeeping_;
  std::vector<char> read_buffer_;  // every read of this shard's connections goes through it
  std::vector<LeanPtr> connections_;  // every accepted connection until it ends
  std::atomic<std::size_t> open_{0};
  bool stopped_ = false;
};

}  // namespace detail::ws
LIVECAST_END_NAMESPACE
