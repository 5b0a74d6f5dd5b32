// AggregatorMetrics as Prometheus metrics (livecast_aggregator_*), written
// when the host adds the Aggregator to its MetricsExporter as a source.
// docs/operations.md lists them.
#include <livecast/aggregator.hpp>
#include <livecast/metrics.hpp>

#include <cstdint>
#include <utility>

LIVECAST_BEGIN_NAMESPACE

void Aggregator::write_metrics(MetricsWriter& w) const {
  const AggregatorMetrics m = metrics();
  const std::pair<const char*, std::pair<const char*, std::uint64_t>> counters[] = {
      {"livecast_aggregator_recorded_total", {"Events recorded.", m.recorded}},
      {"livecast_aggregator_dropped_metrics_total",
       {"Events ignored: their metric was past max_metrics.", m.dropped_metrics}},
      {"livecast_aggregator_summaries_total", {"Window summaries published by this instance.", m.summaries}},
      {"livecast_aggregator_publish_errors_total", {"Summaries the broker refused.", m.publish_errors}},
      {"livecast_aggregator_callback_errors_total", {"on_window and topic calls that threw.", m.callback_errors}},
      {"livecast_aggregator_contributions_sent_total",
       {"Windows handed to the backend to merge with the other instances'.", m.contributions_sent}},
      {"livecast_aggregator_merged_windows_total",
       {"Windows this instance claimed, merged and published.", m.merged_windows}},
      {"livecast_aggregator_windows_merged_elsewhere_total",
       {"Windows another instance claimed and publishes.", m.windows_merged_elsewhere}},
      {"livecast_aggregator_contributions_malformed_total",
       {"Other instances' window parts that did not parse (skipped).", m.contributions_malformed}},
      {"livecast_aggregator_contributions_late_total",
       {"Own window parts that came after another instance's claim (lost).", m.contributions_late}},
      {"livecast_aggregator_merge_fallbacks_total",
       {"Windows published from this instance's part alone because the backend failed.", m.merge_fallbacks}},
  };
  for (const auto& [name, help_value] : counters) w.counter(name, help_value.first, help_value.second);
}

LIVECAST_END_NAMESPACE
