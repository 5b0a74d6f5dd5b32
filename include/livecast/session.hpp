// One client connection as the core sees it: who it is, what it subscribed
// to, and its bounded send queue. A Session knows neither the wire format
// (that is the Protocol's) nor the socket (that is the Transport's).
#pragma once

#include <livecast/config.hpp>
#include <livecast/error.hpp>
#include <livecast/principal.hpp>
#include <livecast/publication.hpp>
#include <livecast/send_queue.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
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
  // it, requests get Errc::rate_limited, and a flood closes with CloseCode::rate_limited.
  unsigned max_messages_per_second = 50;
  // The transport pings at this interval...
  std::chrono::milliseconds ping_interval{20000};
  // ...and closes a session that sent nothing (pongs included) for this long.
  std::chrono::milliseconds idle_timeout{60000};
};

// Implemented by transports: how the core asks a connection to act. Called
// only on the thread of the shard that owns the session.
class SessionConnection {
 public:
  virtual ~SessionConnection() = default;
  // The session's queue went from empty to non-empty: schedule a write.
  virtual void frames_ready() = 0;
  // Close the connection. Must not call back into the Broker synchronously:
  // the transport reports the closed session later, from its own handler.
  virtual void close(CloseCode code, std::string_view reason) = 0;
};

struct SessionCounters {
  std::uint64_t messages_received = 0;  // client messages
  std::uint64_t frames_queued = 0;      // frames accepted by the send queue
  std::uint64_t errors_sent = 0;        // error replies
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(std::uint64_t id, Principal principal, std::size_t shard, std::size_t protocol,
          const SessionSettings& settings, SessionConnection& connection)
      : id_(id),
        shard_(shard),
        protocol_(protocol),
        principal_(std::move(principal)),
        queue_(settings.send_queue_bytes, settings.slow_consumer_policy),
        connection_(&connection),
        tokens_(2.0 * settings.max_messages_per_second),
        rate_(settings.max_messages_per_second) {}

  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  std::uint64_t id() const noexcept { return id_; }
  const Principal& principal() const noexcept { return principal_; }
  std::size_t shard() const noexcept { return shard_; }
  std::size_t protocol() const noexcept { return protocol_; }
  const std::vector<std::string>& subscriptions() const noexcept { return subscriptions_; }
  bool subscribed(std::string_view topic) const {
    return std::find(subscriptions_.begin(), subscriptions_.end(), topic) != subscriptions_.end();
  }
  SendQueue& queue() noexcept { return queue_; }
  const SendQueue& queue() const noexcept { return queue_; }
  const SessionCounters& counters() const noexcept { return counters_; }
  bool closing() const noexcept { return closing_; }

  // Queues a frame under the slow-consumer policy. Returns false when the
  // session is (now) closing and the frame was not queued.
  bool send(FramePtr frame) {
    if (closing_) return false;
    const bool was_empty = queue_.empty();
    if (queue_.push(std::move(frame)) == SendQueue::PushResult::overflow) {
      close(CloseCode::slow_consumer, "send queue full");
      return false;
    }
    ++counters_.frames_queued;
    if (was_empty) connection_->frames_ready();
    return true;
  }

  // Asks the transport to close; the session stays registered until the
  // transport reports the close (Broker::close_session).
  void close(CloseCode code, std::string_view reason) {
    if (closing_) return;
    closing_ = true;
    close_code_ = code;
    connection_->close(code, reason);
  }
  CloseCode close_code() const noexcept { return close_code_; }

  // --- used by the Broker, on the session's shard thread ---
  void add_subscription(std::string topic) { subscriptions_.push_back(std::move(topic)); }
  void remove_subscription(std::string_view topic) {
    auto it = std::find(subscriptions_.begin(), subscriptions_.end(), topic);
    if (it != subscriptions_.end()) {
      *it = std::move(subscriptions_.back());
      subscriptions_.pop_back();
    }
  }
  // Token bucket: false when the client exceeds its message rate.
  bool take_message_token(std::chrono::steady_clock::time_point now) {
    ++counters_.messages_received;
    if (rate_ == 0) return true;
    if (last_refill_.time_since_epoch().count() != 0) {
      double elapsed = std::chrono::duration<double>(now - last_refill_).count();
      tokens_ = std::min(2.0 * rate_, tokens_ + elapsed * rate_);
    }
    last_refill_ = now;
    if (tokens_ < 1.0) {
      ++rate_violations_;
      return false;
    }
    tokens_ -= 1.0;
    return true;
  }
  std::uint64_t rate_violations() const noexcept { return rate_violations_; }
  // Publications the send queue dropped since the last call (for metrics).
  std::uint64_t take_new_drops() noexcept {
    std::uint64_t n = queue_.dropped() - drops_reported_;
    drops_reported_ = queue_.dropped();
    return n;
  }
  void count_error_sent() noexcept { ++counters_.errors_sent; }
  // Distinguishes successive subscriptions to one topic, so a late answer
  // for an earlier one is ignored.
  std::uint64_t next_subscription_sequence() noexcept { return ++subscription_sequence_; }

 private:
  std::uint64_t id_;
  std::size_t shard_;
  std::size_t protocol_;
  Principal principal_;
  std::vector<std::string> subscriptions_;
  SendQueue queue_;
  SessionConnection* connection_;  // outlives the session: the transport owns both
  SessionCounters counters_;
  double tokens_;
  unsigned rate_;
  std::chrono::steady_clock::time_point last_refill_{};
  std::uint64_t rate_violations_ = 0;
  std::uint64_t drops_reported_ = 0;
  std::uint64_t subscription_sequence_ = 0;
  bool closing_ = false;
  CloseCode close_code_ = CloseCode::normal;
};

LIVECAST_END_NAMESPACE
