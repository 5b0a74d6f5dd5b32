// RedisBackendMetrics as Prometheus metrics (livecast_redis_*). Whether Redis
// is up and its round trip come from health(), which MetricsExporter writes
// for every backend (livecast_backend_*). docs/operations.md lists them.
#include <livecast/metrics.hpp>
#include <livecast/redis_backend.hpp>

#include <cstdint>
#include <utility>

LIVECAST_BEGIN_NAMESPACE

void RedisBackend::write_metrics(MetricsWriter& w) const {
  const RedisBackendMetrics m = metrics();
  const std::pair<const char*, std::pair<const char*, std::uint64_t>> counters[] = {
      {"livecast_redis_publications_total", {"Publications Redis accepted.", m.publications}},
      {"livecast_redis_publish_failures_total", {"Publications refused fast or failed in Redis.", m.publish_failures}},
      {"livecast_redis_reads_total", {"Backend reads asked of the Redis backend.", m.reads}},
      {"livecast_redis_reads_shared_total", {"Reads answered by another caller's Redis command.", m.reads_shared}},
      {"livecast_redis_refills_total", {"Topics read again after the Pub/Sub connection came back.", m.refills}},
      {"livecast_redis_refilled_publications_total",
       {"Publications delivered by those reads.", m.refilled_publications}},
      {"livecast_redis_history_losses_total", {"Topics whose history Redis lost.", m.history_losses}},
      {"livecast_redis_held_dropped_total",
       {"Live publications dropped while a refill was slow.", m.held_dropped}},
      {"livecast_redis_connection_losses_total",
       {"Redis connections lost or that failed to connect.", m.connection_losses}},
      {"livecast_redis_rejected_payloads_total",
       {"Publications read from Redis that were not valid JSON (dropped).", m.rejected_payloads}},
  };
  for (const auto& [name, help_value] : counters) w.counter(name, help_value.first, help_value.second);
}

LIVECAST_END_NAMESPACE
