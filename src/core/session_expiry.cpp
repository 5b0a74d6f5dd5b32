// Sessions that end with their token (Principal::expires_at): each shard
// keeps a min-heap of expiries and one system_timer for the earliest; a
// `refresh` request with a newer token for the same principal moves the
// end.
//
// Threads: all of it on the session's shard thread.
#include "broker_impl.hpp"

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

LIVECAST_BEGIN_NAMESPACE

using detail::SessionState;

// A newer token for the same principal moves the session's end. The
// Authenticator judges it as it would a handshake whose only credential is
// that token (transport "refresh", `Authorization: Bearer <token>`). It may
// extend the session, not change who it is: subscriptions were authorized
// for this principal, so another id, other roles or other claims are
// refused (reconnect with that token instead).
void Broker::Impl::refresh(SessionState& session, ClientRequest r) {
  HandshakeRequest request;
  request.transport = "refresh";
  request.headers.emplace("authorization", "Bearer " + r.token);
  std::optional<AuthResult> verdict = authenticate(request);
  if (!verdict) {
    send_error(session, r.id, Errc::internal_error, "the token could not be checked, try again");
    return;
  }
  if (!verdict->accepted()) {
    send_error(session, r.id, Errc::unauthorized, verdict->reason.empty() ? "token refused" : verdict->reason);
    return;
  }
  const Principal& current = session.principal();
  const Principal& next = *verdict->principal;
  if (next.id != current.id || next.roles != current.roles || next.claims != current.claims) {
    send_error(session, r.id, Errc::unauthorized, "the token names another principal; reconnect with it");
    return;
  }
  session.set_expires_at(next.expires_at);
  if (next.expires_at) schedule_expiry(session);
  if (r.id) session.send(protocol(session.protocol()).encode_refreshed(*r.id, next.expires_at));
}

// --- Impl: sessions whose token expires ---

void Broker::Impl::schedule_expiry(SessionState& session) {
  Shard& shard = *shards_[session.shard()];
  // Entries of sessions long closed wait for their time; when they outnumber
  // the open sessions, they go at once.
  const std::uint64_t open = shard.open_sessions();
  if (shard.expiries.size() > 2 * open + 64) {
    std::vector<Expiry> kept;
    while (!shard.expiries.empty()) {
      if (!shard.expiries.top().session.expired()) kept.push_back(shard.expiries.top());
      shard.expiries.pop();
    }
    for (Expiry& e : kept) shard.expiries.push(std::move(e));
  }
  shard.expiries.push(Expiry{*session.principal().expires_at, session.weak()});
  arm_expiry(shard);
}

void Broker::Impl::arm_expiry(Shard& shard) {
  if (shard.expiries.empty()) return;
  const auto due = shard.expiries.top().at;
  if (shard.expiry_armed_for && *shard.expiry_armed_for <= due) return;
  if (!shard.expiry_timer) shard.expiry_timer = std::make_unique<asio::system_timer>(*shard.context);
  shard.expiry_armed_for = due;
  shard.expiry_timer->expires_at(due);  // cancels an earlier wait, whose handler sees the error
  Shard* s = &shard;
  shard.expiry_timer->async_wait([this, alive = std::weak_ptr<void>(lifetime_), s](const std::error_code& ec) {
    if (alive.expired() || ec) return;
    s->expiry_armed_for.reset();
    expire_sessions(*s);
  });
}

void Broker::Impl::expire_sessions(Shard& shard) {
  const auto now = std::chrono::system_clock::now();
  while (!shard.expiries.empty() && shard.expiries.top().at <= now) {
    std::shared_ptr<SessionState> session = shard.expiries.top().session.lock();
    shard.expiries.pop();
    if (!session || session->closing()) continue;
    const auto& at = session->principal().expires_at;
    if (!at || *at > now) continue;
    if (session->awaiting_connect())  // in_band_connect.cpp
      refuse_connect(*session, CloseCode::unauthorized, "no connect request in time");
    else
      session->close(CloseCode::token_expired, "token expired");
  }
  arm_expiry(shard);
}

LIVECAST_END_NAMESPACE
