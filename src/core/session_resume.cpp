// Resuming sessions (Protocol::resumes_sessions: Socket.IO's connection state
// recovery), the broker's side; the record and where each topic resumes are
// session_resumption.hpp's.
//
//   connect with no resume id   -> a new resume id in the connect answer
//   connect with one            -> Backend::take_session; the record's topics
//                                  are subscribed again from where the client
//                                  stopped, all their reads awaited; if every
//                                  one recovered: the same id in the answer,
//                                  then what was missed; otherwise a new id,
//                                  the topics left, and a fresh start (server
//                                  joins), as Socket.IO does
//   the connection drops        -> Backend::keep_session, for resume_window
//
// Threads: on the session's shard thread, except the backend's answers,
// which are carried there.
#include "broker_impl.hpp"

#include <asio/dispatch.hpp>

#include <algorithm>
#include <chrono>
#include <random>

LIVECAST_BEGIN_NAMESPACE

using detail::SessionState;
using detail::ShardTopic;

namespace {

// 128 random bits, base 62: the private id is what stands between a
// session's subscriptions and anyone else (beside the credentials, which
// the resuming connect must carry too, for the same principal).
std::string new_resume_id() {
  static constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  std::random_device device;
  std::string id(22, 'x');
  for (char& c : id) c = alphabet[device() % 62];
  return id;
}

// Closes after which the client comes back on its own: what a farewell
// does not send away for good (Protocol::encode_farewell: Socket.IO's
// DISCONNECT goes with these).
bool client_will_return(const SessionState& session) noexcept {
  if (session.client_closed()) return session.client_may_return();
  if (!session.closing()) return true;  // the connection dropped
  return !ends_session_for_good(session.close_code());
}

}  // namespace

namespace detail {
// A connect that resumes: the reads of the record's topics, answered one by one.
struct ResumeGroup {
  struct Read {
    std::string topic;
    std::optional<ReadResult> result;
  };
  std::string resume_id;
  std::string session_name;  // a new one, if it is not resumed
  std::string kept_name;     // the one it had, if it is
  std::vector<Read> reads;
  std::size_t pending = 0;
};
}  // namespace detail

void Broker::Impl::connected(SessionState& session, const std::string& session_name) {
  const Protocol& p = protocol(session.protocol());
  if (!p.resumes_sessions()) {
    session.send(p.encode_connected(session_name));
    start_session(session);
    return;
  }
  session.track_for_resumption(settings_.recovery.resume_tracked_publications);
  answer_resumable(session, session_name, new_resume_id());
  start_session(session);
}

void Broker::Impl::answer_resumable(SessionState& session, std::string name, std::string resume_id) {
  session.set_resume_id(std::move(resume_id));
  session.set_public_name(std::move(name));
  session.send(protocol(session.protocol()).encode_connected(session.public_name(), session.resume_id()));
}

void Broker::Impl::resume(SessionState& session, std::string resume_id, std::string resume_after,
                          std::string session_name) {
  if (!protocol(session.protocol()).resumes_sessions()) {
    connected(session, session_name);
    return;
  }
  session.set_resuming(true);
  Shard* s = shards_[session.shard()].get();
  backend_->take_session(resume_id, [this, alive = std::weak_ptr<void>(lifetime_), s, weak = session.weak(), resume_id,
                                     resume_after = std::move(resume_after),
                                     session_name = std::move(session_name)](std::optional<std::string> record) {
    asio::dispatch(*s->context, [this, alive, weak, resume_id, resume_after, session_name,
                                 record = std::move(record)]() mutable {
      if (alive.expired()) return;
      auto session = weak.lock();
      if (!session || session->closing()) return;
      resume_from(*session, std::move(resume_id), resume_after, std::move(session_name), record);
    });
  });
}

void Broker::Impl::resume_from(SessionState& session, std::string resume_id, const std::string& resume_after,
                               std::string session_name, const std::optional<std::string>& text) {
  std::optional<std::vector<std::pair<std::string, StreamPosition>>> positions;
  std::string kept_name;
  if (text) {
    std::optional<detail::ResumeRecord> record = detail::ResumeRecord::parse(*text);
    if (record && record->principal_id == session.principal().id) {
      positions = detail::resume_positions(*record, resume_after);
      kept_name = std::move(record->session_name);
    }
  }
  ShardCounters& counters = shards_[session.shard()]->counters;
  bool allowed = positions.has_value();
  for (std::size_t i = 0; allowed && positions && i < positions->size(); ++i)
    allowed = check_subscribe(session, (*positions)[i].first) == Errc::ok;
  if (!allowed) {
    counters.recoveries_not_recovered.fetch_add(1, std::memory_order_relaxed);
    session.set_resuming(false);
    connected(session, session_name);
    return;
  }
  session.track_for_resumption(settings_.recovery.resume_tracked_publications);
  session_opened(session);
  auto group = std::make_shared<detail::ResumeGroup>();
  group->resume_id = std::move(resume_id);
  group->session_name = std::move(session_name);
  group->kept_name = std::move(kept_name);
  group->pending = positions->size() + 1;  // + this call's own, so that inline answers cannot finish early
  for (auto& [topic, at] : *positions) {
    group->reads.push_back({topic, std::nullopt});
    subscribe_checked(session, topic, at, std::nullopt, group);
  }
  resume_answered(session, group, nullptr, {});
}

// One read of a resume came back (`topic` null: resume_from's own share).
void Broker::Impl::resume_answered(SessionState& session, const std::shared_ptr<detail::ResumeGroup>& group,
                                   const std::string* topic, ReadResult result) {
  if (topic) {
    for (auto& read : group->reads)
      if (read.topic == *topic && !read.result) {
        read.result = std::move(result);
        break;
      }
  }
  if (--group->pending > 0 || session.closing()) return;
  session.set_resuming(false);
  const bool recovered = std::all_of(group->reads.begin(), group->reads.end(), [](const auto& read) {
    return read.result && !read.result->error && read.result->recovered;
  });
  Shard& shard = *shards_[session.shard()];
  if (!recovered) {
    shard.counters.recoveries_not_recovered.fetch_add(1, std::memory_order_relaxed);
    for (const auto& read : group->reads) unsubscribe(session, read.topic);
    session.track_for_resumption(settings_.recovery.resume_tracked_publications);
    answer_resumable(session, group->session_name, new_resume_id());
    join_server_rooms(session);
    return;
  }
  answer_resumable(session, group->kept_name.empty() ? group->session_name : group->kept_name, group->resume_id);
  for (auto& read : group->reads) {
    auto it = shard.topics.find(read.topic);
    if (it == shard.topics.end()) continue;
    ShardTopic::Subscriber* sub = it->second.find(session);
    if (!sub) continue;
    finish_subscribe(session, *sub, read.topic, std::nullopt, SubscribeRead::recover, std::move(*read.result));
  }
  // Joins the host makes now and did not make then (a new role, say).
  join_server_rooms(session);
}

void Broker::Impl::keep_for_resumption(SessionState& session) {
  detail::ResumeTracker* tracker = session.resume_tracker();
  if (!tracker || session.resume_id().empty() || session.resuming() || !client_will_return(session)) return;
  std::string record = tracker->record(session.principal().id, session.public_name()).serialize();
  {
    std::lock_guard<std::mutex> lock(keep_mutex_);
    ++keeps_in_flight_;
  }
  backend_->keep_session(session.resume_id(), std::move(record), settings_.recovery.resume_window,
                         [this](std::error_code ec) {
                           if (ec) report_error("a closed session's record for its resumption was not kept", ec);
                           std::lock_guard<std::mutex> lock(keep_mutex_);
                           if (--keeps_in_flight_ == 0) keeps_done_.notify_all();
                         });
}

void Broker::Impl::wait_for_kept_sessions() {
  std::unique_lock<std::mutex> lock(keep_mutex_);
  keeps_done_.wait_for(lock, settings_.recovery.resume_flush_timeout, [this] { return keeps_in_flight_ == 0; });
}

LIVECAST_END_NAMESPACE
