// RedisBackend::health() and what readiness and the metrics make of it,
// against a real redis-server the test kills and starts again: unavailable
// and for a growing time while it is gone, readiness false past
// backend_unavailable_grace, available with a measured round trip once back.
// Skipped, not failed, without /usr/bin/redis-server.
#include "../ops/prometheus_text.hpp"
#include "redis_fixture.hpp"

#include <livecast/metrics.hpp>

#include <fstream>
#include <iterator>
#include <optional>
#include <string>

using namespace livecast;
using namespace livecast_test;
using namespace std::chrono_literals;

namespace {

PromExposition scrape(const MetricsExporter& exporter) {
  PromExposition e = parse_prometheus(exporter.text());
  for (const std::string& error : e.errors) FAIL_CHECK(error);
  return e;
}

}  // namespace

TEST_CASE("health follows Redis: down for a growing time once killed, not ready past the grace, back with a round trip") {
  SKIP_WITHOUT_REDIS_SERVER();
  RedisServer redis;
  BrokerSettings b;
  b.backend_unavailable_grace = 300ms;
  Instance a(Instance::settings(redis.url()), true, b);
  MetricsExporter exporter(*a.broker);

  // Connected: a PING answered at once, then one a second.
  REQUIRE(eventually([&] { return a.backend->health().round_trip.has_value(); }));
  BackendHealth up = a.backend->health();
  CHECK(up.available);
  CHECK(up.unavailable_for == 0ms);
  CHECK(*up.round_trip < 5s);
  CHECK(a.broker->readiness().ready);
  REQUIRE(a.publish("k", "{\"n\":1}").offset == 1);
  {
    const PromExposition e = scrape(exporter);
    CHECK(e.value("livecast_backend_up") == 1);
    CHECK(e.value("livecast_backend_unavailable_seconds") == 0);
    CHECK(e.value("livecast_backend_round_trip_seconds").has_value());
    CHECK(e.value("livecast_redis_publications_total") == 1);
    CHECK(e.value("livecast_redis_connection_losses_total") == 0);
    // The Redis families are in docs/operations.md with these types.
    const auto documented = documented_metrics([] {
      std::ifstream in(LIVECAST_OPERATIONS_DOC);
      return std::string(std::istreambuf_iterator<char>(in), {});
    }());
    for (const auto& exposed : e.families) {
      INFO(exposed.first);
      REQUIRE(documented.count(exposed.first) == 1);
      CHECK(documented.at(exposed.first).type == exposed.second.type);
    }
  }

  redis.kill();
  REQUIRE(eventually([&] { return !a.backend->health().available; }));
  const BackendHealth down = a.backend->health();
  CHECK_FALSE(down.round_trip.has_value());
  REQUIRE(eventually([&] { return a.backend->health().unavailable_for >= down.unavailable_for + 200ms; }));
  REQUIRE(eventually([&] { return !a.broker->readiness().ready; }));
  CHECK(a.broker->readiness().reason == "backend unavailable");
  {
    const PromExposition e = scrape(exporter);
    CHECK(e.value("livecast_backend_up") == 0);
    CHECK(*e.value("livecast_backend_unavailable_seconds") >= 0.2);
    CHECK_FALSE(e.value("livecast_backend_round_trip_seconds").has_value());
    CHECK(*e.value("livecast_redis_connection_losses_total") >= 1);
    std::optional<HttpResponse> ready = exporter.serve([] {
      HttpRequest r;
      r.path = "/readyz";
      return r;
    }());
    REQUIRE(ready);
    CHECK(ready->status == 503);
  }

  redis.start();
  REQUIRE(a.backend->wait_connected(wait_limit));
  REQUIRE(eventually([&] { return a.backend->health().round_trip.has_value(); }));
  const BackendHealth back = a.backend->health();
  CHECK(back.available);
  CHECK(back.unavailable_for == 0ms);
  CHECK(a.broker->readiness().ready);
  CHECK(scrape(exporter).value("livecast_backend_up") == 1);
}
