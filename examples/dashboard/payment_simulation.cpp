#include "payment_simulation.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string_view>
#include <utility>

#include <asio/post.hpp>

namespace dashboard {

using livecast::Json;

namespace {

constexpr auto transaction_tick = std::chrono::milliseconds(50);
constexpr auto gauge_tick = std::chrono::milliseconds(500);

// Milliseconds since the Unix epoch, as browsers count them.
long long unix_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

double round_to(double value, double unit) { return std::round(value / unit) * unit; }

// Fixed rates against USD: enough to add foreign-currency sales to revenue.
double usd_per_unit(const std::string& currency) {
  if (currency == "EUR") return 1.08;
  if (currency == "GBP") return 1.27;
  return 1.0;
}

std::string percent(double ratio, int decimals) {
  char text[32];
  std::snprintf(text, sizeof text, "%.*f%%", decimals, ratio * 100.0);
  return text;
}

}  // namespace

std::vector<OrgProfile> demo_org_profiles() {
  return {
      {"acme", "Acme Corp", "USD", 1200,
       {"Blue Bottle Coffee", "Northwind Outfitters", "Skyline Air", "Pixel Arcade", "Harbor Grocers",
        "Metro Transit", "Lumen Books", "Cedar Pharmacy"}},
      {"globex", "Globex", "EUR", 800,
       {"Café Lumière", "Alpen Sport", "Nordbahn", "Marché Vert", "Kiosk 24", "Atelier Nova", "Hafen Hotel"}},
  };
}

// One org's simulated state. Only touched on the io_context's thread.
struct PaymentSimulation::Org {
  OrgProfile profile;
  std::string prefix;  // "org:<org>:"
  std::mt19937_64 random;
  double target_tps = 35;
  double active_users = 0;
  double revenue_total = 0;  // the sum of the Aggregator's 1 s revenue windows so far
  std::uint64_t transactions = 0;
  Clock::time_point incident_until{};
  Clock::time_point next_incident{};
  bool alert_active = false;
  std::uint64_t alerts = 0;

  Org(OrgProfile p, std::uint64_t seed) : profile(std::move(p)), prefix("org:" + profile.org + ":"), random(seed) {
    active_users = profile.base_active_users;
  }

  double uniform(double lo, double hi) { return std::uniform_real_distribution<double>(lo, hi)(random); }
  bool chance(double p) { return std::bernoulli_distribution(p)(random); }
  template <class T>
  const T& pick(const std::vector<T>& items) {
    return items[std::uniform_int_distribution<std::size_t>(0, items.size() - 1)(random)];
  }
  bool in_incident(Clock::time_point now) const { return now < incident_until; }
};

livecast::AggregatorSettings demo_aggregator_settings() {
  livecast::AggregatorSettings s;
  s.topic = demo_aggregate_topic;
  return s;
}

std::string demo_aggregate_topic(std::string_view metric, std::string_view window) {
  const std::size_t colon = metric.rfind(':');
  if (colon == std::string_view::npos || metric.substr(0, 4) != "org:") return {};
  return std::string(metric.substr(0, colon + 1)) + "agg." + std::string(metric.substr(colon + 1)) + "." +
         std::string(window);
}

PaymentSimulation::PaymentSimulation(asio::io_context& io, livecast::Broker& broker, std::vector<OrgProfile> orgs,
                                     livecast::AggregatorSettings aggregates)
    : io_(io),
      broker_(broker),
      transaction_timer_(io),
      kpi_timer_(io),
      self_(std::make_shared<PaymentSimulation*>(this)) {
  // Summaries come on the Aggregator's thread: copied over to io_'s.
  aggregates.on_window = [host = std::move(aggregates.on_window), &io, self = std::weak_ptr<PaymentSimulation*>(self_)](
                             const livecast::WindowSummary& summary) {
    if (host) host(summary);
    asio::post(io, [self, summary] {
      if (auto alive = self.lock()) (*alive)->publish_kpi(summary);
    });
  };
  aggregator_ = std::make_unique<livecast::Aggregator>(broker, std::move(aggregates));
  std::random_device seed;
  for (OrgProfile& profile : orgs) {
    auto org = std::make_unique<Org>(std::move(profile), (std::uint64_t{seed()} << 32) ^ seed());
    // The first incident comes soon, so that a visitor sees an alert.
    org->next_incident = Clock::now() + std::chrono::seconds(static_cast<int>(org->uniform(20, 40)));
    orgs_.push_back(std::move(org));
  }
}

PaymentSimulation::~PaymentSimulation() = default;

void PaymentSimulation::start() {
  for (auto& org : orgs_) {
    broker_.publish("org:" + org->profile.org,
                    Json::object({{"kind", "info"},
                                  {"message", "Live payments for " + org->profile.display_name + " are streaming"},
                                  {"ts", unix_ms()}}));
  }
  const auto now = Clock::now();
  transaction_timer_.expires_at(now + transaction_tick);
  kpi_timer_.expires_at(now + gauge_tick);
  schedule_transactions();
  schedule_kpis();
}

void PaymentSimulation::stop() {
  stopped_ = true;
  transaction_timer_.cancel();
  kpi_timer_.cancel();
}

// Both timers advance from their previous expiry, so the cadence does not drift.
void PaymentSimulation::schedule_transactions() {
  transaction_timer_.async_wait([this](std::error_code ec) {
    if (ec || stopped_) return;
    const auto now = Clock::now();
    for (auto& org : orgs_) publish_transactions(*org, now);
    transaction_timer_.expires_at(transaction_timer_.expiry() + transaction_tick);
    schedule_transactions();
  });
}

void PaymentSimulation::schedule_kpis() {
  kpi_timer_.async_wait([this](std::error_code ec) {
    if (ec || stopped_) return;
    const auto now = Clock::now();
    for (auto& org : orgs_) {
      update_incident(*org, now);
      publish_gauges(*org);
    }
    kpi_timer_.expires_at(kpi_timer_.expiry() + gauge_tick);
    schedule_kpis();
  });
}

void PaymentSimulation::publish_transactions(Org& org, Clock::time_point now) {
  const double seconds = std::chrono::duration<double>(transaction_tick).count();
  const int count = std::poisson_distribution<int>(org.target_tps * seconds)(org.random);
  const double failure_probability = org.in_incident(now) ? 0.09 : 0.012;
  static const std::vector<std::string> methods{"card", "card", "card", "wallet", "bank_transfer"};
  static const std::vector<std::string> foreign{"USD", "EUR", "GBP"};

  for (int i = 0; i < count; ++i) {
    // Log-normal amounts: many small payments, a few large ones.
    const double amount = round_to(std::lognormal_distribution<double>(3.6, 0.9)(org.random), 0.01);
    const std::string& currency = org.chance(0.85) ? org.profile.currency : org.pick(foreign);
    std::string status = "approved";
    if (org.chance(failure_probability))
      status = "failed";
    else if (org.chance(0.04))
      status = "declined";

    // Processing latency: log-normal around 80 ms, three times slower in an incident.
    const double latency_ms = round_to(std::lognormal_distribution<double>(std::log(80.0), 0.5)(org.random) *
                                           (org.in_incident(now) ? 3.0 : 1.0),
                                       0.1);
    const bool approved = status == "approved";
    aggregator_->record(org.prefix + "amount", amount);
    aggregator_->record(org.prefix + "latency_ms", latency_ms);
    aggregator_->record(org.prefix + "failed", status == "failed" ? 1.0 : 0.0);
    if (approved)
      aggregator_->record(org.prefix + "revenue",
                          round_to(amount * usd_per_unit(currency) / usd_per_unit(org.profile.currency), 0.01));

    char id[40];
    std::snprintf(id, sizeof id, "tx_%s_%08llu", org.profile.org.c_str(),
                  static_cast<unsigned long long>(++org.transactions));
    broker_.publish(org.prefix + "transactions", Json::object({{"id", id},
                                                               {"amount", amount},
                                                               {"currency", currency},
                                                               {"merchant", org.pick(org.profile.merchants)},
                                                               {"method", org.pick(methods)},
                                                               {"status", status},
                                                               {"latency_ms", latency_ms},
                                                               {"ts", unix_ms()}}));
  }
}

void PaymentSimulation::update_incident(Org& org, Clock::time_point now) {
  const std::string topic = "org:" + org.profile.org;
  if (org.incident_until != Clock::time_point{} && now >= org.incident_until) {
    org.incident_until = Clock::time_point{};
    broker_.publish(topic, Json::object({{"kind", "incident_resolved"},
                                         {"message", "Card processor recovered; failures back to normal"},
                                         {"ts", unix_ms()}}));
  }
  if (!org.in_incident(now) && now >= org.next_incident) {
    org.incident_until = now + std::chrono::seconds(static_cast<int>(org.uniform(15, 25)));
    org.next_incident = org.incident_until + std::chrono::seconds(static_cast<int>(org.uniform(45, 90)));
    broker_.publish(topic, Json::object({{"kind", "incident"},
                                         {"message", "Card processor degraded: elevated payment failures"},
                                         {"ts", unix_ms()}}));
  }
}

void PaymentSimulation::publish_gauges(Org& org) {
  // Traffic drifts between 20 and 45 per second on average (Poisson around
  // it, so seconds of 50 happen); users follow it loosely.
  org.target_tps = std::clamp(org.target_tps + org.uniform(-2.0, 2.0), 20.0, 45.0);
  const double user_target = org.profile.base_active_users * (0.7 + org.target_tps / 100.0);
  org.active_users += 0.08 * (user_target - org.active_users) + org.uniform(-12.0, 12.0);
  org.active_users = std::max(0.0, org.active_users);

  const long long ts = unix_ms();
  broker_.publish(org.prefix + "kpi.active_users",
                  Json::object({{"value", static_cast<long long>(std::llround(org.active_users))}, {"ts", ts}}));
  // Dashboards open for this organisation over every instance: each session
  // joins "org:<org>" (demo_access.cpp), so that topic's presence counts them.
  livecast::Broker& broker = broker_;
  broker_.presence("org:" + org.profile.org, [&broker, topic = org.prefix + "kpi.viewers", ts](std::error_code ec,
                                                                                                std::uint64_t n) {
    if (!ec) broker.publish(topic, Json::object({{"value", n}, {"ts", ts}}));
  });
}

void PaymentSimulation::publish_kpi(const livecast::WindowSummary& summary) {
  if (stopped_) return;
  Org* org = nullptr;
  for (auto& o : orgs_)
    if (summary.metric.compare(0, o->prefix.size(), o->prefix) == 0) org = o.get();
  if (!org) return;
  const std::string_view name = std::string_view(summary.metric).substr(org->prefix.size());
  const long long ts =
      std::chrono::duration_cast<std::chrono::milliseconds>(summary.start.time_since_epoch()).count();
  if (summary.window == "1s" && name == "amount") {
    broker_.publish(org->prefix + "kpi.tps", Json::object({{"value", static_cast<long long>(summary.count)}, {"ts", ts}}));
  } else if (summary.window == "1s" && name == "revenue") {
    org->revenue_total += summary.sum;
    broker_.publish(org->prefix + "kpi.revenue", Json::object({{"total", round_to(org->revenue_total, 0.01)},
                                                               {"per_second", round_to(summary.sum, 0.01)},
                                                               {"currency", org->profile.currency},
                                                               {"ts", ts}}));
  } else if (summary.window == "5s" && name == "failed") {
    const double error_rate = summary.mean.value_or(0.0);
    broker_.publish(org->prefix + "kpi.error_rate", Json::object({{"value", round_to(error_rate, 0.0001)},
                                                                  {"threshold", error_rate_threshold},
                                                                  {"window_s", error_rate_window_s},
                                                                  {"ts", ts}}));
    check_error_rate_alert(*org, error_rate, summary.count);
  }
}

// Fires once when the rate crosses the threshold and resolves once it is well
// below it again, so a rate hovering at the threshold does not flap.
void PaymentSimulation::check_error_rate_alert(Org& org, double error_rate, std::uint64_t window_count) {
  const bool enough_traffic = window_count >= 50;
  std::string severity, message;
  if (!org.alert_active && enough_traffic && error_rate > error_rate_threshold) {
    org.alert_active = true;
    severity = "critical";
    message = "Error rate " + percent(error_rate, 2) + " is above the " + percent(error_rate_threshold, 1) +
              " threshold";
  } else if (org.alert_active && error_rate < 0.6 * error_rate_threshold) {
    org.alert_active = false;
    severity = "resolved";
    message = "Error rate back to " + percent(error_rate, 2);
  } else {
    return;
  }
  char id[40];
  std::snprintf(id, sizeof id, "alert_%s_%llu", org.profile.org.c_str(), static_cast<unsigned long long>(++org.alerts));
  broker_.publish(org.prefix + "alerts", Json::object({{"id", id},
                                                       {"kind", "error_rate"},
                                                       {"severity", severity},
                                                       {"message", message},
                                                       {"value", round_to(error_rate, 0.0001)},
                                                       {"threshold", error_rate_threshold},
                                                       {"ts", unix_ms()}}));
}

}  // namespace dashboard
