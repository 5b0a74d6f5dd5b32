// The Broker's implementation: shards with their topics, the backend, and
// the three faces it shows: the embedder's Broker (broker.hpp), the
// transports' SessionHost (session_host.hpp) and the backend's
// BackendListener (backend.hpp).
//
// The path of a publication: Broker::publish validates it and hands it to
// the backend, which assigns the offset and calls on_publication on every
// instance; that encodes it once per protocol and posts it once to each
// shard, where ShardTopic::deliver queues the shared frame on each
// subscriber's SendQueue and the transport writes it.
//
// Threads: a shard's topics and sessions are touched only on its thread;
// counters are atomics summed by metrics(); `watched_` (topic -> local
// subscriptions, for the backend) is under a mutex.
#pragma once

#include "delivery_latency.hpp"
#include "drain.hpp"
#include "read_scheduler.hpp"
#include "session_directory.hpp"
#include "session_state.hpp"
#include "shard_inbox.hpp"
#include "shard_topic.hpp"
#include "change_filter.hpp"
#include "source_throttle.hpp"

#include <livecast/broker.hpp>
#include <livecast/session_host.hpp>

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/system_timer.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <optional>
#include <queue>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

LIVECAST_BEGIN_NAMESPACE
namespace detail {
struct ResumeGroup;
// Ten random letters and digits (std::random_device): names are public,
// so unpredictability is not needed, only that two processes differ.
std::string random_instance_tag();
}  // namespace detail

struct Broker::Impl final : SessionHost, BackendListener {
  Impl(BrokerSettings settings, std::unique_ptr<Backend> backend, asio::io_context* host);
  ~Impl();

  // --- Broker ---
  void start();
  void stop();
  std::error_code publish(std::string_view topic, std::string json, Backend::PublishHandler done, bool validated);
  std::error_code publish_json(std::string_view topic, const Json& value);
  void presence(const std::string& topic, Backend::PresenceHandler done);
  BrokerMetrics metrics() const;
  Readiness readiness() const;
  void drain(const DrainSettings& settings, std::function<void()> done) { drain_->drain(settings, std::move(done)); }
  Errc validate_topic(std::string_view topic) const noexcept;

  // --- SessionHost ---
  std::size_t shard_count() const noexcept override { return shards_.size(); }
  asio::io_context& shard_context(std::size_t shard) noexcept override { return *shards_[shard]->context; }
  void execute_on_shard(std::size_t shard, const std::function<void()>& f) override;
  bool accepting() const noexcept override {
    return accepting_.load(std::memory_order_relaxed) && !drain_->draining();
  }
  std::optional<std::chrono::seconds> draining() const noexcept override {
    if (!accepting_.load(std::memory_order_relaxed)) return std::nullopt;  // stopped: not coming back
    return drain_->retry_after();
  }
  std::optional<AuthResult> authenticate(const HandshakeRequest& request) override;
  std::optional<std::size_t> find_protocol(std::string_view name) const noexcept override;
  const Protocol& protocol(std::size_t index) const noexcept override { return *settings_.protocols[index]; }
  const SessionSettings& session_settings() const noexcept override { return settings_.session; }
  HttpResponse serve_http(const HttpHandler& handler, const HttpRequest& request) override;
  std::shared_ptr<Session> open_session(std::size_t shard, Principal principal, std::size_t protocol,
                                        SessionConnection& connection) override;
  std::shared_ptr<Session> open_unauthenticated(std::size_t shard, std::size_t protocol,
                                                SessionConnection& connection, HandshakeRequest request,
                                                const Greeting& greeting) override;
  bool heartbeat(Session& session) override;
  void rebind(Session& session, SessionConnection& connection) override;
  void handle_message(Session& session, std::string_view message) override;
  void execute(Session& session, ClientRequest request) override;
  void close_session(Session& session) override;
  std::size_t take_frames(Session& session, std::vector<FramePtr>& out, std::size_t max_bytes) override;
  void frames_written(Session& session, std::size_t bytes) noexcept override;
  void set_in_flight(Session& session, std::size_t bytes) noexcept override;
  bool has_frames(const Session& session) const noexcept override;
  void count_error(Errc e) noexcept override {
    errors_by_code_[static_cast<std::size_t>(e)].fetch_add(1, std::memory_order_relaxed);
  }
  void report_error(const std::string& what, std::error_code ec) override;
  Errc check_publish(std::string_view topic, const Principal& principal) override;
  // The one way to BrokerSettings::log (src/core/log.cpp): the sink's
  // exceptions are swallowed. Never call it per message or per delivery.
  void log(LogLevel level, std::string_view name, std::vector<LogField> fields = {}) noexcept override;

  // --- BackendListener ---
  void on_publication(Publication publication) override;
  // Frame::coalesce_key for a publication (TopicDelivery::coalesce_by); "" for none.
  std::string coalesce_key_of(const Publication& publication);
  void on_history_lost(const std::string& topic, ReadResult state) override;
  void on_backend_error(std::error_code ec) override;

  // Runs a host hook. One that throws is counted and reported to on_error
  // (never rethrown: it may be on a shard thread); false tells the caller to
  // answer the client with an error.
  template <class F>
  bool guarded(const char* hook, F&& f) noexcept {
    try {
      f();
      return true;
    } catch (const std::exception& e) {
      hook_failed(hook, e.what());
    } catch (...) {
      hook_failed(hook, "unknown exception");
    }
    return false;
  }

  // --- requests, on the session's shard thread ---
  Errc check_subscribe(detail::SessionState& session, const std::string& topic);
  // With `group`, one of a resume's reads: its answer goes to resume_answered.
  // `recent` (without `recover`): the backend's read_recent instead of read.
  void subscribe_checked(detail::SessionState& session, std::string topic, std::optional<StreamPosition> recover,
                         std::optional<std::int64_t> id, std::shared_ptr<detail::ResumeGroup> group = nullptr,
                         std::optional<RecentHistory> recent = std::nullopt);
  // How the read answered a subscribe was asked (for its metrics and reply).
  enum class SubscribeRead { latest, recover, recent };
  void finish_subscribe(detail::SessionState& session, detail::ShardTopic::Subscriber& sub, const std::string& topic,
                        std::optional<std::int64_t> id, SubscribeRead read, ReadResult result);
  bool unsubscribe(detail::SessionState& session, const std::string& topic);
  void leave(detail::SessionState& session, const std::string& topic);
  void client_publish(detail::SessionState& session, ClientRequest r);
  void refresh(detail::SessionState& session, ClientRequest r);
  // In-band connects and client events (in_band_connect.cpp).
  void connect(detail::SessionState& session, ClientRequest r);
  void client_event(detail::SessionState& session, ClientRequest r);
  void refuse_connect(detail::SessionState& session, CloseCode code, std::string_view reason);
  // Server-side joins and the on_open hook: once the session has its principal.
  void start_session(detail::SessionState& session);
  // The server-side joins alone (those already made are skipped).
  void join_server_rooms(detail::SessionState& session);
  // Resumable sessions (session_resume.cpp).
  void connected(detail::SessionState& session, const std::string& session_name);
  // The connect answer of a resumable session, naming it `name`, resumed with `resume_id`.
  void answer_resumable(detail::SessionState& session, std::string name, std::string resume_id);
  void resume(detail::SessionState& session, std::string resume_id, std::string resume_after, std::string session_name);
  void resume_from(detail::SessionState& session, std::string resume_id, const std::string& resume_after,
                   std::string session_name, const std::optional<std::string>& record);
  void resume_answered(detail::SessionState& session, const std::shared_ptr<detail::ResumeGroup>& group,
                       const std::string* topic, ReadResult result);
  void keep_for_resumption(detail::SessionState& session);
  void wait_for_kept_sessions();
  void send_error(detail::SessionState& session, std::optional<std::int64_t> id, Errc e, std::string_view message);

  // --- host control of sessions (session_control.cpp) ---
  std::size_t session_count() const noexcept;
  void list_sessions(std::string principal_id, std::function<void(SessionList)> done, std::size_t max);
  void close_sessions(std::string principal_id, CloseCode code, std::string reason,
                      std::function<void(std::size_t)> done);
  // Finishes the questions the stopped shards will never answer; after stop().
  void stop_session_control();

  // --- rebalancing (rebalance.cpp), on shard 0's thread ---
  void start_rebalancing();
  void rebalance();
  void shed_excess(std::uint64_t local, std::uint64_t total);
  // The shard's directory and the host's SessionHooks, on the session's shard thread.
  void session_opened(detail::SessionState& session);
  void session_closed(detail::SessionState& session);
  void session_subscribed(detail::SessionState& session, const std::string& topic);
  void session_unsubscribed(detail::SessionState& session, const std::string& topic);

  struct ShardCounters {
    std::atomic<std::uint64_t> deliveries{0};
    std::atomic<std::uint64_t> dropped{0};
    std::atomic<std::uint64_t> coalesced{0};
    std::atomic<std::uint64_t> slow_consumer_closes{0};
    std::atomic<std::uint64_t> sessions_opened{0};
    std::atomic<std::uint64_t> sessions_closed{0};
    std::atomic<std::uint64_t> subscriptions_active{0};
    std::atomic<std::uint64_t> messages_received{0};
    std::atomic<std::uint64_t> recoveries_recovered{0};
    std::atomic<std::uint64_t> recoveries_not_recovered{0};
    std::atomic<std::uint64_t> publications_replayed{0};
    std::atomic<std::uint64_t> bytes_replayed{0};
    std::atomic<std::uint64_t> recent_history_reads{0};
    std::atomic<std::uint64_t> recent_publications_sent{0};
    std::atomic<std::int64_t> send_queue_bytes{0};  // kept by the sessions' SendQueues
    detail::DeliveryLatency delivery_latency;
  };

  // A session whose principal expires (Principal::expires_at), due at `at`.
  // A refresh adds a later entry; the earlier one then finds the session's
  // expiry moved and lets it be.
  struct Expiry {
    std::chrono::system_clock::time_point at;
    std::weak_ptr<detail::SessionState> session;
    bool operator>(const Expiry& other) const noexcept { return at > other.at; }
  };

  // One io_context and the topics of its sessions. Aligned so that two
  // shards' counters never share a cache line.
  struct alignas(64) Shard {
    // `inbox_topic_bytes`: where its inbox sheds (ShardInbox; 0 never).
    explicit Shard(std::size_t inbox_topic_bytes) : inbox(inbox_topic_bytes) {}
    std::size_t index = 0;
    asio::io_context* context = nullptr;
    std::unique_ptr<asio::io_context> owned_context;  // null with a host io_context
    std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
    std::thread thread;
    std::unordered_map<std::string, detail::ShardTopic> topics;
    // Publications from the backend, delivered in batches (shard_inbox.hpp).
    detail::ShardInbox inbox;
    std::vector<detail::ShardInbox::Item> batch;  // the drain's, reused
    std::vector<const detail::EncodedPublicationPtr*> run;  // publications of one topic in `batch`
    ShardCounters counters;
    // Sessions open now (any thread): opened less closed, read closed first
    // so that a session opened and closed meanwhile cannot make it wrap.
    std::uint64_t open_sessions() const noexcept {
      const std::uint64_t closed = counters.sessions_closed.load(std::memory_order_relaxed);
      const std::uint64_t opened = counters.sessions_opened.load(std::memory_order_relaxed);
      return opened > closed ? opened - closed : 0;
    }
    // Sessions that end when their token does: one timer per shard, set for
    // the earliest (created when the first such session opens).
    std::priority_queue<Expiry, std::vector<Expiry>, std::greater<>> expiries;
    std::unique_ptr<asio::system_timer> expiry_timer;
    std::optional<std::chrono::system_clock::time_point> expiry_armed_for;
    // Its open sessions, also by principal (Broker::sessions, close_sessions,
    // the drain, rebalancing).
    detail::SessionDirectory sessions;
  };

 private:
  // Returns the frames it queued.
  std::uint64_t deliver(Shard& shard, const std::vector<const detail::EncodedPublicationPtr*>& run);
  // A drain's pass stops past this many frames queued (some tens of ms).
  static constexpr std::uint64_t max_pass_deliveries = 1u << 20;
  // Hands the shard an inbox item, posting its drain if the inbox was idle.
  void put_in_inbox(Shard& shard, detail::ShardInbox::Item item);
  void post_drain(Shard& shard);
  void drain_inbox(Shard& shard);
  // Which shards have a subscriber of a topic (topic_shards_), kept by the
  // first to join and the last to leave on each shard.
  void shard_joined(const std::string& topic, std::size_t shard);
  void shard_left(const std::string& topic, std::size_t shard);
  // The shards to hand a publication of `topic` to: a bit per shard.
  std::uint64_t shards_subscribed(const std::string& topic) const;
  // The backend's part of publish(), after validation (and the throttle).
  // `only_changes` (TopicDelivery): not sent when the same as the topic's last.
  void send_to_backend(const std::string& topic, std::shared_ptr<const std::string> data,
                       Backend::PublishHandler done, bool only_changes);
  void schedule_expiry(detail::SessionState& session);
  void arm_expiry(Shard& shard);
  void expire_sessions(Shard& shard);
  void watch(const std::string& topic);
  void unwatch(const std::string& topic);
  void hook_failed(const char* hook, const char* what) noexcept;
  // The error report budget (10 a second) for on_error and its log events.
  bool within_error_budget();
  void call_on_error(const std::string& what, std::error_code ec) noexcept;
  template <class Result, class Part>
  void ask_every_shard(std::function<void(Result)> done, Part part);

  BrokerSettings settings_;
  // Expires with the broker. Handlers posted to a host io_context may run
  // after the broker is gone (own threads are joined first, so there it is
  // moot); they check it before touching the broker. Same thread, no race.
  std::shared_ptr<void> lifetime_ = std::make_shared<char>(0);
  // Before backend_: it outlives the backend, whose last answers reach it.
  std::unique_ptr<detail::ReadScheduler> reads_;
  std::unique_ptr<Backend> backend_;
  std::vector<std::unique_ptr<Shard>> shards_;
  std::unique_ptr<detail::Drain> drain_;  // Broker::drain, and shedding for rebalancing
  // Topics with a TopicDelivery::max_rate (on shard 0's io_context). After
  // shards_: it goes first, its timers before their io_context.
  std::unique_ptr<detail::SourceThrottle> throttle_;
  detail::ChangeFilter changes_;  // TopicDelivery::only_changes
  std::unique_ptr<asio::steady_timer> rebalance_timer_;  // with RebalanceSettings::max_session_share
  unsigned rounds_over_share_ = 0;                       // on shard 0's thread
  std::atomic<std::uint64_t> next_session_id_{0};
  // What tells this broker's sessions from another process's where a
  // client sees their name (a Socket.IO socket.id): random, made once.
  const std::string instance_tag_ = detail::random_instance_tag();
  std::atomic<bool> accepting_{true};
  std::atomic<std::uint64_t> publications_{0};
  std::atomic<std::uint64_t> publish_errors_{0};
  std::atomic<std::uint64_t> publications_unchanged_{0};
  std::atomic<std::uint64_t> backend_errors_{0};
  std::atomic<std::uint64_t> history_losses_{0};
  std::atomic<std::uint64_t> callback_errors_{0};
  // Whether the backend reported itself lost and not back yet (for the
  // backend.unavailable / backend.available events), and since when.
  std::atomic<bool> backend_lost_{false};
  std::atomic<std::int64_t> backend_lost_at_ms_{0};
  std::array<std::atomic<std::uint64_t>, errc_count> errors_by_code_{};
  // Topic -> a bit per shard that has a subscriber of it; a publication is
  // encoded and handed only to those (nothing at all for a topic nobody
  // here watches). Read for every publication, written on first join and
  // last leave per shard. With more shards than bits, every shard gets all.
  mutable std::shared_mutex topic_shards_mutex_;
  std::unordered_map<std::string, std::uint64_t> topic_shards_;
  mutable std::mutex watch_mutex_;  // metrics() counts watched_
  std::unordered_map<std::string, std::size_t> watched_;
  std::mutex error_mutex_;
  std::chrono::steady_clock::time_point error_window_{};
  int errors_in_window_ = 0;
  detail::PendingGathers gathers_;  // Broker::sessions and close_sessions under way
  // Records of closed sessions on their way to the backend (keep_session),
  // which stop() gives a moment to arrive.
  std::mutex keep_mutex_;
  std::condition_variable keeps_done_;
  std::size_t keeps_in_flight_ = 0;
  std::mutex lifecycle_mutex_;
  bool running_ = false;
  bool stopped_ = false;

 public:
  Backend& backend() noexcept { return *backend_; }
  const Backend& backend() const noexcept { return *backend_; }
  const BrokerSettings& settings() const noexcept { return settings_; }
};

LIVECAST_END_NAMESPACE
