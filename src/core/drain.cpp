// Broker::drain's waves. See drain.hpp for the shape.
#include "drain.hpp"

#include <asio/post.hpp>

#include <algorithm>
#include <stdexcept>
#include <utility>

LIVECAST_BEGIN_NAMESPACE
namespace detail {

Drain::Drain(const std::vector<Shard>& shards) {
  shards_.reserve(shards.size());
  for (const Shard& shard : shards) shards_.push_back(std::make_unique<ShardState>(*shard.context, *shard.sessions));
}

Drain::~Drain() = default;

std::string Drain::reconnect_reason(std::chrono::milliseconds delay) {
  return "reconnect after " + std::to_string(delay.count()) + " ms";
}

void Drain::drain(const DrainSettings& settings, std::function<void()> done) {
  if (settings.duration.count() < 0 || settings.reconnect_delay_min.count() < 0 ||
      settings.reconnect_delay_min > settings.reconnect_delay_max || settings.flush_grace.count() < 0 ||
      settings.deadline_grace.count() < 0 || settings.retry_after.count() < 0)
    throw std::invalid_argument(
        "livecast: DrainSettings needs durations of 0 or more and reconnect_delay_min <= reconnect_delay_max");
  std::unique_lock<std::mutex> lock(mutex_);
  if (draining_.load(std::memory_order_relaxed)) {
    // A second drain keeps the first's schedule; its `done` joins the
    // first's, or runs now when that one has run.
    if (!finished_) {
      if (done) done_.push_back(std::move(done));
      return;
    }
    lock.unlock();
    if (done) {
      try {
        done();
      } catch (...) {
      }
    }
    return;
  }
  settings_ = settings;
  if (done) done_.push_back(std::move(done));
  shards_left_.store(shards_.size(), std::memory_order_relaxed);
  draining_.store(true, std::memory_order_release);
  lock.unlock();
  const Clock::time_point start = Clock::now();
  for (auto& shard : shards_) {
    ShardState* s = shard.get();
    asio::post(*s->context, [this, alive = std::weak_ptr<void>(lifetime_), s, start] {
      if (!alive.expired()) begin(*s, start);
    });
  }
  // Nothing to close: done now (sessions opening meanwhile are still closed).
  if (open_.load(std::memory_order_acquire) == 0) finish();
}

std::optional<std::chrono::seconds> Drain::retry_after() const noexcept {
  if (!draining()) return std::nullopt;
  return settings_.retry_after;
}

Drain::Counters Drain::counters() const noexcept {
  Counters c;
  for (const auto& shard : shards_) {
    c.closes += shard->closes.load(std::memory_order_relaxed);
    c.forced_closes += shard->forced_closes.load(std::memory_order_relaxed);
    c.shed_closes += shard->shed_closes.load(std::memory_order_relaxed);
  }
  return c;
}

// --- on a shard's thread ---

void Drain::opened(SessionState& session) {
  ShardState& shard = *shards_[session.shard()];
  open_.fetch_add(1, std::memory_order_acq_rel);
  if (!shard.begun) return;  // begin() finds it among the open ones
  // Opened after the drain began (its handshake was past the check): its
  // turn is now, on the timer's next pass, never inside open_session.
  shard.flushing.push_back(Flushing{session.weak(), Clock::now() + settings_.flush_grace, std::nullopt});
  arm(shard, Clock::now());
}

std::size_t Drain::shed(std::size_t index, std::size_t n, std::chrono::milliseconds delay_min,
                        std::chrono::milliseconds delay_max) {
  ShardState& shard = *shards_[index];
  if (draining() || n == 0) return 0;  // a drain closes them all anyway
  std::uniform_int_distribution<std::int64_t> delay(delay_min.count(), std::max(delay_min, delay_max).count());
  const Clock::time_point now = Clock::now();
  // Grace for the queue as a drain gives by default: a second.
  const Clock::time_point until = now + std::chrono::seconds(1);
  std::size_t taken = 0;
  for (SessionState* session : shard.sessions->all()) {
    if (taken == n) break;
    if (session->closing()) continue;
    const bool queued = std::any_of(shard.flushing.begin(), shard.flushing.end(), [&](const Flushing& f) {
      return f.session.lock().get() == session;
    });
    if (queued) continue;
    shard.flushing.push_back(Flushing{session->weak(), until, std::chrono::milliseconds(delay(shard.random))});
    ++taken;
  }
  if (taken != 0) arm(shard, now);
  return taken;
}

void Drain::closed(SessionState&) {
  if (open_.fetch_sub(1, std::memory_order_acq_rel) == 1 && draining()) finish();
}

// The shard's sessions, in the order the registry holds them, each due at
// the middle of its slice of the window.
void Drain::begin(ShardState& shard, Clock::time_point start) {
  if (shard.begun) return;
  shard.begun = true;
  const std::size_t n = shard.sessions->all().size();
  shard.order.reserve(n);
  const Clock::duration slice =
      n == 0 ? Clock::duration::zero() : Clock::duration(settings_.duration) / static_cast<Clock::rep>(n);
  std::size_t i = 0;
  for (SessionState* session : shard.sessions->all()) {
    shard.order.push_back(Due{session->weak(), start + slice * static_cast<Clock::rep>(i) + slice / 2});
    ++i;
  }
  const Clock::time_point end = start + settings_.duration + settings_.deadline_grace;
  ShardState* s = &shard;
  shard.deadline_timer.expires_at(end);
  shard.deadline_timer.async_wait([this, alive = std::weak_ptr<void>(lifetime_), s](const std::error_code& ec) {
    if (!alive.expired() && !ec) deadline(*s);
  });
  if (!shard.order.empty()) arm(shard, shard.order.front().at);
}

void Drain::arm(ShardState& shard, Clock::time_point at) {
  if (shard.timer_armed_for && *shard.timer_armed_for <= at) return;
  shard.timer_armed_for = at;
  shard.timer.expires_at(at);  // cancels an earlier wait, whose handler sees the error
  ShardState* s = &shard;
  shard.timer.async_wait([this, alive = std::weak_ptr<void>(lifetime_), s](const std::error_code& ec) {
    if (alive.expired() || ec) return;
    s->timer_armed_for.reset();
    tick(*s);
  });
}

// One wave: the sessions now due start flushing; those whose queue is empty
// (or whose grace ran out) are closed.
void Drain::tick(ShardState& shard) {
  const Clock::time_point now = Clock::now();
  while (shard.next < shard.order.size() && shard.order[shard.next].at <= now) {
    shard.flushing.push_back(
        Flushing{std::move(shard.order[shard.next].session), now + settings_.flush_grace, std::nullopt});
    ++shard.next;
  }
  if (shard.next == shard.order.size()) {
    shard.order.clear();
    shard.order.shrink_to_fit();
    shard.next = 0;
  }
  auto still_flushing = std::remove_if(shard.flushing.begin(), shard.flushing.end(), [&](Flushing& f) {
    std::shared_ptr<SessionState> session = f.session.lock();
    if (!session || session->closing()) return true;
    if (!session->queue().empty() && now < f.until) return false;
    close(shard, *session, f.delay);
    return true;
  });
  shard.flushing.erase(still_flushing, shard.flushing.end());
  if (!shard.flushing.empty()) {
    arm(shard, now + flush_poll);
  } else if (shard.next < shard.order.size()) {
    arm(shard, std::max(shard.order[shard.next].at, now + wave_interval));
  }
}

void Drain::close(ShardState& shard, SessionState& session, std::optional<std::chrono::milliseconds> delay) {
  if (delay) {
    shard.shed_closes.fetch_add(1, std::memory_order_relaxed);
  } else {
    std::uniform_int_distribution<std::int64_t> draw(settings_.reconnect_delay_min.count(),
                                                     settings_.reconnect_delay_max.count());
    delay = std::chrono::milliseconds(draw(shard.random));
    shard.closes.fetch_add(1, std::memory_order_relaxed);
  }
  session.close(CloseCode::reconnect_after, reconnect_reason(*delay));
}

// The window and its grace are over: whoever is still open goes now.
void Drain::deadline(ShardState& shard) {
  shard.timer.cancel();
  shard.timer_armed_for.reset();
  shard.order.clear();
  shard.flushing.clear();
  // close() reaches the transport later; the registry does not change here.
  for (SessionState* session : shard.sessions->all()) {
    if (session->closing()) continue;
    shard.forced_closes.fetch_add(1, std::memory_order_relaxed);
    session->close(CloseCode::going_away, "server shutting down");
  }
  if (shards_left_.fetch_sub(1, std::memory_order_acq_rel) == 1) finish();
}

void Drain::finish() {
  std::vector<std::function<void()>> done;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!draining_.load(std::memory_order_relaxed) || finished_) return;
    finished_ = true;
    done.swap(done_);
  }
  // The host's code: whatever it throws stays here.
  for (auto& f : done) {
    try {
      f();
    } catch (...) {
    }
  }
}

}  // namespace detail
LIVECAST_END_NAMESPACE
