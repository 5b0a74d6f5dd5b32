// How the WebSocket transport configures websocketpp, and the state it keeps
// inside each of websocketpp's connection objects. In a header of its own so
// that everything driving websocketpp the way the transport does (the
// transport's own files, a fuzz target feeding a connection bytes) uses the
// very same configuration.
//
// Threads: a connection and its state are touched only on the thread of the
// shard that took it.
#pragma once

#include "address_counts.hpp"
#include "byte_stream.hpp"
#include "http_request_parser.hpp"
#include "websocket_frames.hpp"

#include <livecast/config.hpp>
#include <livecast/principal.hpp>
#include <livecast/session_host.hpp>

#include <websocketpp/concurrency/none.hpp>
#include <websocketpp/config/core.hpp>
#include <websocketpp/logger/stub.hpp>
#include <websocketpp/server.hpp>

#include <asio/buffer.hpp>
#include <asio/ip/tcp.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

LIVECAST_BEGIN_NAMESPACE
namespace detail::ws {

class ShardServer;
}  // namespace detail::ws
namespace detail {
class EngineIoUpgradeSource;  // engineio.hpp
}
namespace detail::ws {

// What the handshake decided, kept until the connection opens.
struct PendingOpen {
  std::optional<Principal> principal;  // empty: the Authenticator refused
  std::string refusal;
  // A protocol that connects in band (Socket.IO): nobody is authenticated
  // yet; the session opens with this request, for its connect to complete.
  std::unique_ptr<HandshakeRequest> in_band;
  // Engine.IO's upgrade: the polling session this WebSocket is to take over
  // once the client has probed it and sent "5"; kept past the open until then.
  std::shared_ptr<EngineIoUpgradeSource> upgrade_from;
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
  // The opening handshake's request, read by livecast's HTTP parser before
  // websocketpp sees it (HandshakeAdmission::read_request_head); null once
  // it was handed on or refused.
  std::unique_ptr<HttpRequestParser> request_head;
  std::optional<ByteStream> stream;       // from the accept on: TCP, or TLS over it
  std::vector<OutgoingChunk> outgoing;    // not yet handed to the socket
  std::vector<OutgoingChunk> writing;     // in the write under way
  std::vector<asio::const_buffer> write_buffers;  // `writing` as the socket sees it
  std::size_t buffered = 0;               // bytes in `outgoing` and `writing`
  std::size_t owned_buffered = 0;         // of them, websocketpp's own (pongs, close frames)
  // Its place under max_connections_per_address; null once given back with
  // its place under max_connections (ShardServer::leave_limits).
  AddressCounts::Entry* address = nullptr;
  // Activity (messages, pongs); while connecting, the accept; once closing,
  // when the close began; once terminated, when it did.
  std::chrono::steady_clock::time_point last_activity{};
  std::uint32_t slot = no_slot;           // index in ShardServer::connections_
  std::uint32_t protocol = 0;
  bool flush_scheduled = false;           // in the shard's dirty list
  bool counted = false;                   // counted in ShardServer::open_
  bool handshaking = false;               // counted in ConnectionLimits::handshaking
  bool write_in_flight = false;
  bool read_waiting = false;              // an async_wait for readability is pending
  bool terminated = false;                // websocketpp is done with it
  bool close_when_written = false;        // websocketpp shut it down: close the socket once drained
  bool abort_on_shutdown = false;         // close the socket at once, dropping what is queued
};

// websocketpp for one thread per endpoint and little memory per connection:
// the iostream transport (our sockets, see the top of websocket.cpp), no
// locks, logging compiled out, a small read buffer, no extensions
// (permessage-deflate stays off: frames are shared, never compressed per
// connection). Timeouts are the shard's (housekeeping()); size limits are set
// on the endpoint from the settings at run time.
// Note: websocketpp 0.8.2's headers are not valid C++20 (template-ids on
// constructors and destructors), so whatever includes this is compiled as C++17.
struct ServerConfig : websocketpp::config::core {
  using type = ServerConfig;
  using base = websocketpp::config::core;

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
  };
  using transport_type = websocketpp::transport::iostream::endpoint<transport_config>;

  static const bool enable_multithreading = false;
  static const bool enable_extensions = false;
  static const websocketpp::log::level elog_level = websocketpp::log::elevel::none;
  static const websocketpp::log::level alog_level = websocketpp::log::alevel::none;
  // Inline in every connection object. Clients send small messages (a
  // subscribe is under 200 bytes); a larger one takes several reads.
  static const std::size_t connection_read_buffer_size = 512;
};

using Server = websocketpp::server<ServerConfig>;
using Connection = Server::connection_type;
using ConnectionPtr = Server::connection_ptr;
using MessagePtr = ServerConfig::message_type::ptr;

inline Connection& connection_of(ConnectionState& state) { return static_cast<Connection&>(state); }

}  // namespace detail::ws
LIVECAST_END_NAMESPACE
