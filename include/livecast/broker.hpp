// The Broker: owns the topics of every shard and the Backend, takes
// publications from any thread, and runs the protocol's requests for the
// sessions that transports open.
//
// Threads. A broker has shards, each an io_context run by one thread:
//  - Broker(settings): livecast runs `settings.threads` threads of its own,
//    one shard each (call start()); transports spread sessions over them.
//  - Broker(io_context&, settings): one shard on the host's io_context, which
//    the host runs from one thread (a strand-free, single-threaded service).
// A session and the Topic objects it sits in belong to one shard and are only
// touched on that shard's thread. publish() may be called from any thread.
#pragma once

#include <livecast/authorizer.hpp>
#include <livecast/backend.hpp>
#include <livecast/config.hpp>
#include <livecast/error.hpp>
#include <livecast/handshake.hpp>
#include <livecast/in_process_backend.hpp>
#include <livecast/json.hpp>
#include <livecast/protocol.hpp>
#include <livecast/publication.hpp>
#include <livecast/session.hpp>
#include <livecast/topic.hpp>

#include <asio/dispatch.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

LIVECAST_BEGIN_NAMESPACE

struct BrokerSettings {
  // Shards (threads) when livecast runs its own; ignored with a host io_context.
  std::size_t threads = 1;
  // Limits and slow-consumer policy of every session.
  SessionSettings session;
  // Longest topic name accepted, in bytes.
  std::size_t max_topic_bytes = 256;
  // Largest publication payload accepted by publish(), in bytes.
  std::size_t max_payload_bytes = 1024 * 1024;
  // Decides who a connecting client is. Default: everyone, anonymously.
  Authenticator authenticator = allow_anonymous();
  // Decides every subscribe and publish. Default: anyone subscribes to
  // anything; clients publish nothing.
  Authorizer authorizer = Authorizer::subscribe_anything();
  // Server-side joins: topics a session is subscribed to as soon as it
  // connects (e.g. "org:<org>" and "org:<org>:<role>"). They go through the
  // Authorizer too; the client is told with a reply that carries no id.
  std::function<std::vector<std::string>(const Principal&)> server_joins;
  // Wire protocols spoken; empty means livecast.v1 only. The first is the
  // default for clients that name none.
  std::vector<std::shared_ptr<const Protocol>> protocols;
  // Failures that are not a client's fault (backend errors, refused server
  // joins), at most 10 per second. Called from any thread; must not block.
  std::function<void(const std::string& what, std::error_code)> on_error;
};

// A snapshot of the broker's counters (all monotonic but the *_active ones).
struct BrokerMetrics {
  std::uint64_t publications = 0;          // accepted by publish()
  std::uint64_t publish_errors = 0;        // refused by publish() or failed in the backend
  std::uint64_t deliveries = 0;            // publication frames queued to sessions
  std::uint64_t dropped = 0;               // publications dropped by slow-consumer policies
  std::uint64_t slow_consumer_closes = 0;  // sessions closed by SlowConsumerPolicy::disconnect
  std::uint64_t sessions_opened = 0;
  std::uint64_t sessions_closed = 0;
  std::uint64_t sessions_active = 0;
  std::uint64_t subscriptions_active = 0;
  std::uint64_t messages_received = 0;     // client messages handed to handle_message()
  std::uint64_t errors_sent = 0;           // error replies, any code
  std::uint64_t backend_errors = 0;
  std::uint64_t history_losses = 0;        // topics whose live subscribers were told "not recovered"
  // Error replies by code, indexed by static_cast<size_t>(Errc).
  std::array<std::uint64_t, 16> errors_by_code{};

  std::uint64_t errors(Errc e) const noexcept { return errors_by_code[static_cast<std::size_t>(e)]; }
};

class Broker final : private BackendListener {
 public:
  // livecast runs settings.threads threads of its own; call start().
  explicit Broker(BrokerSettings settings = {}, std::unique_ptr<Backend> backend = nullptr)
      : settings_(std::move(settings)), backend_(std::move(backend)) {
    if (settings_.threads == 0) settings_.threads = 1;
    for (std::size_t i = 0; i < settings_.threads; ++i) {
      auto shard = std::make_unique<Shard>();
      shard->index = i;
      shard->owned_context = std::make_unique<asio::io_context>(1);
      shard->context = shard->owned_context.get();
      shards_.push_back(std::move(shard));
    }
    init();
  }

  // One shard on the host's io_context; nothing to start. Destroy the broker
  // from the host's thread or after the host stopped running the context.
  explicit Broker(asio::io_context& host, BrokerSettings settings = {}, std::unique_ptr<Backend> backend = nullptr)
      : settings_(std::move(settings)), backend_(std::move(backend)) {
    settings_.threads = 1;
    auto shard = std::make_unique<Shard>();
    shard->index = 0;
    shard->context = &host;
    shards_.push_back(std::move(shard));
    init();
  }

  Broker(const Broker&) = delete;
  Broker& operator=(const Broker&) = delete;

  ~Broker() {
    stop();
    backend_->stop();
  }

  // Starts livecast's own threads (no-op with a host io_context, or when
  // already started).
  void start() {
    std::lock_guard<std::mutex> lock(lifecycle_mutex_);
    if (running_ || stopped_) return;
    running_ = true;
    for (auto& shard : shards_) {
      if (!shard->owned_context) continue;
      shard->work.emplace(shard->context->get_executor());
      Shard* s = shard.get();
      s->thread = std::thread([s] { s->context->run(); });
    }
  }

  // Stops livecast's threads; queued work is discarded. Publications are
  // refused afterwards with Errc::shutting_down. Stop transports first.
  void stop() {
    std::lock_guard<std::mutex> lock(lifecycle_mutex_);
    if (stopped_) return;
    stopped_ = true;
    accepting_.store(false);
    for (auto& shard : shards_) {
      if (!shard->owned_context) continue;
      shard->work.reset();
      shard->context->stop();
    }
    for (auto& shard : shards_)
      if (shard->thread.joinable()) shard->thread.join();
    running_ = false;
  }

  // --- publishing (any thread) ---

  // Publishes JSON text the caller already serialised. Validates it once;
  // never blocks on subscribers and never throws. Returns invalid_topic,
  // invalid_payload, message_too_large or shutting_down; backend failures
  // are reported to settings.on_error and counted.
  std::error_code publish(std::string_view topic, std::string_view json) {
    return publish(topic, json, Backend::PublishHandler{});
  }
  // Text overloads, so that a string literal is JSON text, never a Json string.
  std::error_code publish(std::string_view topic, const char* json) { return publish(topic, std::string_view(json)); }
  std::error_code publish(std::string_view topic, const std::string& json) {
    return publish(topic, std::string_view(json));
  }
  // Publishes a value built with the Json builder: valid JSON by
  // construction, but its strings hold whatever bytes the host gave. Sent as
  // they are, bytes that are not UTF-8 make a browser close its socket (1007)
  // and every instance reading from Redis drop the publication; dump() would
  // replace them with U+FFFD, silently altering the host's data. So such a
  // value is refused with invalid_payload, counted like bad JSON text.
  std::error_code publish(std::string_view topic, const Json& value) {
    if (!value.valid_utf8()) {
      publish_errors_.fetch_add(1, std::memory_order_relaxed);
      return Errc::invalid_payload;
    }
    return publish_validated(topic, value.dump(), {}, /*validated=*/true);
  }
  // As above; `done` runs on any thread once the backend took the
  // publication (with its offset) or failed.
  std::error_code publish(std::string_view topic, std::string_view json, Backend::PublishHandler done) {
    return publish_validated(topic, std::string(json), std::move(done), /*validated=*/false);
  }

  // --- for transports ---

  std::size_t shard_count() const noexcept { return shards_.size(); }
  asio::io_context& shard_context(std::size_t shard) noexcept { return *shards_[shard]->context; }
  const BrokerSettings& settings() const noexcept { return settings_; }
  Backend& backend() noexcept { return *backend_; }
  bool accepting() const noexcept { return accepting_.load(std::memory_order_relaxed); }

  const std::vector<std::shared_ptr<const Protocol>>& protocols() const noexcept { return settings_.protocols; }
  // The index of the protocol called `name`; the default (0) for an empty name.
  std::optional<std::size_t> find_protocol(std::string_view name) const noexcept {
    if (name.empty()) return 0;
    for (std::size_t i = 0; i < settings_.protocols.size(); ++i)
      if (settings_.protocols[i]->name() == name) return i;
    return std::nullopt;
  }

  // Opens a session on `shard` (call on that shard's thread, after the
  // Authenticator accepted) and runs the server-side joins.
  std::shared_ptr<Session> open_session(std::size_t shard, Principal principal, std::size_t protocol,
                                        SessionConnection& connection) {
    auto session = std::make_shared<Session>(next_session_id_.fetch_add(1) + 1, std::move(principal), shard,
                                             protocol, settings_.session, connection);
    Shard& s = *shards_[shard];
    s.counters.sessions_opened.fetch_add(1, std::memory_order_relaxed);
    if (settings_.server_joins) {
      for (std::string& topic : settings_.server_joins(session->principal())) {
        if (Errc e = check_subscribe(*session, topic); e != Errc::ok) {
          report_error("server-side join of '" + topic + "' refused", make_error_code(e));
          continue;
        }
        subscribe_checked(*session, std::move(topic), std::nullopt, std::nullopt);
      }
    }
    return session;
  }

  // Runs one client message (call on the session's shard thread).
  void handle_message(Session& session, std::string_view message) {
    if (session.closing()) return;
    Shard& shard = *shards_[session.shard()];
    shard.counters.messages_received.fetch_add(1, std::memory_order_relaxed);
    if (!session.take_message_token(std::chrono::steady_clock::now())) {
      send_error(session, std::nullopt, Errc::rate_limited, "too many messages");
      if (session.rate_violations() > 100) session.close(CloseCode::rate_limited, "message flood");
      return;
    }
    if (message.size() > settings_.session.max_message_bytes) {
      send_error(session, std::nullopt, Errc::message_too_large, "message too large");
      return;
    }
    const Protocol& protocol = *settings_.protocols[session.protocol()];
    DecodeResult decoded = protocol.decode(message);
    if (!decoded.request) {
      send_error(session, decoded.id, decoded.error, decoded.message);
      return;
    }
    execute(session, std::move(*decoded.request));
  }

  // Runs a request a transport built itself (an SSE stream or a poll names
  // its topics in the URL): as if the session had sent it, but without
  // protocol text and outside the session's message rate limit, since it is
  // part of one client request. Call on the session's shard thread.
  void execute(Session& session, ClientRequest r) {
    if (session.closing()) return;
    const Protocol& protocol = *settings_.protocols[session.protocol()];
    switch (r.op) {
      case ClientRequest::Op::subscribe:
        if (Errc e = check_subscribe(session, r.topic); e != Errc::ok) {
          send_error(session, r.id, e, subscribe_error_message(e));
          return;
        }
        subscribe_checked(session, std::move(r.topic), std::move(r.recover), r.id);
        return;
      case ClientRequest::Op::unsubscribe:
        if (!unsubscribe(session, r.topic)) {
          send_error(session, r.id, Errc::not_subscribed, "not subscribed");
          return;
        }
        if (r.id) session.send(protocol.encode_unsubscribed(*r.id, r.topic));
        return;
      case ClientRequest::Op::publish:
        client_publish(session, std::move(r));
        return;
      case ClientRequest::Op::ping:
        if (r.id) session.send(protocol.encode_pong(*r.id));
        return;
    }
  }

  // Subscribes a session from the host's code (a server-side join after
  // connect); goes through the Authorizer. Call on the session's shard thread.
  std::error_code subscribe(Session& session, std::string topic, std::optional<StreamPosition> recover = {}) {
    if (Errc e = check_subscribe(session, topic); e != Errc::ok) return e;
    subscribe_checked(session, std::move(topic), std::move(recover), std::nullopt);
    return {};
  }

  // Removes a session from a topic; false when it was not subscribed.
  bool unsubscribe(Session& session, const std::string& topic) {
    if (!session.subscribed(topic)) return false;
    leave(session, topic);
    session.remove_subscription(topic);
    return true;
  }

  // The transport's connection ended: the session leaves every topic. Call
  // on the session's shard thread, before the last reference goes away.
  void close_session(Session& session) {
    Shard& shard = *shards_[session.shard()];
    for (const std::string& topic : session.subscriptions()) leave(session, topic);
    if (session.close_code() == CloseCode::slow_consumer)
      shard.counters.slow_consumer_closes.fetch_add(1, std::memory_order_relaxed);
    shard.counters.sessions_closed.fetch_add(1, std::memory_order_relaxed);
    shard.counters.dropped.fetch_add(session.take_new_drops(), std::memory_order_relaxed);
    session.queue().clear();
  }

  // Runs `f` on `shard`'s thread and waits for it; runs it inline when
  // called on that thread or when the shard's thread is not running.
  template <class F>
  void execute_on_shard(std::size_t shard, F&& f) {
    Shard& s = *shards_[shard];
    bool inline_call = !s.owned_context || !s.thread.joinable() || s.context->stopped() ||
                       s.context->get_executor().running_in_this_thread();
    if (inline_call) {
      f();
      return;
    }
    std::promise<void> done;
    auto finished = done.get_future();
    asio::post(*s.context, [&] {
      f();
      done.set_value();
    });
    finished.wait();
  }

  // How many subscriptions `topic` has over every instance sharing the
  // backend (this one alone with the in-process backend); server-side joins
  // count. A Redis backend answers from counts each instance refreshes, so
  // another instance's change shows within about a second, and a crashed
  // instance's count expires. `done` runs on any thread.
  void presence(const std::string& topic, Backend::PresenceHandler done) {
    std::uint64_t local = 0;
    {
      std::lock_guard<std::mutex> lock(watch_mutex_);
      auto it = watched_.find(topic);
      if (it != watched_.end()) local = it->second;
    }
    backend_->presence(topic, local, std::move(done));
  }

  BrokerMetrics metrics() const {
    BrokerMetrics m;
    m.publications = publications_.load(std::memory_order_relaxed);
    m.publish_errors = publish_errors_.load(std::memory_order_relaxed);
    m.backend_errors = backend_errors_.load(std::memory_order_relaxed);
    m.history_losses = history_losses_.load(std::memory_order_relaxed);
    for (auto& shard : shards_) {
      const ShardCounters& c = shard->counters;
      m.deliveries += c.deliveries.load(std::memory_order_relaxed);
      m.dropped += c.dropped.load(std::memory_order_relaxed);
      m.slow_consumer_closes += c.slow_consumer_closes.load(std::memory_order_relaxed);
      m.sessions_opened += c.sessions_opened.load(std::memory_order_relaxed);
      m.sessions_closed += c.sessions_closed.load(std::memory_order_relaxed);
      m.subscriptions_active += c.subscriptions_active.load(std::memory_order_relaxed);
      m.messages_received += c.messages_received.load(std::memory_order_relaxed);
    }
    m.sessions_active = m.sessions_opened - m.sessions_closed;
    for (std::size_t i = 0; i < m.errors_by_code.size(); ++i) {
      m.errors_by_code[i] = errors_by_code_[i].load(std::memory_order_relaxed);
      m.errors_sent += m.errors_by_code[i];
    }
    return m;
  }

  // Counts an error a transport handled itself (e.g. an oversized frame it
  // refused before it became a message).
  void count_error(Errc e) noexcept {
    errors_by_code_[static_cast<std::size_t>(e)].fetch_add(1, std::memory_order_relaxed);
  }

  // Reports a failure to settings.on_error, at most 10 times per second.
  void report_error(const std::string& what, std::error_code ec) {
    if (!settings_.on_error) return;
    {
      std::lock_guard<std::mutex> lock(error_mutex_);
      auto now = std::chrono::steady_clock::now();
      if (now - error_window_ > std::chrono::seconds(1)) {
        error_window_ = now;
        errors_in_window_ = 0;
      }
      if (++errors_in_window_ > 10) return;
    }
    settings_.on_error(what, ec);
  }

 private:
  struct ShardCounters {
    std::atomic<std::uint64_t> deliveries{0};
    std::atomic<std::uint64_t> dropped{0};
    std::atomic<std::uint64_t> slow_consumer_closes{0};
    std::atomic<std::uint64_t> sessions_opened{0};
    std::atomic<std::uint64_t> sessions_closed{0};
    std::atomic<std::uint64_t> subscriptions_active{0};
    std::atomic<std::uint64_t> messages_received{0};
  };

  // One io_context and the Topic objects of its sessions. Aligned so that two
  // shards' counters never share a cache line.
  struct alignas(64) Shard {
    std::size_t index = 0;
    asio::io_context* context = nullptr;
    std::unique_ptr<asio::io_context> owned_context;  // null with a host io_context
    std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
    std::thread thread;
    std::unordered_map<std::string, Topic> topics;
    ShardCounters counters;
  };

  void init() {
    if (!backend_) backend_ = std::make_unique<InProcessBackend>();
    if (settings_.protocols.empty()) settings_.protocols.push_back(make_livecast_v1_protocol());
    backend_->start(*this);
  }

  // Non-empty, bounded, valid UTF-8 (it goes into text frames) without
  // control characters.
  Errc validate_topic(std::string_view topic) const noexcept {
    if (topic.empty() || topic.size() > settings_.max_topic_bytes) return Errc::invalid_topic;
    for (char ch : topic) {
      auto c = static_cast<unsigned char>(ch);
      if (c < 0x20 || c == 0x7f) return Errc::invalid_topic;
    }
    // Strict: a browser also fails the connection on overlong forms,
    // surrogates and code points above U+10FFFF, not only on broken sequences.
    if (!is_valid_utf8(topic)) return Errc::invalid_topic;
    return Errc::ok;
  }

  std::error_code publish_validated(std::string_view topic, std::string json, Backend::PublishHandler done,
                                    bool validated) {
    Errc e = Errc::ok;
    if (!accepting_.load(std::memory_order_relaxed))
      e = Errc::shutting_down;
    else if (Errc t = validate_topic(topic); t != Errc::ok)
      e = t;
    else if (json.size() > settings_.max_payload_bytes)
      e = Errc::message_too_large;
    else if (!validated && !is_valid_json(json))
      e = Errc::invalid_payload;
    if (e != Errc::ok) {
      publish_errors_.fetch_add(1, std::memory_order_relaxed);
      return e;
    }
    publications_.fetch_add(1, std::memory_order_relaxed);
    auto data = std::make_shared<const std::string>(std::move(json));
    backend_->publish(std::string(topic), std::move(data),
                      [this, done = std::move(done)](std::error_code ec, std::uint64_t offset) {
                        if (ec) {
                          publish_errors_.fetch_add(1, std::memory_order_relaxed);
                          report_error("backend refused a publication", ec);
                        }
                        if (done) done(ec, offset);
                      });
    return {};
  }

  // BackendListener: encode once per protocol, cross each shard boundary once.
  void on_publication(Publication publication) override {
    auto encoded = std::make_shared<EncodedPublication>();
    encoded->publication = std::move(publication);
    encoded->frames.reserve(settings_.protocols.size());
    for (auto& protocol : settings_.protocols)
      encoded->frames.push_back(protocol->encode_publication(encoded->publication));
    EncodedPublicationPtr shared = std::move(encoded);
    for (auto& shard : shards_) {
      Shard* s = shard.get();
      asio::post(*s->context, [this, alive = std::weak_ptr<void>(lifetime_), s, shared] {
        if (!alive.expired()) deliver(*s, shared);
      });
    }
  }

  // Every live subscriber of the topic starts over as after a subscribe
  // without position: a reply without id saying "not recovered", then the
  // snapshot. Subscribers still waiting for their own read get its answer.
  void on_history_lost(const std::string& topic, ReadResult state) override {
    history_losses_.fetch_add(1, std::memory_order_relaxed);
    auto shared = std::make_shared<const ReadResult>(std::move(state));
    for (auto& shard : shards_) {
      Shard* s = shard.get();
      asio::post(*s->context, [this, alive = std::weak_ptr<void>(lifetime_), s, topic, shared] {
        if (alive.expired()) return;
        auto it = s->topics.find(topic);
        if (it == s->topics.end()) return;
        it->second.for_each_live([&](Topic::Subscriber& sub) {
          Session& session = *sub.session;
          const Protocol& protocol = *settings_.protocols[session.protocol()];
          session.send(protocol.encode_subscribed(std::nullopt, topic, shared->head, false));
          for (const Publication& p : shared->publications) session.send(protocol.encode_publication(p));
          sub.next_offset = shared->head.offset + 1;
        });
      });
    }
  }

  void on_backend_error(std::error_code ec) override {
    backend_errors_.fetch_add(1, std::memory_order_relaxed);
    report_error("backend", ec);
  }

  void deliver(Shard& shard, const EncodedPublicationPtr& p) {
    auto it = shard.topics.find(p->publication.topic);
    if (it == shard.topics.end()) return;
    Topic::DeliveryCount n = it->second.deliver(p);
    shard.counters.deliveries.fetch_add(n.delivered, std::memory_order_relaxed);
    if (n.dropped) shard.counters.dropped.fetch_add(n.dropped, std::memory_order_relaxed);
  }

  Errc check_subscribe(const Session& session, const std::string& topic) const {
    if (Errc e = validate_topic(topic); e != Errc::ok) return e;
    if (session.subscribed(topic)) return Errc::already_subscribed;
    if (session.subscriptions().size() >= settings_.session.max_subscriptions) return Errc::too_many_subscriptions;
    if (!settings_.authorizer.allowed(Action::subscribe, topic, session.principal())) return Errc::forbidden;
    return Errc::ok;
  }

  static const char* subscribe_error_message(Errc e) noexcept {
    switch (e) {
      case Errc::invalid_topic: return "invalid topic name";
      case Errc::already_subscribed: return "already subscribed";
      case Errc::too_many_subscriptions: return "too many subscriptions";
      case Errc::forbidden: return "not allowed to subscribe to this topic";
      default: return to_wire_name(e);
    }
  }

  // Joins the shard's topic at once (so no publication is missed), holds live
  // publications until the backend's read answers, then sends the reply, the
  // recovered publications or the snapshot, and the held ones after them.
  void subscribe_checked(Session& session, std::string topic, std::optional<StreamPosition> recover,
                         std::optional<std::int64_t> id) {
    Shard& shard = *shards_[session.shard()];
    const std::uint64_t sequence = session.next_subscription_sequence();
    auto [it, inserted] = shard.topics.try_emplace(topic, topic);
    it->second.add(session, sequence);
    session.add_subscription(topic);
    shard.counters.subscriptions_active.fetch_add(1, std::memory_order_relaxed);
    watch(topic);
    std::weak_ptr<Session> weak = session.weak_from_this();
    Shard* s = &shard;
    backend_->read(topic, recover, [this, s, weak, topic, sequence, id](ReadResult result) {
      asio::dispatch(*s->context, [this, alive = std::weak_ptr<void>(lifetime_), s, weak, topic, sequence, id,
                                   result = std::move(result)]() mutable {
        if (alive.expired()) return;
        auto session = weak.lock();
        if (!session || session->closing()) return;
        auto it = s->topics.find(topic);
        if (it == s->topics.end()) return;
        Topic::Subscriber* sub = it->second.find(*session);
        if (!sub || sub->sequence != sequence) return;  // unsubscribed meanwhile
        finish_subscribe(*session, *sub, topic, id, std::move(result));
      });
    });
  }

  void finish_subscribe(Session& session, Topic::Subscriber& sub, const std::string& topic,
                        std::optional<std::int64_t> id, ReadResult result) {
    const Protocol& protocol = *settings_.protocols[session.protocol()];
    if (result.error) {
      send_error(session, id, Errc::backend_unavailable, "history unavailable, try again");
      unsubscribe(session, topic);
      return;
    }
    session.send(protocol.encode_subscribed(id, topic, result.head, result.recovered));
    for (const Publication& p : result.publications) session.send(protocol.encode_publication(p));
    sub.next_offset = result.head.offset + 1;
    sub.live = true;
    for (const EncodedPublicationPtr& p : sub.held) {
      if (p->publication.offset < sub.next_offset) continue;
      sub.next_offset = p->publication.offset + 1;
      session.send(p->frames[session.protocol()]);
    }
    sub.held.clear();
    sub.held.shrink_to_fit();
  }

  void leave(Session& session, const std::string& topic) {
    Shard& shard = *shards_[session.shard()];
    auto it = shard.topics.find(topic);
    if (it == shard.topics.end()) return;
    if (it->second.remove(session)) shard.counters.subscriptions_active.fetch_sub(1, std::memory_order_relaxed);
    if (it->second.empty()) shard.topics.erase(it);
    unwatch(topic);
  }

  // Reference counts local subscribers across shards so the backend hears
  // only the first and the last (and every count, for presence).
  void watch(const std::string& topic) {
    std::lock_guard<std::mutex> lock(watch_mutex_);
    std::size_t& local = watched_[topic];
    if (local++ == 0) backend_->watch(topic);
    backend_->set_local_presence(topic, local);
  }
  void unwatch(const std::string& topic) {
    std::lock_guard<std::mutex> lock(watch_mutex_);
    auto it = watched_.find(topic);
    if (it == watched_.end()) return;
    backend_->set_local_presence(topic, --it->second);
    if (it->second == 0) {
      watched_.erase(it);
      backend_->unwatch(topic);
    }
  }

  void client_publish(Session& session, ClientRequest r) {
    if (Errc e = validate_topic(r.topic); e != Errc::ok) {
      send_error(session, r.id, e, "invalid topic name");
      return;
    }
    if (!settings_.authorizer.allowed(Action::publish, r.topic, session.principal())) {
      send_error(session, r.id, Errc::forbidden, "not allowed to publish on this topic");
      return;
    }
    std::weak_ptr<Session> weak = session.weak_from_this();
    Shard* s = shards_[session.shard()].get();
    auto id = r.id;
    std::string topic = r.topic;
    std::error_code ec = publish(r.topic, r.data, [this, s, weak, id, topic](std::error_code ec, std::uint64_t offset) {
      if (!id) return;
      asio::dispatch(*s->context, [this, alive = std::weak_ptr<void>(lifetime_), weak, id, topic, ec, offset] {
        if (alive.expired()) return;
        auto session = weak.lock();
        if (!session || session->closing()) return;
        if (ec) {
          send_error(*session, id, Errc::backend_unavailable, "publication not accepted");
          return;
        }
        const Protocol& p = *settings_.protocols[session->protocol()];
        session->send(p.encode_published(*id, topic, offset));
      });
    });
    if (ec) send_error(session, r.id, static_cast<Errc>(ec.value()), ec.message());
  }

  void send_error(Session& session, std::optional<std::int64_t> id, Errc e, std::string_view message) {
    count_error(e);
    session.count_error_sent();
    session.send(settings_.protocols[session.protocol()]->encode_error(id, e, message));
  }

  BrokerSettings settings_;
  // Expires with the broker. Handlers posted to a host io_context may run
  // after the broker is gone (own threads are joined first, so there it is
  // moot); they check it before touching the broker. Same thread, no race.
  std::shared_ptr<void> lifetime_ = std::make_shared<char>(0);
  std::unique_ptr<Backend> backend_;
  std::vector<std::unique_ptr<Shard>> shards_;
  std::atomic<std::uint64_t> next_session_id_{0};
  std::atomic<bool> accepting_{true};
  std::atomic<std::uint64_t> publications_{0};
  std::atomic<std::uint64_t> publish_errors_{0};
  std::atomic<std::uint64_t> backend_errors_{0};
  std::atomic<std::uint64_t> history_losses_{0};
  std::array<std::atomic<std::uint64_t>, 16> errors_by_code_{};
  std::mutex watch_mutex_;
  std::unordered_map<std::string, std::size_t> watched_;
  std::mutex error_mutex_;
  std::chrono::steady_clock::time_point error_window_{};
  int errors_in_window_ = 0;
  std::mutex lifecycle_mutex_;
  bool running_ = false;
  bool stopped_ = false;
};

LIVECAST_END_NAMESPACE
