// How the WebSocket transport configures websocketpp (for opening handshakes
// only: an open connection's frames are ours, websocket_frame_reader.hpp),
// and the state it keeps inside each of websocketpp's connection objects.
// In a header of its own so that everything driving websocketpp the way the
// transport does (the transport's own files, a fuzz target feeding a
// connection bytes) uses the very same configuration.
//
// Threads: a connection and its state are touched only on the thread of the
// shard that took it.
#pragma once

#include "http_request_parser.hpp"

#include <livecast/config.hpp>
#include <livecast/principal.hpp>
#include <livecast/session_host.hpp>

#include <websocketpp/concurrency/none.hpp>
#include <websocketpp/config/core.hpp>
#include <websocketpp/logger/stub.hpp>
#include <websocketpp/server.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

LIVECAST_BEGIN_NAMESPACE
namespace detail::ws {

class ShardServer;
class LeanConnection;  // websocket_connection.hpp
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

// Our part of websocketpp's connection object (its user-supplied base
// class), which lives only for the opening handshake: what the handshake
// learns, for the open. Everything else of a connection is in its
// LeanConnection (websocket_connection.hpp), which outlives this.
class ConnectionState {
 public:
  // The connection this handshake is for; null once websocketpp's object is
  // let go (its handlers then do nothing).
  LeanConnection* lean = nullptr;
  std::unique_ptr<PendingOpen> pending;  // what validate decided, for on_open
  // The opening handshake's request, read by livecast's HTTP parser before
  // websocketpp sees it (HandshakeAdmission::read_request_head); null once
  // it was handed on or refused.
  std::unique_ptr<HttpRequestParser> request_head;
  std::uint32_t protocol = 0;  // the subprotocol validate selected
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
  // Inline in every connection object, which reads nothing but the
  // opening handshake's request (already whole: read_request_head).
  static const std::size_t connection_read_buffer_size = 512;
};

using Server = websocketpp::server<ServerConfig>;
using Connection = Server::connection_type;
using ConnectionPtr = Server::connection_ptr;
using MessagePtr = ServerConfig::message_type::ptr;

}  // namespace detail::ws
LIVECAST_END_NAMESPACE
