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
//   org:<org>:kpi.revenue        {total, per_second, currency, ts}  every second
//   org:<org>:kpi.tps            {value, ts}                        every second
//   org:<org>:kpi.error_rate     {value, threshold, window_s, ts}   every 5 seconds
//   org:<org>:kpi.active_users   {value, ts}                        every 500 ms
//   org:<org>:kpi.viewers        {value, ts}                        every 500 ms (presence)
//   org:<org>:alerts             when the error rate crosses the threshold and back
//   org:<org>                    announcements (simulated incidents)
// The counted KPIs are not counted here: each transaction is recorded into
// an Aggregator (`amount`, `latency_ms`, `revenue` when approved, `failed`
// as 1 or 0), which publishes its summaries on
// org:<org>:agg.<metric>.<window> (1s, 5s, 1m), and the KPI topics are
// made from those summaries as each window closes: transactions per second
// is the 1 s count of `amount`, revenue per second the 1 s sum of `revenue`,
// the error rate the 5 s mean of `failed`. A KPI's `ts` is its window's
// start. Active users is a simulated gauge, not a count.
// Runs on the io_context it is given, from that context's thread; the
// Aggregator's summaries are handed over to that thread.
class PaymentSimulation {
 public:
  // Error rate (failed / all, over the Aggregator's 5 s window) above which an alert fires.
  static constexpr double error_rate_threshold = 0.05;
  static constexpr int error_rate_window_s = 5;

  // `aggregates`: the settings of the simulation's own Aggregator (a test
  // gives it a clock of its own); its on_window, if any, is called too.
  PaymentSimulation(asio::io_context& io, livecast::Broker& broker, std::vector<OrgProfile> orgs,
                    livecast::AggregatorSettings aggregates = demo_aggregator_settings());
  ~PaymentSimulation();

  // The Aggregator the transactions are recorded into (a test ticks it).
  livecast::Aggregator& aggregator() { return *aggregator_; }

  void start();
  // Cancels the timers; call on the io_context's thread.
  void stop();

 private:
  struct Org;
  using Clock = std::chrono::steady_clock;

  void schedule_transactions();
  void schedule_kpis();
  void publish_transactions(Org& org, Clock::time_point now);
  void publish_gauges(Org& org);
  // A closed window's summary, on the io_context's thread: the KPI it makes.
  void publish_kpi(const livecast::WindowSummary& summary);
  void update_incident(Org& org, Clock::time_point now);
  void check_error_rate_alert(Org& org, double error_rate, std::uint64_t window_count);

  asio::io_context& io_;
  livecast::Broker& broker_;
  asio::steady_timer transaction_timer_;
  asio::steady_timer kpi_timer_;
  std::vector<std::unique_ptr<Org>> orgs_;
  bool stopped_ = false;
  // Summaries posted to io_ look at this first: none runs once the
  // simulation is gone.
  std::shared_ptr<PaymentSimulation*> self_;
  // Last, so destroyed first: its thread stops before anything it calls into.
  std::unique_ptr<livecast::Aggregator> aggregator_;
};

}  // namespace dashboard
