// One client connection as the core sees it: who it is, what it subscribed
// to, its counters, and a way to close it. A Session knows neither the wire
// format (that is the Protocol's) nor the socket (that is the Transport's);
// its bounded send queue and rate limit are the broker's, in src/.
//
// Threads: a session belongs to one broker shard (shard()) and is only
// touched on that shard's thread.
#pragma once

#include <livecast/config.hpp>
#include <livecast/error.hpp>
#include <livecast/principal.hpp>
#include <livecast/slow_consumer_policy.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

LIVECAST_BEGIN_NAMESPACE

// Per-session limits and behaviour. Defaults suit a dashboard: small inbound
// messages, a few dozen topics, a queue that absorbs a burst of a few seconds.
struct SessionSettings {
  // Largest client message accepted; larger ones close with CloseCode::message_too_large.
  std::size_t max_message_bytes = 64 * 1024;
  // Subscriptions one session may hold; more get Errc::too_many_subscriptions.
  std::size_t max_subscriptions = 100;
  // Outgoing bytes (queued + being written) before the slow-consumer policy acts.
  std::size_t send_queue_bytes = 1024 * 1024;
  SlowConsumerPolicy slow_consumer_policy = SlowConsumerPolicy::conflate;
  // Client messages per second (token bucket, bursts up to twice this); over
  // it, requests get Errc::rate_limited, and a flood (more than 100 refused
  // within 10 s) closes with CloseCode::rate_limited.
  unsigned max_messages_per_second = 50;
  // The transport pings at this interval...
  std::chrono::milliseconds ping_interval{20000};
  // ...and closes a session that sent nothing (pongs included) for this long.
  std::chrono::milliseconds idle_timeout{60000};
  // A protocol that connects in band (Socket.IO) must send its connect
  // request within this long of the transport opening, or is closed with
  // CloseCode::unauthorized.
  std::chrono::milliseconds connect_timeout{10000};
};

struct SessionCounters {
  std::uint64_t messages_received = 0;  // client messages
  std::uint64_t frames_queued = 0;      // frames accepted by the send queue
  std::uint64_t errors_sent = 0;        // error replies
};

class SessionConnection;  // the transport's side of a session (session_host.hpp)

// Sessions are created by the broker (SessionHost::open_session) and shared
// with the transport that carries them.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  std::uint64_t id() const noexcept { return id_; }
  const Principal& principal() const noexcept { return principal_; }
  // The broker shard that owns it, and the index of its Protocol.
  std::size_t shard() const noexcept { return shard_; }
  std::size_t protocol() const noexcept { return protocol_; }
  const std::vector<std::string>& subscriptions() const noexcept { return subscriptions_; }
  bool subscribed(std::string_view topic) const {
    return std::find(subscriptions_.begin(), subscriptions_.end(), topic) != subscriptions_.end();
  }
  const SessionCounters& counters() const noexcept { return counters_; }

  // Asks the transport to close the connection with `code` (a WebSocket
  // close code, an SSE close event); the session stays registered until the
  // transport reports the close. Idempotent. On the session's shard thread.
  void close(CloseCode code, std::string_view reason);
  bool closing() const noexcept { return closing_; }
  CloseCode close_code() const noexcept { return close_code_; }

 protected:
  Session(std::uint64_t id, Principal principal, std::size_t shard, std::size_t protocol,
          SessionConnection& connection)
      : id_(id), shard_(shard), protocol_(protocol), principal_(std::move(principal)), connection_(&connection) {}
  ~Session() = default;  // owned through std::shared_ptr, which deletes the broker's derived type

  SessionConnection& connection() noexcept { return *connection_; }

  std::uint64_t id_;
  std::size_t shard_;
  std::size_t protocol_;
  Principal principal_;
  std::vector<std::string> subscriptions_;
  SessionConnection* connection_;  // outlives the session: the transport owns both
  SessionCounters counters_;
  bool closing_ = false;
  CloseCode close_code_ = CloseCode::normal;
};

LIVECAST_END_NAMESPACE
