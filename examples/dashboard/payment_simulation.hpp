// A simulated payments service: for each org, a stream of card transactions
// and the KPIs, alerts and announcements a dashboard shows about them. It is
// the host application of the demo; livecast only sees broker.publish().
#pragma once

#include <livecast/livecast.hpp>

#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace dashboard {

// What makes one org's traffic look like its own.
struct OrgProfile {
  std::string org;                     // topic scope: "org:<org>:..."
  std::string display_name;            // for announcements
  std::string currency;                // revenue is reported in this currency
  double base_active_users = 1000;     // the random walk reverts towards this
  std::vector<std::string> merchants;
};

std::vector<OrgProfile> demo_org_profiles();

// The Aggregator of the demo: metrics named "org:<org>:<name>" are summed up
// on "org:<org>:agg.<name>.<window>", for analysts and admins
// (demo_authorizer).
livecast::AggregatorSettings demo_aggregator_settings();
// "org:acme:latency_ms", "1s" -> "org:acme:agg.latency_ms.1s" ("" for a metric without an org).
std::string demo_aggregate_topic(std::string_view metric, std::string_view window);

// Publishes, per org:
//   org:<org>:transactions       every transaction (20-50 per second)
//   org:<org>:kpi.revenue        {total, per_second, currency}      every 500 ms
//   org:<org>:kpi.tps            {value}                            every 500 ms
//   org:<org>:kpi.active_users   {value}                            every 500 ms
//   org:<org>:kpi.error_rate     {value, threshold, window_s}       every 500 ms
//   org:<org>:alerts             when the error rate crosses the threshold and back
//   org:<org>                    announcements (simulated incidents)
// and, with an Aggregator (demo_aggregator_settings), records each
// transaction's `amount` and simulated processing `latency_ms`, whose
// summaries it publishes on org:<org>:agg.<metric>.<window> (1s, 5s, 1m).
// Runs on the io_context it is given, from that context's thread.
class PaymentSimulation {
 public:
  // Error rate (failed / all, over the last window_s seconds) above which an alert fires.
  static constexpr double error_rate_threshold = 0.05;
  static constexpr int error_rate_window_s = 10;

  // `aggregator` (may be null) must outlive the simulation.
  PaymentSimulation(asio::io_context& io, livecast::Broker& broker, std::vector<OrgProfile> orgs,
                    livecast::Aggregator* aggregator = nullptr);
  ~PaymentSimulation();

  void start();
  // Cancels the timers; call on the io_context's thread.
  void stop();

 private:
  struct Org;
  using Clock = std::chrono::steady_clock;

  void schedule_transactions();
  void schedule_kpis();
  void publish_transactions(Org& org, Clock::time_point now);
  void publish_kpis(Org& org, Clock::time_point now);
  void update_incident(Org& org, Clock::time_point now);
  void check_error_rate_alert(Org& org, double error_rate, std::size_t window_count);

  livecast::Broker& broker_;
  livecast::Aggregator* aggregator_;
  asio::steady_timer transaction_timer_;
  asio::steady_timer kpi_timer_;
  std::vector<std::unique_ptr<Org>> orgs_;
  bool stopped_ = false;
};

}  // namespace dashboard
