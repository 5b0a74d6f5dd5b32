// Who may become a WebSocket connection, and then a session: the connection
// limits a socket must fit under when it is taken, and the opening
// handshake's checks (key, origin, path, version, subprotocol) up to the
// Authenticator's verdict, plus the plain HTTP requests the same port serves
// through the host's HttpHandler.
//
// Threads: one HandshakeAdmission per shard, called on that shard's thread;
// the ConnectionLimits behind it are shared by every shard (atomics, and
// AddressCounts' mutex taken once when a connection starts and once when it ends).
#pragma once

#include "address_counts.hpp"
#include "websocket_config.hpp"
#include "websocket_connection.hpp"

#include <livecast/config.hpp>
#include <livecast/handshake.hpp>
#include <livecast/session_host.hpp>
#include <livecast/websocket_transport.hpp>

#include <asio/ip/tcp.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

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
  AddressCounts addresses;
};

// The request as the host's code sees it (Authenticator, HttpHandler).
HandshakeRequest describe(Connection& con, const char* transport, const WebSocketSettings& settings);

class HandshakeAdmission {
 public:
  HandshakeAdmission(SessionHost& host, std::shared_ptr<const WebSocketSettings> settings,
                     std::shared_ptr<ConnectionLimits> limits)
      : host_(host), settings_(std::move(settings)), limits_(std::move(limits)) {}

  // --- limits ---

  // Takes the new connection's places under every limit, or none: then it
  // is refused, counted under the first limit it hits, and the answer is
  // null. Refusing undoes the increments, so a burst over a limit may refuse
  // a few more than needed, never admit more than allowed.
  AddressCounts::Entry* enter_limits(const asio::ip::tcp::socket& socket);
  void leave_limits(AddressCounts::Entry* address, bool handshaking);
  // When the connection ends, whatever ends it; once.
  void leave_limits(LeanConnection& con);
  // The handshake completed: the connection no longer counts as pending.
  void end_handshake(LeanConnection& con);

  // --- handshake ---

  // What to do with bytes that arrived while the request's head is read.
  struct RequestHeadStep {
    // For websocketpp: the request as livecast's parser read it
    // (format_request_head, then its body). Empty: nothing yet.
    std::string forward;
    // Whatever followed the request (frames sent right behind the
    // handshake), for the connection once it is open.
    std::string rest;
    // A complete HTTP answer refusing the request; the connection then ends.
    std::string refusal;
  };
  // Reads the opening handshake's request with the HTTP transport's parser
  // before websocketpp sees a byte of it, so that one parser, with one set
  // of rules, reads every request on every port: garbage is refused at its
  // first impossible byte (not after the handshake timeout), a bare LF, a
  // control character in a field, an invalid field name or a missing Host
  // get 400 at once, and websocketpp only ever reads well-formed requests.
  RequestHeadStep read_request_head(Connection& con, std::string_view bytes);

  // websocketpp's validate handler: true accepts the upgrade (a refused
  // token too, see the definition); false answers with the status set on
  // `con`. `stopped`: the shard is stopping.
  bool validate(Connection& con, bool stopped);
  // The part of validate() for Engine.IO's websocket transport (Socket.IO
  // clients at socketio_path): its query, then an in-band open.
  bool validate_engineio(Connection& con, HandshakeRequest request, std::size_t protocol);
  // websocketpp's http handler: a plain request, answered by the HttpHandler.
  void serve_http(Connection& con);

 private:
  SessionHost& host_;
  std::shared_ptr<const WebSocketSettings> settings_;
  std::shared_ptr<ConnectionLimits> limits_;
};

}  // namespace detail::ws
LIVECAST_END_NAMESPACE
