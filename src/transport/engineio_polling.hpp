// Engine.IO v4's polling transport on the HTTP transport, for Socket.IO
// clients (socketio.hpp) that cannot or do not yet use a WebSocket:
//   GET  <socketio_path>?EIO=4&transport=polling           handshake: opens a session, answers its open packet
//   GET  <socketio_path>?EIO=4&transport=polling&sid=S     waits for the session's packets, answers them batched
//   POST <socketio_path>?EIO=4&transport=polling&sid=S     the client's packets, batched; answered "ok"
//
// Unlike the stateless /poll, an Engine.IO session outlives its requests:
// it lives in a registry keyed by its sid, detached from any connection,
// and each request finds it there. The sid is unguessable and starts with
// the index of the shard that owns the session (engineio.hpp), because the
// next request may arrive on any shard's connection: the request is then
// carried to the owner's thread and its answer carried back (a session is
// only touched on its shard's thread, a connection only on its own).
//
// Threads: EngineIoPolling's members run on the thread of the shard named
// by their `shard` argument (the connection's, or for close_all the
// sessions'). Each shard's part of the registry is touched only there.
#pragma once

#include "engineio.hpp"
#include "http_connection.hpp"
#include "http_counters.hpp"

#include <livecast/config.hpp>
#include <livecast/handshake.hpp>
#include <livecast/http_transport.hpp>
#include <livecast/session_host.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

LIVECAST_BEGIN_NAMESPACE
namespace detail {

// Answers `c` with Engine.IO's refusal (engineio.hpp), counted (unknown
// sessions apart from the rest).
void refuse_engineio(HttpConnection& c, HttpCounters& counters, EngineIoError error);

// The packets of a POSTed body, separated by "\x1e"; empty packets are
// dropped (a trailing separator).
std::vector<std::string_view> split_engineio_payload(std::string_view body, std::string_view separator);

// --- the transport ---

class EngineIoPollingSession;  // engineio_session.cpp
class EngineIoAnswer;          // an exchange waiting for its answer from the session's shard

class EngineIoPolling : public std::enable_shared_from_this<EngineIoPolling> {
 public:
  // `protocol`: the broker's socket.io protocol.
  // `upgrades`: a WebSocket transport is attached to the same port
  // (HttpTransport::serve_websocket), so sessions may upgrade to it.
  EngineIoPolling(SessionHost& host, std::size_t protocol, std::shared_ptr<const HttpTransportSettings> settings,
                  std::shared_ptr<HttpCounters> counters, bool upgrades = false);
  ~EngineIoPolling();

  // A handshake that passed the router's checks (origin, draining, rate):
  // opens the session on `shard` (the connection's) and answers its open
  // packet.
  void handshake(HttpConnection& c, std::size_t shard, HandshakeRequest request);
  // A GET or POST for an existing session, arriving on `shard`'s connection.
  void poll(HttpConnection& c, std::size_t shard, const std::string& sid);
  void post(HttpConnection& c, std::size_t shard, const std::string& sid);
  // The transport stops: every session of `shard` is closed, its waiting GET
  // answered with what it has and the close packet. New handshakes are
  // refused from the first call on.
  void close_all(std::size_t shard);
  bool stopping() const noexcept { return stopping_.load(std::memory_order_relaxed); }

  // --- for the sessions and answers (engineio_session.cpp) ---
  SessionHost& host() const noexcept { return host_; }
  const HttpTransportSettings& settings() const noexcept { return *settings_; }
  HttpCounters& counters() const noexcept { return *counters_; }
  std::size_t protocol() const noexcept { return protocol_; }
  // Between the packets of a GET's answer and of a POST's body ("\x1e").
  const std::string& separator() const noexcept { return separator_; }
  // Client gone: no GET for this long (Engine.IO's pingInterval + pingTimeout).
  std::chrono::milliseconds heartbeat_timeout() const noexcept { return heartbeat_timeout_; }
  std::chrono::milliseconds liveness_window() const noexcept { return ping_interval_ + heartbeat_timeout_; }
  std::chrono::milliseconds ping_interval() const noexcept { return ping_interval_; }
  // The session of `sid` on `shard`, or null. On `shard`'s thread.
  std::shared_ptr<EngineIoPollingSession> find(std::size_t shard, const std::string& sid) const;
  void forget(std::size_t shard, const std::string& sid);

 private:
  // Carries `request` to the owner of `sid`; answers 400 when there is none.
  void route(HttpConnection& c, std::size_t shard, const std::string& sid, bool is_post);

  SessionHost& host_;
  std::size_t protocol_;
  std::shared_ptr<const HttpTransportSettings> settings_;
  std::shared_ptr<HttpCounters> counters_;
  std::chrono::milliseconds ping_interval_;
  std::chrono::milliseconds heartbeat_timeout_;
  std::string separator_;
  bool upgrades_;
  std::atomic<bool> stopping_{false};
  // Index: shard. Each map only on its shard's thread.
  std::vector<std::unordered_map<std::string, std::shared_ptr<EngineIoPollingSession>>> sessions_;
};

}  // namespace detail
LIVECAST_END_NAMESPACE
