// Broker, Broker::Impl and the Topic view. See broker_impl.hpp for the shape.
#include "broker_impl.hpp"
#include "coalesce_key.hpp"

#include <livecast/in_process_backend.hpp>

#include <asio/dispatch.hpp>
#include <asio/post.hpp>

#include <future>
#include <stdexcept>

LIVECAST_BEGIN_NAMESPACE

using detail::EncodedPublication;
using detail::EncodedPublicationPtr;
using detail::SessionState;
using detail::ShardTopic;

namespace {

const char* subscribe_error_message(Errc e) noexcept {
  switch (e) {
    case Errc::invalid_topic: return "invalid topic name";
    case Errc::already_subscribed: return "already subscribed";
    case Errc::too_many_subscriptions: return "too many subscriptions";
    case Errc::forbidden: return "not allowed to subscribe to this topic";
    case Errc::internal_error: return "the server could not decide on this subscription; try again";
    default: return to_wire_name(e);
  }
}

}  // namespace

// --- Broker: the embedder's face, forwarding to Impl ---

Broker::Broker(BrokerSettings settings, std::unique_ptr<Backend> backend)
    : impl_(std::make_unique<Impl>(std::move(settings), std::move(backend), nullptr)) {}

Broker::Broker(asio::io_context& host, BrokerSettings settings, std::unique_ptr<Backend> backend)
    : impl_(std::make_unique<Impl>(std::move(settings), std::move(backend), &host)) {}

Broker::~Broker() = default;

void Broker::start() { impl_->start(); }
void Broker::stop() {
  impl_->stop();
  impl_->stop_session_control();
}

std::error_code Broker::publish(std::string_view topic, std::string_view json) {
  return impl_->publish(topic, std::string(json), {}, /*validated=*/false);
}
std::error_code Broker::publish(std::string_view topic, const Json& value) { return impl_->publish_json(topic, value); }
std::error_code Broker::publish(std::string_view topic, std::string_view json, Backend::PublishHandler done) {
  return impl_->publish(topic, std::string(json), std::move(done), /*validated=*/false);
}

void Broker::presence(const std::string& topic, Backend::PresenceHandler done) {
  impl_->presence(topic, std::move(done));
}
BrokerMetrics Broker::metrics() const { return impl_->metrics(); }
Readiness Broker::readiness() const { return impl_->readiness(); }
void Broker::drain(DrainSettings settings, std::function<void()> done) { impl_->drain(settings, std::move(done)); }
const BrokerSettings& Broker::settings() const noexcept { return impl_->settings(); }
Backend& Broker::backend() noexcept { return impl_->backend(); }
const Backend& Broker::backend() const noexcept { return impl_->backend(); }
SessionHost& Broker::session_host() noexcept { return *impl_; }

// --- Impl: life cycle ---

Broker::Impl::Impl(BrokerSettings settings, std::unique_ptr<Backend> backend, asio::io_context* host)
    : settings_(std::move(settings)), backend_(std::move(backend)) {
  const RecoverySettings& r = settings_.recovery;
  if (r.max_reads_in_flight == 0 || r.max_reads_in_flight_per_client == 0)
    throw std::invalid_argument("livecast: RecoverySettings allows no backend read (a limit of 0 reads in flight)");
  reads_ = std::make_unique<detail::ReadScheduler>(detail::ReadScheduler::Limits{
      r.max_reads_in_flight, r.max_reads_in_flight_per_client, r.max_reads_waiting_per_client});
  // A shard that falls behind sheds, at its inbox, what no session's queue
  // could hold anyway; never where the policy says no publication is dropped.
  const std::size_t inbox_topic_bytes =
      settings_.session.slow_consumer_policy == SlowConsumerPolicy::disconnect ? 0 : settings_.session.send_queue_bytes;
  if (host) {
    settings_.threads = 1;
    auto shard = std::make_unique<Shard>(inbox_topic_bytes);
    shard->context = host;
    shards_.push_back(std::move(shard));
  } else {
    if (settings_.threads == 0) settings_.threads = 1;
    for (std::size_t i = 0; i < settings_.threads; ++i) {
      auto shard = std::make_unique<Shard>(inbox_topic_bytes);
      shard->index = i;
      shard->owned_context = std::make_unique<asio::io_context>(1);
      shard->context = shard->owned_context.get();
      shards_.push_back(std::move(shard));
    }
  }
  for (const auto& protocol : settings_.protocols)
    if (!protocol) throw std::invalid_argument("livecast: BrokerSettings::protocols holds a null protocol");
  throttle_ = std::make_unique<detail::SourceThrottle>(
      *shards_.front()->context, [this](const std::string& topic, std::shared_ptr<const std::string> data,
                                        Backend::PublishHandler done, bool only_changes) {
        send_to_backend(topic, std::move(data), std::move(done), only_changes);
      });
  std::vector<detail::Drain::Shard> drained;
  for (auto& shard : shards_) drained.push_back({shard->context, &shard->sessions});
  drain_ = std::make_unique<detail::Drain>(drained);
  if (!backend_) backend_ = std::make_unique<InProcessBackend>();
  if (settings_.protocols.empty()) settings_.protocols.push_back(make_livecast_v1_protocol());
  start_rebalancing();  // first: it throws for settings it cannot use
  backend_->start(*this);
}

Broker::Impl::~Impl() {
  stop();
  stop_session_control();
  backend_->stop();
}

void Broker::Impl::start() {
  {
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
  log(LogLevel::info, "broker.started", {{"shards", std::to_string(shards_.size())}});
}

void Broker::Impl::stop() {
  wait_for_kept_sessions();
  {
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
  throttle_->stop();  // what a max_rate held back is dropped (its publishers hear shutting_down)
  drain_->finish();  // a drain the stop cut short is over too
  log(LogLevel::info, "broker.stopped");
}

void Broker::Impl::execute_on_shard(std::size_t shard, const std::function<void()>& f) {
  Shard& s = *shards_[shard];
  const bool inline_call = !s.owned_context || !s.thread.joinable() || s.context->stopped() ||
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

// --- Impl: publishing ---

// Non-empty, bounded, strict UTF-8 (it goes into text frames) without
// control characters.
Errc Broker::Impl::validate_topic(std::string_view topic) const noexcept {
  if (topic.empty() || topic.size() > settings_.max_topic_bytes) return Errc::invalid_topic;
  for (char ch : topic) {
    auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7f) return Errc::invalid_topic;
  }
  return is_valid_utf8(topic) ? Errc::ok : Errc::invalid_topic;
}

std::error_code Broker::Impl::publish_json(std::string_view topic, const Json& value) {
  if (!value.valid_utf8()) {
    publish_errors_.fetch_add(1, std::memory_order_relaxed);
    return Errc::invalid_payload;
  }
  return publish(topic, value.dump(), {}, /*validated=*/true);
}

std::error_code Broker::Impl::publish(std::string_view topic, std::string json, Backend::PublishHandler done,
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
  TopicDelivery delivery;
  if (settings_.topic_delivery) guarded("topic_delivery", [&] { delivery = settings_.topic_delivery(topic); });
  if (delivery.max_rate > 0) {
    throttle_->offer(std::string(topic), std::move(data), std::move(done), delivery.max_rate, delivery.only_changes);
    return {};
  }
  send_to_backend(std::string(topic), std::move(data), std::move(done), delivery.only_changes);
  return {};
}

void Broker::Impl::send_to_backend(const std::string& topic, std::shared_ptr<const std::string> data,
                                   Backend::PublishHandler done, bool only_changes) {
  if (only_changes && !changes_.changed(topic, data)) {
    publications_unchanged_.fetch_add(1, std::memory_order_relaxed);
    if (done) guarded("publish handler", [&] { done({}, 0); });  // never sent: the subscribers have it
    return;
  }
  std::shared_ptr<const std::string> sent = only_changes ? data : nullptr;
  backend_->publish(topic, std::move(data), [this, topic, sent = std::move(sent), done = std::move(done)](
                                                std::error_code ec, std::uint64_t offset) {
    if (ec) {
      publish_errors_.fetch_add(1, std::memory_order_relaxed);
      report_error("backend refused a publication", ec);
      if (sent) changes_.forget(topic, sent);  // not stored: the same value again must go out
    }
    if (done) guarded("publish handler", [&] { done(ec, offset); });
  });
}

// Encode once per protocol, find the coalescing key once, cross each shard
// boundary once.
void Broker::Impl::on_publication(Publication publication) {
  // Read before anything is encoded: a topic nobody here watches costs a
  // lookup. A subscriber joins its shard (and sets the bit) before its read
  // of the backend is sent, so a publication this skips is in that read.
  const std::uint64_t targets = shards_subscribed(publication.topic);
  if (targets == 0) return;
  auto encoded = std::make_shared<EncodedPublication>();
  encoded->publication = std::move(publication);
  encoded->frames.reserve(settings_.protocols.size());
  const auto arrived = std::chrono::steady_clock::now();  // for BrokerMetrics::delivery_latency
  const std::string key = coalesce_key_of(encoded->publication);
  for (auto& protocol : settings_.protocols) {
    encoded->frames.push_back(protocol->encode_publication(encoded->publication));
    encoded->frames.back()->published_at = arrived;
    encoded->frames.back()->coalesce_key = key;
  }
  EncodedPublicationPtr shared = std::move(encoded);
  for (auto& shard : shards_)
    if (shard->index >= 64 || (targets >> shard->index) & 1u) put_in_inbox(*shard, {shared, {}});
}

void Broker::Impl::put_in_inbox(Shard& shard, detail::ShardInbox::Item item) {
  if (shard.inbox.put(std::move(item))) post_drain(shard);  // else a drain is already on its way
}

void Broker::Impl::post_drain(Shard& shard) {
  Shard* s = &shard;
  asio::post(*s->context, [this, alive = std::weak_ptr<void>(lifetime_), s] {
    if (!alive.expired()) drain_inbox(*s);
  });
}

// One pass: batches of the oldest ShardInbox::max_batch items until about
// max_pass_deliveries frames were queued, so that a pass of many small
// topics takes everything waiting (each session's writes then carry many
// frames) while a pass of one topic of many subscribers stays short. The
// next drain is posted only now, behind the writes this pass scheduled (see
// shard_inbox.hpp). Consecutive publications of one topic go out as one run
// (ShardTopic::deliver), which keeps each session's order: a run never
// passes the items before or after it.
void Broker::Impl::drain_inbox(Shard& shard) {
  std::uint64_t queued = 0;
  bool more = false;
  do {
    more = shard.inbox.take(shard.batch);
    const std::vector<detail::ShardInbox::Item>& items = shard.batch;
    for (std::size_t i = 0; i < items.size();) {
      if (!items[i].publication) {
        if (items[i].in_order) items[i].in_order();
        ++i;
        continue;
      }
      const std::string& topic = items[i].publication->publication.topic;
      shard.run.clear();
      for (; i < items.size() && items[i].publication && items[i].publication->publication.topic == topic; ++i)
        shard.run.push_back(&items[i].publication);
      queued += deliver(shard, shard.run);
    }
    shard.run.clear();
    shard.batch.clear();
  } while (more && queued < max_pass_deliveries);
  if (shard.inbox.more_after_drain()) post_drain(shard);
}

void Broker::Impl::shard_joined(const std::string& topic, std::size_t shard) {
  if (shard >= 64) return;  // shards past the mask's bits get every publication
  std::unique_lock<std::shared_mutex> lock(topic_shards_mutex_);
  topic_shards_[topic] |= std::uint64_t{1} << shard;
}

void Broker::Impl::shard_left(const std::string& topic, std::size_t shard) {
  if (shard >= 64) return;
  std::unique_lock<std::shared_mutex> lock(topic_shards_mutex_);
  auto it = topic_shards_.find(topic);
  if (it == topic_shards_.end()) return;
  it->second &= ~(std::uint64_t{1} << shard);
  if (it->second == 0) topic_shards_.erase(it);
}

std::uint64_t Broker::Impl::shards_subscribed(const std::string& topic) const {
  if (shards_.size() > 64) return ~std::uint64_t{0};
  std::shared_lock<std::shared_mutex> lock(topic_shards_mutex_);
  auto it = topic_shards_.find(topic);
  return it == topic_shards_.end() ? 0 : it->second;
}

// Asked here rather than at publish: publications from other instances
// (Redis) arrive only here.
std::string Broker::Impl::coalesce_key_of(const Publication& publication) {
  if (!settings_.topic_delivery || !publication.data) return {};
  TopicDelivery delivery;
  if (!guarded("topic_delivery", [&] { delivery = settings_.topic_delivery(publication.topic); })) return {};
  if (delivery.coalesce_by.empty()) return {};
  return detail::coalesce_key(*publication.data, delivery.coalesce_by);
}

std::uint64_t Broker::Impl::deliver(Shard& shard, const std::vector<const EncodedPublicationPtr*>& run) {
  auto it = shard.topics.find((*run.front())->publication.topic);
  if (it == shard.topics.end()) return 0;
  ShardTopic::DeliveryCount n = it->second.deliver(run);
  shard.counters.deliveries.fetch_add(n.delivered, std::memory_order_relaxed);
  if (n.dropped) shard.counters.dropped.fetch_add(n.dropped, std::memory_order_relaxed);
  if (n.coalesced) shard.counters.coalesced.fetch_add(n.coalesced, std::memory_order_relaxed);
  return n.delivered;
}

// Every live subscriber of the topic starts over as after a subscribe
// without position: a notice saying "not recovered", then the snapshot.
// Subscribers still waiting for their own read get its answer.
void Broker::Impl::on_history_lost(const std::string& topic, ReadResult state) {
  history_losses_.fetch_add(1, std::memory_order_relaxed);
  auto shared = std::make_shared<const ReadResult>(std::move(state));
  for (auto& shard : shards_) {
    Shard* s = shard.get();
    // Through the inbox: in order with the publications before and after it.
    put_in_inbox(*s, {nullptr, [s, topic, shared, this] {
      auto it = s->topics.find(topic);
      if (it == s->topics.end()) return;
      it->second.for_each_live([&](ShardTopic::Subscriber& sub) {
        SessionState& session = *sub.session;
        const Protocol& p = protocol(session.protocol());
        if (FramePtr notice = p.encode_subscribed(std::nullopt, topic, shared->head, false))
          session.send(std::move(notice));
        if (detail::ResumeTracker* tracker = session.resume_tracker()) tracker->started(topic, shared->head);
        for (const Publication& publication : shared->publications) session.send(p.encode_publication(publication));
        sub.next_offset = shared->head.offset + 1;
      });
    }});
  }
}

// A backend calls this when it loses its connection (an error) and may call
// it without one when it is back; the log gets the transitions only.
void Broker::Impl::on_backend_error(std::error_code ec) {
  const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::steady_clock::now().time_since_epoch()).count();
  if (!ec) {
    if (backend_lost_.exchange(false))
      log(LogLevel::info, "backend.available",
          {{"unavailable_ms", std::to_string(now_ms - backend_lost_at_ms_.load())}});
    return;
  }
  backend_errors_.fetch_add(1, std::memory_order_relaxed);
  if (!backend_lost_.exchange(true)) {
    backend_lost_at_ms_.store(now_ms);
    log(LogLevel::warning, "backend.unavailable", {{"error", ec.message()}});
  }
  if (within_error_budget()) call_on_error("backend", ec);
}

// --- Impl: handshakes and sessions ---

std::optional<AuthResult> Broker::Impl::authenticate(const HandshakeRequest& request) {
  std::optional<AuthResult> verdict;
  if (!settings_.authenticator) return AuthResult::accept(Principal{});
  guarded("the authenticator", [&] { verdict = settings_.authenticator(request); });
  return verdict;
}

std::optional<std::size_t> Broker::Impl::find_protocol(std::string_view name) const noexcept {
  if (name.empty()) return 0;
  for (std::size_t i = 0; i < settings_.protocols.size(); ++i)
    if (settings_.protocols[i]->name() == name) return i;
  return std::nullopt;
}

HttpResponse Broker::Impl::serve_http(const HttpHandler& handler, const HttpRequest& request) {
  if (!handler) return HttpResponse::not_found();
  HttpResponse response;
  if (!guarded("the HTTP handler", [&] { response = handler(request); }))
    return HttpResponse{500, "text/plain; charset=utf-8", "internal server error\n", {}};
  return response;
}

std::shared_ptr<Session> Broker::Impl::open_session(std::size_t shard, Principal principal, std::size_t protocol,
                                                    SessionConnection& connection) {
  Shard& s = *shards_[shard];
  auto session = std::make_shared<SessionState>(next_session_id_.fetch_add(1) + 1, std::move(principal), shard,
                                                protocol, settings_.session, connection, &s.counters.send_queue_bytes);
  session->set_wire(this->protocol(protocol));
  s.counters.sessions_opened.fetch_add(1, std::memory_order_relaxed);
  drain_->opened(*session);
  // Closed when the token expires (at the next turn of the shard's loop if
  // it already has: never from inside open_session, before the transport
  // holds the session).
  if (session->principal().expires_at) schedule_expiry(*session);
  start_session(*session);
  return session;
}

void Broker::Impl::start_session(SessionState& session) {
  session_opened(session);
  join_server_rooms(session);
}

void Broker::Impl::join_server_rooms(SessionState& session) {
  if (!settings_.server_joins) return;
  std::vector<std::string> joins;
  if (!guarded("server_joins", [&] { joins = settings_.server_joins(session.principal()); }))
    send_error(session, std::nullopt, Errc::internal_error, "the server could not make its joins; reconnect later");
  for (std::string& topic : joins) {
    if (session.subscribed(topic)) continue;  // resumed with it
    if (Errc e = check_subscribe(session, topic); e != Errc::ok) {
      report_error("server-side join of '" + topic + "' refused", make_error_code(e));
      continue;
    }
    subscribe_checked(session, std::move(topic), std::nullopt, std::nullopt);
  }
}

void Broker::Impl::handle_message(Session& s, std::string_view message) {
  SessionState& session = SessionState::of(s);
  if (session.closing()) return;
  Shard& shard = *shards_[session.shard()];
  shard.counters.messages_received.fetch_add(1, std::memory_order_relaxed);
  if (!session.take_message_token(std::chrono::steady_clock::now())) {
    send_error(session, std::nullopt, Errc::rate_limited, "too many messages");
    if (session.flooding()) session.close(CloseCode::rate_limited, "message flood");
    return;
  }
  if (message.size() > settings_.session.max_message_bytes) {
    send_error(session, std::nullopt, Errc::message_too_large, "message too large");
    return;
  }
  DecodeResult decoded = protocol(session.protocol()).decode(message);
  if (!decoded.request) {
    if (!decoded.answer.empty()) {  // the protocol's own refusal; the session goes on
      count_error(decoded.error);
      session.count_error_sent();
      session.send(protocol(session.protocol()).encode_refusal(decoded));
      return;
    }
    if (session.awaiting_connect()) {
      refuse_connect(session, CloseCode::protocol_error, decoded.message);
      return;
    }
    send_error(session, decoded.id, decoded.error, decoded.message);
    return;
  }
  execute(session, std::move(*decoded.request));
}

void Broker::Impl::execute(Session& s, ClientRequest r) {
  SessionState& session = SessionState::of(s);
  if (session.closing()) return;
  const Protocol& p = protocol(session.protocol());
  if (session.awaiting_connect() || session.resuming() || r.op == ClientRequest::Op::connect) {
    connect(session, std::move(r));  // in_band_connect.cpp
    return;
  }
  switch (r.op) {
    case ClientRequest::Op::subscribe:
      if (Errc e = check_subscribe(session, r.topic); e != Errc::ok) {
        send_error(session, r.id, e, subscribe_error_message(e));
        return;
      }
      subscribe_checked(session, std::move(r.topic), std::move(r.recover), r.id, nullptr, std::move(r.recent));
      return;
    case ClientRequest::Op::unsubscribe:
      if (!unsubscribe(session, r.topic)) {
        send_error(session, r.id, Errc::not_subscribed, "not subscribed");
        return;
      }
      if (r.id) session.send(p.encode_unsubscribed(*r.id, r.topic));
      return;
    case ClientRequest::Op::publish:
      client_publish(session, std::move(r));
      return;
    case ClientRequest::Op::ping:
      if (r.id) session.send(p.encode_pong(*r.id));
      return;
    case ClientRequest::Op::refresh:
      refresh(session, std::move(r));
      return;
    case ClientRequest::Op::event:
      client_event(session, std::move(r));
      return;
    case ClientRequest::Op::close:
      session.set_client_closed();
      if (r.may_return) session.set_client_may_return();
      session.close(CloseCode::normal, "client disconnected");
      return;
    case ClientRequest::Op::heartbeat:
    case ClientRequest::Op::connect:  // handled above
      return;
  }
}

void Broker::Impl::close_session(Session& s) {
  SessionState& session = SessionState::of(s);
  Shard& shard = *shards_[session.shard()];
  keep_for_resumption(session);  // before its topics are left
  for (const std::string& topic : session.subscriptions()) leave(session, topic);
  if (session.close_code() == CloseCode::slow_consumer)
    shard.counters.slow_consumer_closes.fetch_add(1, std::memory_order_relaxed);
  shard.counters.sessions_closed.fetch_add(1, std::memory_order_relaxed);
  shard.counters.dropped.fetch_add(session.take_new_drops(), std::memory_order_relaxed);
  shard.counters.coalesced.fetch_add(session.take_new_coalesced(), std::memory_order_relaxed);
  session.queue().clear();
  session_closed(session);
  // One that never connected in band was never opened to the drain either.
  if (!session.awaiting_connect()) drain_->closed(session);
}

std::size_t Broker::Impl::take_frames(Session& session, std::vector<FramePtr>& out, std::size_t max_bytes) {
  SessionState& state = SessionState::of(session);
  const std::size_t from = out.size();
  const std::size_t n = state.queue().take(out, max_bytes);
  shards_[state.shard()]->counters.delivery_latency.observe(out, from);
  return n;
}
void Broker::Impl::frames_written(Session& session, std::size_t bytes) noexcept {
  SessionState::of(session).queue().written(bytes);
}
void Broker::Impl::set_in_flight(Session& session, std::size_t bytes) noexcept {
  SessionState::of(session).queue().set_in_flight(bytes);
}
bool Broker::Impl::has_frames(const Session& session) const noexcept {
  return !SessionState::of(session).queue().empty();
}

// --- Impl: requests (subscriptions: subscriptions.cpp) ---

Errc Broker::Impl::check_publish(std::string_view topic, const Principal& principal) {
  if (Errc e = validate_topic(topic); e != Errc::ok) return e;
  bool allowed = false;
  if (!guarded("the authorizer", [&] { allowed = settings_.authorizer.allowed(Action::publish, topic, principal); }))
    return Errc::internal_error;
  return allowed ? Errc::ok : Errc::forbidden;
}

void Broker::Impl::client_publish(SessionState& session, ClientRequest r) {
  switch (check_publish(r.topic, session.principal())) {
    case Errc::ok: break;
    case Errc::invalid_topic: send_error(session, r.id, Errc::invalid_topic, "invalid topic name"); return;
    case Errc::forbidden:
      send_error(session, r.id, Errc::forbidden, "not allowed to publish on this topic");
      return;
    default:
      send_error(session, r.id, Errc::internal_error, "the server could not decide on this publication; try again");
      return;
  }
  std::weak_ptr<SessionState> weak = session.weak();
  Shard* s = shards_[session.shard()].get();
  auto id = r.id;
  std::string topic = r.topic;
  std::error_code ec = publish(r.topic, std::move(r.data), [this, s, weak, id, topic](std::error_code ec,
                                                                                      std::uint64_t offset) {
    if (!id) return;
    asio::dispatch(*s->context, [this, alive = std::weak_ptr<void>(lifetime_), weak, id, topic, ec, offset] {
      if (alive.expired()) return;
      auto session = weak.lock();
      if (!session || session->closing()) return;
      if (ec) {
        send_error(*session, id, Errc::backend_unavailable, "publication not accepted");
        return;
      }
      session->send(protocol(session->protocol()).encode_published(*id, topic, offset));
    });
  }, /*validated=*/false);
  if (ec) send_error(session, r.id, static_cast<Errc>(ec.value()), ec.message());
}

void Broker::Impl::send_error(SessionState& session, std::optional<std::int64_t> id, Errc e,
                              std::string_view message) {
  count_error(e);
  session.count_error_sent();
  session.send(protocol(session.protocol()).encode_error(id, e, message));
}

// --- Impl: what there is to see ---

void Broker::Impl::presence(const std::string& topic, Backend::PresenceHandler done) {
  std::uint64_t local = 0;
  {
    std::lock_guard<std::mutex> lock(watch_mutex_);
    auto it = watched_.find(topic);
    if (it != watched_.end()) local = it->second;
  }
  backend_->presence(topic, local, [this, done = std::move(done)](std::error_code ec, std::uint64_t n) {
    guarded("presence handler", [&] { done(ec, n); });
  });
}

// --- Session ---

void Session::close(CloseCode code, std::string_view reason) {
  if (closing_) return;
  // A connected session's protocol may say goodbye first (Socket.IO's
  // DISCONNECT, which tells its client not to reconnect).
  auto& state = detail::SessionState::of(*this);
  if (state.wire() && !state.awaiting_connect() && !state.client_closed())
    if (FramePtr farewell = state.wire()->encode_farewell(code, reason)) {
      state.send(std::move(farewell));
      if (closing_) return;  // the farewell overflowed the queue, which closed the session
    }
  closing_ = true;
  close_code_ = code;
  connection_->close(code, reason);
}

LIVECAST_END_NAMESPACE
