// What the broker tells about itself: BrokerMetrics, summed from the shards'
// relaxed counters, the read scheduler and the drain; and Readiness, what a
// load balancer's probe asks. Any thread.
#include "broker_impl.hpp"

LIVECAST_BEGIN_NAMESPACE

Readiness Broker::Impl::readiness() const {
  if (!accepting_.load(std::memory_order_relaxed)) return {false, "stopped"};
  if (drain_->draining()) return {false, "draining"};
  const BackendHealth health = backend_->health();
  if (!health.available && health.unavailable_for >= settings_.backend_unavailable_grace)
    return {false, "backend unavailable"};
  return {};
}

BrokerMetrics Broker::Impl::metrics() const {
  BrokerMetrics m;
  m.publications = publications_.load(std::memory_order_relaxed);
  m.publish_errors = publish_errors_.load(std::memory_order_relaxed);
  m.publications_unchanged = publications_unchanged_.load(std::memory_order_relaxed);
  m.backend_errors = backend_errors_.load(std::memory_order_relaxed);
  m.history_losses = history_losses_.load(std::memory_order_relaxed);
  m.callback_errors = callback_errors_.load(std::memory_order_relaxed);
  for (auto& shard : shards_) {
    const ShardCounters& c = shard->counters;
    m.deliveries += c.deliveries.load(std::memory_order_relaxed);
    m.dropped += c.dropped.load(std::memory_order_relaxed);
    m.publications_coalesced += c.coalesced.load(std::memory_order_relaxed);
    m.publications_shed += shard->inbox.shed();
    m.slow_consumer_closes += c.slow_consumer_closes.load(std::memory_order_relaxed);
    m.sessions_opened += c.sessions_opened.load(std::memory_order_relaxed);
    m.sessions_closed += c.sessions_closed.load(std::memory_order_relaxed);
    m.subscriptions_active += c.subscriptions_active.load(std::memory_order_relaxed);
    m.messages_received += c.messages_received.load(std::memory_order_relaxed);
    m.recoveries_recovered += c.recoveries_recovered.load(std::memory_order_relaxed);
    m.recoveries_not_recovered += c.recoveries_not_recovered.load(std::memory_order_relaxed);
    m.publications_replayed += c.publications_replayed.load(std::memory_order_relaxed);
    m.bytes_replayed += c.bytes_replayed.load(std::memory_order_relaxed);
    m.recent_history_reads += c.recent_history_reads.load(std::memory_order_relaxed);
    m.recent_publications_sent += c.recent_publications_sent.load(std::memory_order_relaxed);
    // Signed so that a queue may report a shrink as a negative add.
    if (const std::int64_t bytes = c.send_queue_bytes.load(std::memory_order_relaxed); bytes > 0)
      m.send_queue_bytes += static_cast<std::uint64_t>(bytes);
    c.delivery_latency.add_to(m.delivery_latency);
  }
  {
    std::lock_guard<std::mutex> lock(watch_mutex_);
    m.topics_active = watched_.size();
  }
  const detail::ReadScheduler::Counters reads = reads_->counters();
  m.subscribe_reads = reads.started;
  m.subscribe_reads_waited = reads.waited;
  m.subscribe_reads_refused = reads.refused;
  m.subscribe_reads_in_flight = reads.in_flight;
  m.subscribe_reads_waiting = reads.waiting;
  m.sessions_active = m.sessions_opened - m.sessions_closed;
  const detail::Drain::Counters drained = drain_->counters();
  m.draining = drain_->draining() ? 1 : 0;
  m.drain_closes = drained.closes;
  m.drain_forced_closes = drained.forced_closes;
  m.rebalance_closes = drained.shed_closes;
  for (std::size_t i = 0; i < m.errors_by_code.size(); ++i) {
    m.errors_by_code[i] = errors_by_code_[i].load(std::memory_order_relaxed);
    m.errors_sent += m.errors_by_code[i];
  }
  return m;
}

LIVECAST_END_NAMESPACE
