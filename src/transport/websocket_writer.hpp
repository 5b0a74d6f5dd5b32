// How a shard's WebSocket connections write: each connection's outgoing
// byte stream (bytes of its own: websocketpp's handshake response, control
// and close frames; and the session's frames, whose payloads every subscriber
// shares) goes to its socket in gathered writes, at most one in flight per
// connection, and sessions with frames queued are flushed once per turn of
// the event loop (or after WebSocketSettings::flush_delay).
//
// Threads: one ShardWriter per shard, called on that shard's thread only.
#pragma once

#include "websocket_connection.hpp"

#include <livecast/config.hpp>
#include <livecast/publication.hpp>
#include <livecast/session_host.hpp>
#include <livecast/websocket_transport.hpp>

#include <asio/buffer.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>

#include <array>
#include <cstddef>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

LIVECAST_BEGIN_NAMESPACE
namespace detail::ws {

class ShardWriter {
 public:
  ShardWriter(ShardServer& shard, SessionHost& host, std::shared_ptr<const WebSocketSettings> settings,
              asio::io_context& context);

  // Bytes on their way (handed to the socket or queued for it) above which a
  // connection takes no more frames from its session, and is closed without
  // a close handshake (ShardServer::close_connection).
  std::size_t high_water() const noexcept { return high_water_; }
  // A connection's own bytes (pongs above all) it may have waiting
  // for its socket; beyond, its session is closed as a slow consumer. Apart
  // from the frames' high water: one large frame in flight must not make a
  // pong behind it look like a flood.
  static constexpr std::size_t max_owned_bytes = 64 * 1024;

  // The session's queue became non-empty: flush it once, later in this turn
  // of the event loop, together with every other connection that has frames.
  void schedule_flush(LeanConnection& con);
  // Bytes of the connection's own (the handshake's answer, control and
  // close frames), in order with the frames.
  void queue_owned(LeanConnection& con, std::string bytes);
  // The connection ended (close handshake over, error, or a plain HTTP
  // response sent): the socket closes once its bytes are out.
  void on_shutdown(LeanConnection& con);
  // The shard stops: nothing more is flushed.
  void stop();

  // Closes the socket now, dropping what is queued; its pending wait and
  // write are cancelled and release their references to the connection.
  static void close_socket(LeanConnection& con);

 private:
  void start_write(LeanConnection& con, std::size_t already_written = 0, bool socket_full = false);
  void write_some(LeanConnection& con);
  void wait_writable(LeanConnection& con);
  void on_written(LeanConnection& con, const std::error_code& ec);
  void release_written(LeanConnection& con);
  void write_done(LeanConnection& con);
  void post_flush();
  void flush_all();
  void flush(LeanConnection& con);
  void move_taken_to_outgoing(LeanConnection& con);
  bool write_directly(LeanConnection& con, Session& session);
  void take_frames(Session& session, std::size_t max_bytes);
  bool valid_utf8(const FramePtr& frame);

  ShardServer& shard_;
  SessionHost& host_;
  std::shared_ptr<const WebSocketSettings> settings_;
  asio::io_context& context_;
  asio::steady_timer flush_timer_;  // with a flush_delay
  std::size_t high_water_ = 0;
  std::vector<LeanPtr> dirty_;     // to flush in the next pass
  std::vector<LeanPtr> flushing_;  // the pass in progress (kept for its capacity)
  std::vector<FramePtr> taken_;
  std::vector<std::array<char, 10>> scratch_headers_;  // write_directly's frame headers
  std::vector<asio::const_buffer> scratch_buffers_;    // and its buffers
  bool flush_posted_ = false;
  bool stopped_ = false;
};

}  // namespace detail::ws
LIVECAST_END_NAMESPACE
