// Rebalancing (RebalanceSettings): every interval, shard 0 reports this
// instance's session count as the presence of Backend::sessions_presence_name,
// reads the sum over every instance back, and when this one holds more than
// max_session_share of it, sheds part of the excess through the drain's path
// (queue flushed, then CloseCode::reconnect_after with a short delay), spread
// over the shards in proportion to the sessions each holds.
//
// Why through presence: the Redis backend already keeps per-instance counts
// that expire with their instance, which is exactly "how many sessions do my
// peers hold"; no second mechanism, and no cluster of our own.
#include "broker_impl.hpp"

#include <asio/post.hpp>

#include <algorithm>
#include <cmath>
#include <stdexcept>

LIVECAST_BEGIN_NAMESPACE

using detail::Drain;

void Broker::Impl::start_rebalancing() {
  const RebalanceSettings& r = settings_.rebalance;
  if (!(r.max_session_share > 0) || r.max_session_share >= 1) return;
  if (r.interval.count() <= 0 || !(r.shed_fraction > 0) || r.shed_fraction > 1 || r.reconnect_delay_min.count() < 0 ||
      r.reconnect_delay_min > r.reconnect_delay_max)
    throw std::invalid_argument(
        "livecast: RebalanceSettings needs a positive interval, shed_fraction in (0, 1] and 0 <= delay min <= max");
  rebalance_timer_ = std::make_unique<asio::steady_timer>(*shards_[0]->context);
  rebalance_timer_->expires_after(r.interval);
  rebalance_timer_->async_wait([this, alive = std::weak_ptr<void>(lifetime_)](std::error_code ec) {
    if (!ec && !alive.expired()) rebalance();
  });
}

void Broker::Impl::rebalance() {
  if (!accepting_.load(std::memory_order_relaxed)) return;  // stopped: no more rounds
  std::uint64_t local = 0;
  for (const auto& shard : shards_) local += shard->open_sessions();
  {
    std::lock_guard<std::mutex> lock(watch_mutex_);  // the backend's presence calls come one at a time
    backend_->set_local_presence(Backend::sessions_presence_name, local);
  }
  backend_->presence(Backend::sessions_presence_name, local,
                     [this, alive = std::weak_ptr<void>(lifetime_), local](std::error_code ec, std::uint64_t total) {
                       if (ec || alive.expired()) return;
                       // Any thread: back to shard 0, where the rounds run.
                       asio::post(*shards_[0]->context, [this, alive, local, total] {
                         if (!alive.expired()) shed_excess(local, total);
                       });
                     });
  rebalance_timer_->expires_after(settings_.rebalance.interval);
  rebalance_timer_->async_wait([this, alive = std::weak_ptr<void>(lifetime_)](std::error_code ec) {
    if (!ec && !alive.expired()) rebalance();
  });
}

void Broker::Impl::shed_excess(std::uint64_t local, std::uint64_t total) {
  const RebalanceSettings& r = settings_.rebalance;
  // Alone (or only this instance's count is known yet): nowhere to send anyone.
  if (total <= local || local == 0 || drain_->draining() || !accepting_.load(std::memory_order_relaxed)) return;
  const auto allowed = static_cast<std::uint64_t>(std::floor(r.max_session_share * static_cast<double>(total)));
  // Over the share in two rounds running before anything is shed: the
  // other instances' counts are a round old, and while clients arrive (a
  // start, a peer's drain) one stale count would make an instance shed
  // clients that were on their way elsewhere anyway.
  if (local <= allowed) {
    rounds_over_share_ = 0;
    return;
  }
  if (++rounds_over_share_ < 2) return;
  const auto shed = static_cast<std::uint64_t>(std::ceil(static_cast<double>(local - allowed) * r.shed_fraction));
  // Each shard sheds its part of it, in proportion to what it holds.
  std::uint64_t left = shed;
  for (std::size_t i = 0; i < shards_.size() && left != 0; ++i) {
    const std::uint64_t open = shards_[i]->open_sessions();
    std::uint64_t part = i + 1 == shards_.size() ? left : (shed * open + local - 1) / local;
    part = std::min(part, left);
    left -= part;
    if (part == 0) continue;
    asio::post(*shards_[i]->context, [this, alive = std::weak_ptr<void>(lifetime_), i, part] {
      if (alive.expired()) return;
      drain_->shed(i, static_cast<std::size_t>(part), settings_.rebalance.reconnect_delay_min,
                   settings_.rebalance.reconnect_delay_max);
    });
  }
}

LIVECAST_END_NAMESPACE
