// BrokerSettings::log with a real Redis that goes away and comes back:
// backend.unavailable once when it is lost, backend.available once when both
// of RedisBackend's connections are up again.
#include "redis_fixture.hpp"

#include <livecast/log.hpp>

#include <mutex>
#include <string>
#include <vector>

using namespace livecast;
using namespace livecast_test;

namespace {

class CollectedNames {
 public:
  LogSink sink() {
    return [this](const LogEvent& e) {
      std::lock_guard<std::mutex> lock(mutex_);
      names_.emplace_back(e.name);
    };
  }
  std::size_t count(const std::string& name) const {
    std::lock_guard<std::mutex> lock(mutex_);
    std::size_t n = 0;
    for (const auto& s : names_) n += s == name;
    return n;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<std::string> names_;
};

}  // namespace

TEST_CASE("log: a Redis that goes away is backend.unavailable once, and backend.available once it is back") {
  if (!redis_server_installed()) {
    MESSAGE(skip_message());
    return;
  }
  RedisServer redis;
  CollectedNames events;
  BrokerSettings settings;
  settings.log = events.sink();
  RedisBackendSettings r;
  r.url = redis.url();
  auto backend = std::make_unique<RedisBackend>(r);
  RedisBackend& redis_backend = *backend;
  Broker broker(std::move(settings), std::move(backend));
  broker.start();
  REQUIRE(redis_backend.wait_connected(wait_limit));
  CHECK(events.count("backend.unavailable") == 0);
  CHECK(events.count("backend.available") == 0);  // never lost: nothing to say

  redis.kill();
  REQUIRE(eventually([&] { return events.count("backend.unavailable") == 1; }));
  CHECK(events.count("backend.available") == 0);

  redis.start();
  REQUIRE(redis_backend.wait_connected(wait_limit));
  REQUIRE(eventually([&] { return events.count("backend.available") == 1; }));
  CHECK(events.count("backend.unavailable") == 1);  // both connections lost: one event
  CHECK(broker.publish("t", "1") == std::error_code());
}
