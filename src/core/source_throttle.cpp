// SourceThrottle: see source_throttle.hpp.
#include "source_throttle.hpp"

#include <livecast/error.hpp>

#include <utility>
#include <vector>

LIVECAST_BEGIN_NAMESPACE
namespace detail {

void SourceThrottle::offer(const std::string& topic, std::shared_ptr<const std::string> data,
                           Backend::PublishHandler done, double max_rate, bool only_changes) {
  std::optional<Pending> replaced;
  bool send_now = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopped_) {
      send_now = true;
    } else {
      const auto now = Clock::now();
      auto [it, fresh] = topics_.try_emplace(topic);
      if (fresh) {
        it->second = std::make_unique<TopicState>(io_);
        it->second->interval = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(1.0 / max_rate));
        if (it->second->interval <= Clock::duration::zero()) it->second->interval = Clock::duration(1);
      }
      TopicState& state = *it->second;
      if (fresh) {
        // A quiet topic: this one goes now, the next at the next turn.
        send_now = true;
        state.next_turn = now + state.interval;
        arm(topic, state);
      } else {
        replaced = std::move(state.pending);
        state.pending = Pending{std::move(data), std::move(done), only_changes};
      }
    }
  }
  if (replaced && replaced->done) replaced->done({}, 0);  // never sent: a newer value took its turn
  if (send_now) send_(topic, std::move(data), std::move(done), only_changes);
}

void SourceThrottle::arm(const std::string& topic, TopicState& state) {
  state.timer.expires_at(state.next_turn);
  state.timer.async_wait([this, alive = std::weak_ptr<void>(lifetime_), topic](std::error_code ec) {
    if (ec || alive.expired()) return;
    turn(topic);
  });
}

void SourceThrottle::turn(const std::string& topic) {
  std::optional<Pending> due;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = topics_.find(topic);
    if (stopped_ || it == topics_.end()) return;
    TopicState& state = *it->second;
    if (!state.pending) {
      // A turn with nothing to send: the topic is quiet again.
      topics_.erase(it);
      return;
    }
    due = std::move(state.pending);
    state.pending.reset();
    // On the grid, so that a late timer does not lower the rate; after a
    // long stall, from now.
    const auto now = Clock::now();
    state.next_turn += state.interval;
    if (state.next_turn <= now) state.next_turn = now + state.interval;
    arm(topic, state);
  }
  send_(topic, std::move(due->data), std::move(due->done), due->only_changes);
}

void SourceThrottle::stop() {
  std::vector<Pending> dropped;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopped_) return;
    stopped_ = true;
    for (auto& [topic, state] : topics_) {
      state->timer.cancel();
      if (state->pending) dropped.push_back(std::move(*state->pending));
    }
    topics_.clear();
  }
  for (Pending& p : dropped)
    if (p.done) p.done(make_error_code(Errc::shutting_down), 0);
}

std::size_t SourceThrottle::topic_count() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return topics_.size();
}

}  // namespace detail
LIVECAST_END_NAMESPACE
