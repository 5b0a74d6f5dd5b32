// A session as the broker holds it: the public Session view plus what only
// the broker touches (the bounded send queue, the message rate limit, the
// sequence that tells successive subscriptions to one topic apart).
//
// Threads: only on the thread of the shard that owns the session.
#pragma once

#include "send_queue.hpp"
#include "session_resumption.hpp"

#include <livecast/config.hpp>
#include <livecast/session.hpp>
#include <livecast/session_host.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

LIVECAST_BEGIN_NAMESPACE
namespace detail {

class SessionState final : public Session {
 public:
  SessionState(std::uint64_t id, Principal principal, std::size_t shard, std::size_t protocol,
               const SessionSettings& settings, SessionConnection& connection,
               std::atomic<std::int64_t>* queue_bytes_gauge = nullptr)
      : Session(id, std::move(principal), shard, protocol, connection),
        queue_(settings.send_queue_bytes, settings.slow_consumer_policy, queue_bytes_gauge),
        tokens_(2.0 * settings.max_messages_per_second),
        rate_(settings.max_messages_per_second) {}

  static SessionState& of(Session& s) noexcept { return static_cast<SessionState&>(s); }
  static const SessionState& of(const Session& s) noexcept { return static_cast<const SessionState&>(s); }
  std::weak_ptr<SessionState> weak() { return std::static_pointer_cast<SessionState>(shared_from_this()); }

  SendQueue& queue() noexcept { return queue_; }
  const SendQueue& queue() const noexcept { return queue_; }
  // Its Protocol (Session::protocol() is the index); set once, at open.
  const Protocol* wire() const noexcept { return wire_; }
  void set_wire(const Protocol& protocol) noexcept { wire_ = &protocol; }

  // Queues a frame under the slow-consumer policy. Returns false when the
  // session is (now) closing and the frame was not queued.
  bool send(FramePtr frame) {
    if (closing_) return false;
    // A protocol with nothing to say for this message (Socket.IO has no
    // words for a server-side join) encodes it as no bytes: nothing is sent.
    if (frame->bytes.empty()) return true;
    const bool was_empty = queue_.empty();
    if (resume_ && frame->is_publication()) resume_->queued(frame->topic, frame->epoch, frame->offset);
    if (queue_.push(std::move(frame)) == SendQueue::PushResult::overflow) {
      close(CloseCode::slow_consumer, "send queue full");
      return false;
    }
    ++counters_.frames_queued;
    if (was_empty) connection().frames_ready();
    return true;
  }

  // --- protocols that connect in band (Protocol::connects_in_band) ---

  // The transport's handshake, kept from open_unauthenticated until the
  // connect request is authenticated with it; null once connected (and for
  // sessions whose principal came with the handshake).
  std::unique_ptr<HandshakeRequest>& awaiting_connect() noexcept { return awaiting_connect_; }
  // The connect request was accepted: the session is now this principal's.
  void set_principal(Principal principal) { principal_ = std::move(principal); }
  // Engine.IO's upgrade: the session's frames now go to `connection`.
  void set_connection(SessionConnection& connection) noexcept { connection_ = &connection; }

  // --- protocols that resume sessions (Protocol::resumes_sessions) ---

  // Set once connected: what the session remembers for its client's return.
  ResumeTracker* resume_tracker() noexcept { return resume_.get(); }
  void track_for_resumption(std::size_t capacity) { resume_ = std::make_unique<ResumeTracker>(capacity); }
  // The private id its client resumes it with ("" until it has one).
  const std::string& resume_id() const noexcept { return resume_id_; }
  void set_resume_id(std::string id) { resume_id_ = std::move(id); }
  // Its public name, as the connect answer gave it (kept by a resume).
  const std::string& public_name() const noexcept { return public_name_; }
  void set_public_name(std::string name) { public_name_ = std::move(name); }
  // Between an accepted connect that resumes and the answer: the session's
  // topics are being read back; requests wait for the connect's answer.
  bool resuming() const noexcept { return resuming_; }
  void set_resuming(bool on) noexcept { resuming_ = on; }

  // The client said goodbye (ClientRequest::Op::close): no farewell back.
  void set_client_closed() noexcept { client_closed_ = true; }
  bool client_closed() const noexcept { return client_closed_; }
  // ...its transport's goodbye rather than its own (ClientRequest::may_return).
  void set_client_may_return() noexcept { client_may_return_ = true; }
  bool client_may_return() const noexcept { return client_may_return_; }

  // The connect deadline (SessionSettings::connect_timeout) rides on the
  // token-expiry heap: until connected, the session ends then.
  void set_connect_deadline(std::chrono::system_clock::time_point at) { principal_.expires_at = at; }

  // A refresh with a newer token moved the end of the session.
  void set_expires_at(std::optional<std::chrono::system_clock::time_point> at) { principal_.expires_at = at; }

  void add_subscription(std::string topic) { subscriptions_.push_back(std::move(topic)); }
  void remove_subscription(std::string_view topic) {
    auto it = std::find(subscriptions_.begin(), subscriptions_.end(), topic);
    if (it != subscriptions_.end()) {
      *it = std::move(subscriptions_.back());
      subscriptions_.pop_back();
    }
  }

  // A flood, which the broker closes with CloseCode::rate_limited: more than
  // flood_violations refused messages within flood_window of the first of
  // them. Refusals are counted per window, not over the session's life, so
  // a long-lived client that bursts now and then never adds up to a flood.
  static constexpr std::uint64_t flood_violations = 100;
  static constexpr std::chrono::seconds flood_window{10};

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
      if (window_violations_ == 0 || now - window_start_ >= flood_window) {
        window_start_ = now;
        window_violations_ = 0;
      }
      ++window_violations_;
      return false;
    }
    tokens_ -= 1.0;
    return true;
  }
  bool flooding() const noexcept { return window_violations_ > flood_violations; }

  // Publications the send queue dropped since the last call (for metrics).
  std::uint64_t take_new_drops() noexcept {
    std::uint64_t n = queue_.dropped() - drops_reported_;
    drops_reported_ = queue_.dropped();
    return n;
  }
  // Publications the send queue replaced by a newer one of their key since
  // the last call (for metrics).
  std::uint64_t take_new_coalesced() noexcept {
    std::uint64_t n = queue_.coalesced() - coalesced_reported_;
    coalesced_reported_ = queue_.coalesced();
    return n;
  }
  void count_error_sent() noexcept { ++counters_.errors_sent; }
  // Distinguishes successive subscriptions to one topic, so a late answer
  // for an earlier one is ignored.
  std::uint64_t next_subscription_sequence() noexcept { return ++subscription_sequence_; }

 private:
  SendQueue queue_;
  double tokens_;
  unsigned rate_;
  std::chrono::steady_clock::time_point last_refill_{};
  std::chrono::steady_clock::time_point window_start_{};  // of the first refusal counted in window_violations_
  std::uint64_t window_violations_ = 0;
  std::uint64_t drops_reported_ = 0;
  std::uint64_t coalesced_reported_ = 0;
  std::uint64_t subscription_sequence_ = 0;
  std::unique_ptr<HandshakeRequest> awaiting_connect_;
  const Protocol* wire_ = nullptr;
  std::unique_ptr<ResumeTracker> resume_;
  std::string resume_id_;
  std::string public_name_;
  bool resuming_ = false;
  bool client_closed_ = false;
  bool client_may_return_ = false;
};

}  // namespace detail
LIVECAST_END_NAMESPACE
