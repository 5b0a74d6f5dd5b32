// EngineIoPolling: the payload of a POST, the registry of sessions by sid, and carrying each request to the shard that
// owns its session. The sessions themselves are in engineio_session.cpp.
#include "engineio_polling.hpp"

#include "engineio_session.hpp"

#include <asio/post.hpp>

#include <algorithm>
#include <utility>

LIVECAST_BEGIN_NAMESPACE
namespace detail {

void refuse_engineio(HttpConnection& c, HttpCounters& counters, EngineIoError error) {
  bump(error == EngineIoError::unknown_sid ? counters.refused_unknown_session : counters.refused_engineio);
  c.respond(400, "application/json", engineio_error_body(error), "Cache-Control: no-store\r\n");
}

std::vector<std::string_view> split_engineio_payload(std::string_view body, std::string_view separator) {
  std::vector<std::string_view> packets;
  if (separator.empty()) {
    if (!body.empty()) packets.push_back(body);
    return packets;
  }
  while (!body.empty()) {
    const std::size_t at = body.find(separator);
    const std::string_view packet = body.substr(0, at);
    if (!packet.empty()) packets.push_back(packet);
    if (at == std::string_view::npos) break;
    body.remove_prefix(at + separator.size());
  }
  return packets;
}

// --- EngineIoPolling ---

EngineIoPolling::EngineIoPolling(SessionHost& host, std::size_t protocol,
                                 std::shared_ptr<const HttpTransportSettings> settings,
                                 std::shared_ptr<HttpCounters> counters, bool upgrades)
    : host_(host),
      protocol_(protocol),
      settings_(std::move(settings)),
      counters_(std::move(counters)),
      ping_interval_(std::max(host.session_settings().ping_interval, std::chrono::milliseconds(1))),
      heartbeat_timeout_(engineio_heartbeat_timeout(host.session_settings())),
      separator_(host.protocol(protocol).batch_framing(std::nullopt).separator),
      upgrades_(upgrades),
      sessions_(host.shard_count()) {}

EngineIoPolling::~EngineIoPolling() = default;

std::shared_ptr<EngineIoPollingSession> EngineIoPolling::find(std::size_t shard, const std::string& sid) const {
  const auto& sessions = sessions_[shard];
  auto it = sessions.find(sid);
  return it == sessions.end() ? nullptr : it->second;
}

void EngineIoPolling::forget(std::size_t shard, const std::string& sid) {
  if (sessions_[shard].erase(sid) > 0) drop(counters_->engineio_sessions_active);
}

void EngineIoPolling::handshake(HttpConnection& c, std::size_t shard, HandshakeRequest request) {
  if (stopping()) {
    c.no_keep_alive();
    c.refuse(503, "unavailable", "server shutting down", counters_->refused_shutting_down);
    return;
  }
  // A session outlives its connections, so max_connections does not bound
  // it by itself: the sessions (closed ones waiting for their last GET
  // included) are bounded by the same number.
  if (counters_->engineio_sessions_active.load(std::memory_order_relaxed) >= settings_->max_connections) {
    c.refuse(503, "unavailable", "too many sessions", counters_->refused_too_many_connections,
             "Retry-After: 1\r\n");
    return;
  }
  std::string sid = make_engineio_sid(shard);
  if (sid.empty()) {
    host_.report_error("engine.io: no random session id", std::make_error_code(std::errc::io_error));
    c.refuse(500, "internal_error", "no session id", counters_->refused_unavailable);
    return;
  }
  auto session = std::make_shared<EngineIoPollingSession>(*this, shard, sid);
  sessions_[shard].emplace(sid, session);
  bump(counters_->engineio_sessions);
  bump(counters_->engineio_sessions_active);
  Greeting greeting;
  greeting.session_id = sid;
  greeting.heartbeat_interval = ping_interval_;
  greeting.heartbeat_timeout = heartbeat_timeout_;
  // maxPayload: the client batches its POSTs up to it, so it must pass the
  // transport's body limit as well as the session's message limit.
  greeting.max_message_bytes = std::min(host_.session_settings().max_message_bytes, settings_->max_body_bytes);
  // The WebSocket on the same port, when there is one: the client probes it
  // and moves the session there (EngineIoPollingSession::hand_over);
  // without, it stays on polling, which Engine.IO allows.
  if (upgrades_) greeting.upgrades = {"websocket"};
  const std::string answer = session->open(std::move(request), greeting);
  c.respond(200, "text/plain; charset=UTF-8", answer, "Cache-Control: no-store\r\n");
}

void EngineIoPolling::poll(HttpConnection& c, std::size_t shard, const std::string& sid) {
  route(c, shard, sid, /*is_post=*/false);
}

void EngineIoPolling::post(HttpConnection& c, std::size_t shard, const std::string& sid) {
  // Binary attachments are not supported, and the body would not be text.
  if (c.request().header("content-type").rfind("application/octet-stream", 0) == 0) {
    refuse_engineio(c, *counters_, EngineIoError::bad_request);
    return;
  }
  route(c, shard, sid, /*is_post=*/true);
}

void EngineIoPolling::route(HttpConnection& c, std::size_t shard, const std::string& sid, bool is_post) {
  std::optional<std::size_t> owner;
  if (const std::size_t shard_of_sid = engineio_sid_shard(sid); shard_of_sid < sessions_.size()) owner = shard_of_sid;
  std::weak_ptr<EngineIoPolling> weak = shared_from_this();
  EngineIoAnswer::OnEnd on_end;
  if (!is_post && owner) {
    // The GET's packets were written, or lost with the connection: the
    // session hears of it on its own thread.
    on_end = [weak, owner = *owner, sid](std::shared_ptr<EngineIoAnswer> answer) {
      auto self = weak.lock();
      if (!self) return;
      asio::post(self->host_.shard_context(owner), [weak, owner, sid, answer = std::move(answer)] {
        auto polling = weak.lock();
        if (!polling) return;
        if (auto session = polling->find(owner, sid)) session->poll_ended(answer);
      });
    };
  }
  if (!owner) {
    refuse_engineio(c, *counters_, EngineIoError::unknown_sid);
    return;
  }
  auto answer = std::make_shared<EngineIoAnswer>(c, *counters_, !is_post, std::move(on_end));
  c.serve(answer);
  std::string body = is_post ? c.request().body : std::string();
  asio::post(host_.shard_context(*owner), [weak, owner = *owner, shard, sid, answer, is_post,
                                           body = std::move(body)]() mutable {
    auto self = weak.lock();
    if (!self) return;
    auto session = self->find(owner, sid);
    if (!session) {
      asio::post(self->host_.shard_context(shard), [answer] { answer->refuse(EngineIoError::unknown_sid); });
      return;
    }
    if (is_post)
      session->post(std::move(answer), shard, std::move(body));
    else
      session->poll(std::move(answer), shard);
  });
}

void EngineIoPolling::close_all(std::size_t shard) {
  stopping_.store(true, std::memory_order_relaxed);
  std::vector<std::shared_ptr<EngineIoPollingSession>> all;
  for (const auto& entry : sessions_[shard]) all.push_back(entry.second);
  for (auto& session : all) session->shut_down();
}

}  // namespace detail
LIVECAST_END_NAMESPACE
