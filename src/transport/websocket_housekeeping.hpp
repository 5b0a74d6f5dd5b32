// The time limits of a shard's WebSocket connections: one timer per shard
// walks its connections (handshakes and closes that take too long, pings,
// idle timeouts, sockets left open after the end for their last bytes), and
// after stop() one deadline cuts off the connections whose close handshake
// did not finish. A timer per shard rather than per connection: an idle
// connection holds no timer, and a pass costs a clock read per connection.
//
// Threads: one Housekeeping per shard, on that shard's thread only.
#pragma once

#include "websocket_connection.hpp"

#include <livecast/config.hpp>
#include <livecast/session_host.hpp>
#include <livecast/websocket_transport.hpp>

#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>

#include <chrono>
#include <memory>
#include <vector>

LIVECAST_BEGIN_NAMESPACE
namespace detail::ws {

// How long a close handshake, or the last bytes after the end, may take.
inline constexpr std::chrono::milliseconds close_timeout{2000};

class Housekeeping {
 public:
  Housekeeping(ShardServer& shard, SessionHost& host, std::shared_ptr<const WebSocketSettings> settings,
               asio::io_context& context);

  // Starts the periodic pass.
  void start() { arm(); }
  // An ended connection whose socket still has bytes on their way (a close frame to a slow reader): closed once they are out or
  // close_timeout passed, whichever is first.
  void linger(LeanPtr con) { lingering_.push_back(std::move(con)); }
  // The shard stops: no more passes. `closing`: connections told to close;
  // those still open after close_timeout are cut off, lingering ones too.
  void stop(std::vector<std::weak_ptr<LeanConnection>> closing);

 private:
  std::chrono::milliseconds period() const;
  void arm();
  void pass();

  ShardServer& shard_;
  SessionHost& host_;
  std::shared_ptr<const WebSocketSettings> settings_;
  asio::steady_timer timer_;
  asio::steady_timer close_deadline_;        // after stop(): when the last connections are cut off
  std::vector<LeanPtr> lingering_;     // ended, socket still open for its last bytes
  std::vector<std::weak_ptr<LeanConnection>> closing_after_stop_;
  std::chrono::steady_clock::time_point last_ping_ = std::chrono::steady_clock::now();
  bool stopped_ = false;
};

}  // namespace detail::ws
LIVECAST_END_NAMESPACE
