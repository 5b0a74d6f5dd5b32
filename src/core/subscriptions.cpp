// Broker::Impl's subscriptions: a subscribe checked and joined at once, the
// backend's read (latest value, recovery or recent history) answered on the
// session's shard, and leaving again; with the per-topic watch counts that
// tell the backend which topics this instance needs. See broker_impl.hpp.
#include "broker_impl.hpp"

#include <asio/dispatch.hpp>

LIVECAST_BEGIN_NAMESPACE

using detail::EncodedPublicationPtr;
using detail::SessionState;
using detail::ShardTopic;

Errc Broker::Impl::check_subscribe(SessionState& session, const std::string& topic) {
  if (Errc e = validate_topic(topic); e != Errc::ok) return e;
  if (session.subscribed(topic)) return Errc::already_subscribed;
  if (session.subscriptions().size() >= settings_.session.max_subscriptions) return Errc::too_many_subscriptions;
  bool allowed = false;
  if (!guarded("the authorizer",
               [&] { allowed = settings_.authorizer.allowed(Action::subscribe, topic, session.principal()); }))
    return Errc::internal_error;
  return allowed ? Errc::ok : Errc::forbidden;
}

// Joins the shard's topic at once (so no publication is missed), holds live
// publications until the backend's read answers, then sends the reply, the
// recovered publications, the recent ones or the snapshot, and the held ones
// after them.
void Broker::Impl::subscribe_checked(SessionState& session, std::string topic, std::optional<StreamPosition> recover,
                                     std::optional<std::int64_t> id, std::shared_ptr<detail::ResumeGroup> group,
                                     std::optional<RecentHistory> recent) {
  Shard& shard = *shards_[session.shard()];
  const std::uint64_t sequence = session.next_subscription_sequence();
  auto [it, inserted] = shard.topics.try_emplace(topic, topic);
  it->second.add(session, sequence);
  if (inserted) shard_joined(topic, shard.index);  // before the read below is sent
  session.add_subscription(topic);
  shard.counters.subscriptions_active.fetch_add(1, std::memory_order_relaxed);
  session_subscribed(session, topic);
  watch(topic);
  std::weak_ptr<SessionState> weak = session.weak();
  Shard* s = &shard;
  // One client's reads: a principal's over all its sessions; an anonymous
  // session's alone (its transport bounds how many sessions an address opens).
  std::string client = session.principal().id.empty() ? "session " + std::to_string(session.id())
                                                        : "principal " + session.principal().id;
  const SubscribeRead read = recover ? SubscribeRead::recover : recent ? SubscribeRead::recent : SubscribeRead::latest;
  auto start = [this, s, weak, topic, recover = std::move(recover), recent, sequence, id, client, read, group] {
    // The session ended while this read waited for its turn: no read. (Any
    // thread: only the weak pointer is looked at here.)
    if (weak.expired()) {
      reads_->finished(client);
      return;
    }
    auto answered = [this, s, weak, topic, sequence, id, client, read, group](ReadResult result) {
      reads_->finished(client);
      asio::dispatch(*s->context, [this, alive = std::weak_ptr<void>(lifetime_), s, weak, topic, sequence, id, read,
                                   group, result = std::move(result)]() mutable {
        if (alive.expired()) return;
        auto session = weak.lock();
        if (!session || session->closing()) return;
        auto it = s->topics.find(topic);
        if (it == s->topics.end()) return;
        ShardTopic::Subscriber* sub = it->second.find(*session);
        if (!sub || sub->sequence != sequence) return;  // unsubscribed meanwhile
        if (group) {
          resume_answered(*session, group, &topic, std::move(result));
          return;
        }
        finish_subscribe(*session, *sub, topic, id, read, std::move(result));
      });
    };
    if (read == SubscribeRead::recent)
      backend_->read_recent(topic, *recent, settings_.recovery.max_publications, std::move(answered));
    else
      backend_->read(topic, recover, settings_.recovery.max_publications, std::move(answered));
  };
  if (reads_->submit(client, std::move(start)) == detail::ReadScheduler::Admission::refused) {
    if (group) {  // the resume fails as a whole, and says so in its connect answer
      ReadResult refused;
      refused.error = make_error_code(Errc::rate_limited);
      resume_answered(session, group, &topic, std::move(refused));
      return;
    }
    send_error(session, id, Errc::rate_limited, "too many subscribes waiting for history, try again");
    unsubscribe(session, topic);
  }
}

void Broker::Impl::finish_subscribe(SessionState& session, ShardTopic::Subscriber& sub, const std::string& topic,
                                    std::optional<std::int64_t> id, SubscribeRead read, ReadResult result) {
  const Protocol& p = protocol(session.protocol());
  if (result.error) {
    send_error(session, id, Errc::backend_unavailable, "history unavailable, try again");
    unsubscribe(session, topic);
    return;
  }
  // Recent history: the reply places the client just before the first
  // publication that follows, as a recovery from there would, so that every
  // client and cursor takes them in as consecutive (not as a snapshot that
  // jumps to the head).
  StreamPosition start = result.head;
  if (read == SubscribeRead::recent && !result.publications.empty() &&
      result.publications.back().offset == result.head.offset)
    start.offset = result.publications.front().offset - 1;
  if (FramePtr reply = p.encode_subscribed(id, topic, start, result.recovered)) session.send(std::move(reply));
  if (detail::ResumeTracker* tracker = session.resume_tracker()) tracker->started(topic, result.head);
  for (const Publication& publication : result.publications) session.send(p.encode_publication(publication));
  ShardCounters& c = shards_[session.shard()]->counters;
  if (read == SubscribeRead::recent) {
    c.recent_history_reads.fetch_add(1, std::memory_order_relaxed);
    c.recent_publications_sent.fetch_add(result.publications.size(), std::memory_order_relaxed);
  }
  if (read == SubscribeRead::recover) {
    if (result.recovered) {
      c.recoveries_recovered.fetch_add(1, std::memory_order_relaxed);
      c.publications_replayed.fetch_add(result.publications.size(), std::memory_order_relaxed);
      std::size_t bytes = 0;
      for (const Publication& publication : result.publications) bytes += publication.data ? publication.data->size() : 0;
      c.bytes_replayed.fetch_add(bytes, std::memory_order_relaxed);
    } else {
      c.recoveries_not_recovered.fetch_add(1, std::memory_order_relaxed);
    }
  }
  sub.next_offset = result.head.offset + 1;
  sub.live = true;
  for (const EncodedPublicationPtr& held : sub.held) {
    if (held->publication.offset < sub.next_offset) continue;
    sub.next_offset = held->publication.offset + 1;
    session.send(held->frames[session.protocol()]);
  }
  sub.held.clear();
  sub.held.shrink_to_fit();
}

bool Broker::Impl::unsubscribe(SessionState& session, const std::string& topic) {
  if (!session.subscribed(topic)) return false;
  leave(session, topic);
  session.remove_subscription(topic);
  return true;
}

void Broker::Impl::leave(SessionState& session, const std::string& topic) {
  session_unsubscribed(session, topic);
  if (detail::ResumeTracker* tracker = session.resume_tracker()) tracker->left(topic);
  Shard& shard = *shards_[session.shard()];
  auto it = shard.topics.find(topic);
  if (it == shard.topics.end()) return;
  if (it->second.remove(session)) shard.counters.subscriptions_active.fetch_sub(1, std::memory_order_relaxed);
  if (it->second.empty()) {
    shard.topics.erase(it);
    shard_left(topic, shard.index);
  }
  unwatch(topic);
}

// Reference counts local subscribers across shards so the backend hears
// only the first and the last (and every count, for presence).
void Broker::Impl::watch(const std::string& topic) {
  std::lock_guard<std::mutex> lock(watch_mutex_);
  std::size_t& local = watched_[topic];
  if (local++ == 0) backend_->watch(topic);
  backend_->set_local_presence(topic, local);
}

void Broker::Impl::unwatch(const std::string& topic) {
  std::lock_guard<std::mutex> lock(watch_mutex_);
  auto it = watched_.find(topic);
  if (it == watched_.end()) return;
  backend_->set_local_presence(topic, --it->second);
  if (it->second == 0) {
    watched_.erase(it);
    backend_->unwatch(topic);
  }
}

LIVECAST_END_NAMESPACE
