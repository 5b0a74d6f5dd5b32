// Engine.IO v4, the transport layer under Socket.IO, as both of livecast's
// transports serve it at their socketio_path: what a request must say to be
// one (`EIO=4`, `transport=websocket|polling`, `sid`), the errors Engine.IO
// answers with, the session ids it hands out, and its heartbeat timing. The
// packets themselves are the socket.io Protocol's (src/protocol/socketio.cpp).
#pragma once

#include <livecast/config.hpp>
#include <livecast/handshake.hpp>
#include <livecast/session.hpp>

#include <openssl/rand.h>

#include <array>
#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

LIVECAST_BEGIN_NAMESPACE
namespace detail {

// Engine.IO's error answers: HTTP 400 with one of these bodies.
enum class EngineIoError { unknown_transport = 0, unknown_sid = 1, bad_handshake_method = 2, bad_request = 3,
                           forbidden = 4, unsupported_protocol_version = 5 };

inline std::string engineio_error_body(EngineIoError e) {
  switch (e) {
    case EngineIoError::unknown_transport: return R"({"code":0,"message":"Transport unknown"})";
    case EngineIoError::unknown_sid: return R"({"code":1,"message":"Session ID unknown"})";
    case EngineIoError::bad_handshake_method: return R"({"code":2,"message":"Bad handshake method"})";
    case EngineIoError::bad_request: return R"({"code":3,"message":"Bad request"})";
    case EngineIoError::forbidden: return R"({"code":4,"message":"Forbidden"})";
    case EngineIoError::unsupported_protocol_version:
      return R"({"code":5,"message":"Unsupported protocol version"})";
  }
  return R"({"code":3,"message":"Bad request"})";
}

// What an Engine.IO request's query asks for, or the error to answer with.
struct EngineIoRequest {
  enum class Transport { websocket, polling };
  Transport transport = Transport::polling;
  std::string sid;  // empty: a new session
  std::optional<EngineIoError> error;
};

inline EngineIoRequest read_engineio_request(const HandshakeRequest& request) {
  EngineIoRequest r;
  if (request.query_param("EIO") != "4") {
    r.error = EngineIoError::unsupported_protocol_version;
    return r;
  }
  const std::string& transport = request.query_param("transport");
  if (transport == "websocket")
    r.transport = EngineIoRequest::Transport::websocket;
  else if (transport == "polling")
    r.transport = EngineIoRequest::Transport::polling;
  else
    r.error = EngineIoError::unknown_transport;
  r.sid = request.query_param("sid");
  return r;
}

// A session id for a new Engine.IO session: the owning shard, so that a
// request reaching another shard finds it, then 120 random bits (OpenSSL's
// generator), so that nobody can guess another client's sid; base64url.
inline std::string make_engineio_sid(std::size_t shard) {
  static constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::array<unsigned char, 15> random{};
  if (RAND_bytes(random.data(), static_cast<int>(random.size())) != 1) {
    // Only when the OS has no entropy to give: a sid must never be
    // guessable, so none is better than a weak one.
    return {};
  }
  std::string sid = std::to_string(shard) + ".";
  for (std::size_t i = 0; i < random.size(); i += 3) {
    const unsigned v = (unsigned(random[i]) << 16) | (unsigned(random[i + 1]) << 8) | unsigned(random[i + 2]);
    for (int shift = 18; shift >= 0; shift -= 6) sid += alphabet[(v >> shift) & 63];
  }
  return sid;
}

// The shard a sid names; npos when it names none.
inline std::size_t engineio_sid_shard(std::string_view sid) {
  const std::size_t dot = sid.find('.');
  if (dot == 0 || dot == std::string_view::npos || dot > 4) return std::string_view::npos;
  std::size_t shard = 0;
  for (char c : sid.substr(0, dot)) {
    if (c < '0' || c > '9') return std::string_view::npos;
    shard = shard * 10 + static_cast<std::size_t>(c - '0');
  }
  return shard;
}

// A polling session a WebSocket may take over (Engine.IO's upgrade: the
// client probes the WebSocket with "2probe", is answered "3probe", then
// sends "5"). On the session's shard thread, which is the WebSocket's.
class EngineIoUpgradeSource {
 public:
  virtual ~EngineIoUpgradeSource() = default;
  // The client probed the WebSocket ("2probe"): its polling loop must end
  // before it sends "5", so its GETs are answered at once from now on (with
  // a noop when there is nothing else), as Engine.IO's servers do.
  virtual void probed() = 0;
  // The client sent "5": polling stops (its waiting GET is released with a
  // noop), the sid is forgotten, and the broker session is handed over, for
  // the WebSocket to rebind (SessionHost::rebind). Null when the session
  // ended meanwhile.
  virtual std::shared_ptr<Session> hand_over() = 0;
};

// Engine.IO's pingTimeout: how long past a heartbeat the client waits for
// the next before it gives up. The server closes a session that sent
// nothing for idle_timeout; the client should give up no later.
inline std::chrono::milliseconds engineio_heartbeat_timeout(const SessionSettings& s) {
  const auto rest = s.idle_timeout - s.ping_interval;
  return rest < std::chrono::milliseconds(1000) ? std::chrono::milliseconds(1000) : rest;
}

}  // namespace detail
LIVECAST_END_NAMESPACE
