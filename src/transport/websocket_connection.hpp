// One WebSocket connection of a shard, from the accept to the end: what an
// open connection keeps. websocketpp's connection object is there only for
// the opening handshake (`handshake`: admission, the Authenticator, the 101
// or a refusal); once the connection is open it goes, and the connection's
// frames are read by WebSocketFrameReader and written by ShardWriter.
// Idle connections are the norm, so this is what most of a server's memory
// per connection is: keep it small (a few hundred bytes, no heap memory of
// its own while idle).
//
// Threads: a connection is touched only on the thread of the shard that took it.
#pragma once

#include "address_counts.hpp"
#include "byte_stream.hpp"
#include "websocket_config.hpp"
#include "websocket_frame_reader.hpp"
#include "websocket_frames.hpp"

#include <livecast/config.hpp>
#include <livecast/session_host.hpp>

#include <asio/buffer.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <string_view>
#include <utility>
#include <vector>

LIVECAST_BEGIN_NAMESPACE
namespace detail::ws {

class ShardServer;

// A connection's bytes on their way to the socket. Only while there are any:
// most writes go straight from the session's queue to the socket
// (ShardWriter::write_directly), so an idle connection holds none of this.
struct WriteQueue {
  std::vector<OutgoingChunk> outgoing;            // not yet handed to the socket
  std::vector<OutgoingChunk> writing;             // in the write under way
  std::vector<asio::const_buffer> write_buffers;  // `writing` as the socket sees it
};

class LeanConnection final : public SessionConnection, public std::enable_shared_from_this<LeanConnection> {
 public:
  static constexpr std::uint32_t no_slot = std::numeric_limits<std::uint32_t>::max();

  enum class Phase : std::uint8_t {
    handshake,  // websocketpp reads the opening handshake (`handshake` is set)
    open,       // frames both ways
    closing,    // our close frame is sent; the client's is awaited
    ended,      // over; the socket may still be open for its last bytes
  };

  LeanConnection(std::shared_ptr<ShardServer> s, ByteStream bytes) : shard(std::move(s)), stream(std::move(bytes)) {}

  void frames_ready() override;
  void close(CloseCode code, std::string_view reason) override;

  bool in_handshake() const noexcept { return phase == Phase::handshake; }
  bool has_outgoing() const noexcept { return writes && !writes->outgoing.empty(); }
  WriteQueue& write_queue() {
    if (!writes) writes = std::make_unique<WriteQueue>();
    return *writes;
  }
  bool ended() const noexcept { return phase == Phase::ended; }

  // Keeps the shard (and its endpoint) alive while this connection exists,
  // so that handlers firing after stop() find it.
  std::shared_ptr<ShardServer> shard;
  std::shared_ptr<Session> session;  // from the open until the close is reported
  // websocketpp's connection, from the accept until the handshake is over
  // (ShardServer::release_handshake).
  ConnectionPtr handshake;
  // Engine.IO's upgrade: the polling session to take over, from the open
  // until the client's "5" (or a refusal).
  std::unique_ptr<PendingOpen> pending;
  ByteStream stream;                      // TCP, or TLS over it
  // While bytes wait or are being written; kept while a write is in flight
  // (the write reads its buffers), released once everything is written.
  std::unique_ptr<WriteQueue> writes;
  std::size_t buffered = 0;               // bytes in `writes`
  std::size_t owned_buffered = 0;         // of them, our own (handshake answer, control and close frames)
  // Its place under max_connections_per_address; null once given back with
  // its place under max_connections (HandshakeAdmission::leave_limits).
  AddressCounts::Entry* address = nullptr;
  // Activity (messages, pings, pongs); while connecting, the accept; once
  // closing, when the close began; once ended, when it did.
  std::chrono::steady_clock::time_point last_activity{};
  WebSocketFrameReader reader;            // the client's frames, once open
  std::uint32_t slot = no_slot;           // index in ShardServer::connections_
  std::uint32_t protocol = 0;
  Phase phase = Phase::handshake;
  bool flush_scheduled = false;           // in the shard's dirty list
  bool counted = false;                   // counted in ShardServer::open_
  bool handshaking = false;               // counted in ConnectionLimits::handshaking
  bool write_in_flight = false;
  bool read_waiting = false;              // a wait for readability (or a TLS read) is pending
  bool close_when_written = false;        // ended: close the socket once drained
  bool abort_on_shutdown = false;         // close the socket at once, dropping what is queued
};

using LeanPtr = std::shared_ptr<LeanConnection>;

}  // namespace detail::ws
LIVECAST_END_NAMESPACE
