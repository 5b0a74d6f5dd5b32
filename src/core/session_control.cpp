// Host control of sessions: Broker::session_count, sessions and
// close_sessions, each shard's SessionDirectory kept as sessions open and
// close, and the SessionHooks calls (session_control.hpp).
//
// A question about a principal goes to every shard as one post; each shard
// answers from its own directory on its own thread (no lock but the
// gather's), and the last to answer hands the whole to the host. stop()
// finishes what the stopped shards will never answer.
#include "broker_impl.hpp"
#include "session_directory.hpp"

#include <asio/post.hpp>

#include <algorithm>
#include <iterator>

LIVECAST_BEGIN_NAMESPACE

using detail::SessionState;

std::size_t Broker::session_count() const noexcept { return impl_->session_count(); }

void Broker::sessions(std::string principal_id, std::function<void(SessionList)> done, std::size_t max_sessions) {
  impl_->list_sessions(std::move(principal_id), std::move(done), max_sessions);
}

void Broker::close_sessions(std::string principal_id, CloseCode code, std::string reason,
                            std::function<void(std::size_t)> done) {
  impl_->close_sessions(std::move(principal_id), code, std::move(reason), std::move(done));
}

namespace {

// One shard's part of an answer into the whole.
void merge(SessionList& whole, SessionList&& part) {
  whole.total += part.total;
  std::move(part.sessions.begin(), part.sessions.end(), std::back_inserter(whole.sessions));
}
void merge(std::size_t& whole, std::size_t part) { whole += part; }

}  // namespace

std::size_t Broker::Impl::session_count() const noexcept {
  std::size_t n = 0;
  for (const auto& shard : shards_) n += shard->open_sessions();
  return n;
}

// `part(shard, result)` runs on each shard's thread, outside the gather's
// lock; `done` once, with the whole, through guarded (it is the host's code,
// possibly on a shard thread).
template <class Result, class Part>
void Broker::Impl::ask_every_shard(std::function<void(Result)> done, Part part) {
  auto answer = [this, done = std::move(done)](Result result) {
    if (done) guarded("a session control handler", [&] { done(std::move(result)); });
  };
  auto gather = std::make_shared<detail::ShardGather<Result>>(shards_.size(), std::move(answer));
  if (!gathers_.admit(gather)) {
    gather->finish();  // stopped: nothing
    return;
  }
  for (auto& shard : shards_) {
    Shard* s = shard.get();
    asio::post(*s->context, [alive = std::weak_ptr<void>(lifetime_), s, gather, part] {
      if (alive.expired() || gather->finished()) return;
      Result mine{};
      part(*s, mine);
      gather->add([&](Result& whole) { merge(whole, std::move(mine)); });
    });
  }
}

void Broker::Impl::list_sessions(std::string principal_id, std::function<void(SessionList)> done, std::size_t max) {
  if (principal_id.empty()) max = 0;  // the anonymous are no one's: see broker.hpp
  ask_every_shard<SessionList>(
      [max, done = std::move(done)](SessionList list) {
        std::sort(list.sessions.begin(), list.sessions.end(),
                  [](const SessionInfo& a, const SessionInfo& b) { return a.id < b.id; });
        if (list.sessions.size() > max) list.sessions.resize(max);
        if (done) done(std::move(list));
      },
      [this, principal_id = std::move(principal_id), max](Shard& shard, SessionList& list) {
        shard.sessions.list(principal_id, max, settings_.protocols, list);
      });
}

void Broker::Impl::close_sessions(std::string principal_id, CloseCode code, std::string reason,
                                  std::function<void(std::size_t)> done) {
  ask_every_shard<std::size_t>(std::move(done),
                               [principal_id = std::move(principal_id), code, reason = std::move(reason)](
                                   Shard& shard, std::size_t& closed) {
                                 closed += shard.sessions.close(principal_id, code, reason);
                               });
}

void Broker::Impl::stop_session_control() { gathers_.stop(); }

// --- the session's life, on its shard thread ---

void Broker::Impl::session_opened(SessionState& session) {
  shards_[session.shard()]->sessions.add(session);
  if (settings_.hooks.on_open) guarded("SessionHooks::on_open", [&] { settings_.hooks.on_open(session); });
}

void Broker::Impl::session_closed(SessionState& session) {
  // A session that never connected (in_band_connect.cpp) was never opened
  // as far as the hooks and the directory know.
  if (session.awaiting_connect()) return;
  if (settings_.hooks.on_close) {
    std::optional<CloseCode> code;
    if (session.closing() && !session.client_closed()) code = session.close_code();  // the client's goodbye: nullopt
    guarded("SessionHooks::on_close", [&] { settings_.hooks.on_close(session, code); });
  }
  shards_[session.shard()]->sessions.remove(session);
}

void Broker::Impl::session_subscribed(SessionState& session, const std::string& topic) {
  if (settings_.hooks.on_subscribe)
    guarded("SessionHooks::on_subscribe", [&] { settings_.hooks.on_subscribe(session, topic); });
}

void Broker::Impl::session_unsubscribed(SessionState& session, const std::string& topic) {
  if (settings_.hooks.on_unsubscribe)
    guarded("SessionHooks::on_unsubscribe", [&] { settings_.hooks.on_unsubscribe(session, topic); });
}

LIVECAST_END_NAMESPACE
