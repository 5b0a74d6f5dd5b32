// RedisStreamSource against a real redis-server: events XADDed by another
// process (redis-cli) reach subscribers; acknowledged entries are never
// published again, unacknowledged ones are, after a restart or a failure.
#include "redis_fixture.hpp"
#include "tcp_proxy.hpp"

#include <livecast/redis_stream_source.hpp>

#include <cstdio>
#include <mutex>
#include <set>

using namespace livecast;
using namespace livecast_test;
using namespace std::chrono_literals;

namespace {

constexpr const char* redis_cli_path = "/usr/bin/redis-cli";

// Runs redis-cli as a separate process (a producer that is not livecast) and
// returns what it printed. Arguments are single-quoted for the shell.
std::string redis_cli(const RedisServer& redis, const std::vector<std::string>& args) {
  std::string command = std::string(redis_cli_path) + " -p " + std::to_string(redis.port());
  for (const std::string& a : args) {
    REQUIRE(a.find('\'') == std::string::npos);
    command += " '" + a + "'";
  }
  std::FILE* out = ::popen(command.c_str(), "r");
  REQUIRE(out != nullptr);
  std::string text;
  char buffer[4096];
  for (std::size_t n; (n = std::fread(buffer, 1, sizeof buffer, out)) > 0;) text.append(buffer, n);
  REQUIRE(::pclose(out) == 0);
  return text;
}

// XADDs events {"n": first..last} for `topic`, one redis-cli call each.
void produce(const RedisServer& redis, const std::string& stream, const std::string& topic, int first, int last) {
  for (int n = first; n <= last; ++n)
    redis_cli(redis, {"XADD", stream, "*", "topic", topic, "data", "{\"n\":" + std::to_string(n) + "}"});
}

// The number of entries of `group` read but not acknowledged.
long pending(const RedisServer& redis, const std::string& stream, const std::string& group) {
  std::string out = redis_cli(redis, {"XPENDING", stream, group});
  return std::stol(out);  // the first line is the count
}

RedisStreamSourceSettings source_settings(const std::string& url, const std::string& consumer) {
  RedisStreamSourceSettings s;
  s.url = url;
  s.stream = "events";
  s.group = "dashboards";
  s.consumer = consumer;
  s.block = 200ms;
  s.retry_delay = 50ms;
  return s;
}

// The "n" of every publication a client received, in order.
std::vector<int> ns(const std::vector<std::string>& received) {
  std::vector<int> r;
  for (const std::string& m : received)
    if (is_publication(m)) r.push_back(static_cast<int>(number_after(m, "n")));
  return r;
}

// "1 2 3", so that a failed comparison says what arrived.
std::string text(const std::vector<int>& ns) {
  std::string r;
  for (int n : ns) r += (r.empty() ? "" : " ") + std::to_string(n);
  return r;
}

std::vector<int> sequence(int first, int last) {
  std::vector<int> r;
  for (int n = first; n <= last; ++n) r.push_back(n);
  return r;
}

// A session on `instance` subscribed to "feed", its reply received.
std::unique_ptr<MemoryConnection> feed_subscriber(Instance& instance) {
  auto client = instance.connect();
  client->send(subscribe_message(1, "feed"));
  REQUIRE(client->wait_for_count(1, wait_limit));
  return client;
}

bool redis_cli_installed() { return ::access(redis_cli_path, X_OK) == 0; }

}  // namespace

TEST_CASE("a stream source refuses settings it cannot work with") {
  Broker broker(BrokerSettings{});
  CHECK_THROWS_AS(RedisStreamSource(broker, source_settings("redis://127.0.0.1:6379", "")), std::invalid_argument);
  auto s = source_settings("http://x", "c1");
  CHECK_THROWS_AS(RedisStreamSource(broker, s), std::invalid_argument);
  s = source_settings("redis://127.0.0.1:6379", "c1");
  s.stream.clear();
  CHECK_THROWS_AS(RedisStreamSource(broker, s), std::invalid_argument);
  s = source_settings("redis://127.0.0.1:6379", "c1");
  s.block = s.command_timeout;
  CHECK_THROWS_AS(RedisStreamSource(broker, s), std::invalid_argument);
}

TEST_CASE("events XADDed by another process reach subscribers, in order, and are acknowledged") {
  SKIP_WITHOUT_REDIS_SERVER();
  REQUIRE_MESSAGE(redis_cli_installed(), redis_cli_path << " is missing (apt-get install redis-tools)");
  RedisServer redis;
  Instance a(redis.url());
  auto client = feed_subscriber(a);

  std::mutex errors_mutex;
  std::vector<std::string> errors;
  auto s = source_settings(redis.url(), "instance-a");
  s.on_error = [&](const std::string& what, std::error_code) {
    std::lock_guard<std::mutex> lock(errors_mutex);
    errors.push_back(what);
  };
  RedisStreamSource source(*a.broker, s);
  source.start();

  produce(redis, "events", "feed", 1, 10);
  // Entries that cannot become publications are acknowledged and counted, never delivered.
  redis_cli(redis, {"XADD", "events", "*", "topic", "feed", "data", "not json"});
  redis_cli(redis, {"XADD", "events", "*", "no", "topic"});
  produce(redis, "events", "feed", 11, 20);

  REQUIRE(client->wait_until([](const std::vector<std::string>& r) { return ns(r).size() >= 20; }, wait_limit));
  CHECK_MESSAGE(ns(client->received()) == sequence(1, 20), text(ns(client->received())));
  CHECK(publication_offsets(client->received()) == range(1, 20));
  REQUIRE(eventually([&] { return source.metrics().acknowledged == 22; }));
  auto m = source.metrics();
  CHECK(m.published == 20);
  CHECK(m.rejected == 2);
  CHECK(m.publish_failures == 0);
  CHECK(pending(redis, "events", "dashboards") == 0);
  std::lock_guard<std::mutex> lock(errors_mutex);
  CHECK(errors.size() == 2);
}

TEST_CASE("a restarted instance resumes from its consumer group: nothing acknowledged twice, nothing lost") {
  SKIP_WITHOUT_REDIS_SERVER();
  REQUIRE_MESSAGE(redis_cli_installed(), redis_cli_path << " is missing (apt-get install redis-tools)");
  RedisServer redis;
  Instance a(redis.url());
  auto client = feed_subscriber(a);

  {
    RedisStreamSource first(*a.broker, source_settings(redis.url(), "instance-a"));
    first.start();
    produce(redis, "events", "feed", 1, 10);
    REQUIRE(eventually([&] { return first.metrics().acknowledged == 10; }));
  }  // stopped: the instance goes away

  // Produced while no instance runs.
  produce(redis, "events", "feed", 11, 20);
  // As if the instance had read 11..13 and crashed before publishing them:
  // they sit in its pending list.
  redis_cli(redis, {"XREADGROUP", "GROUP", "dashboards", "instance-a", "COUNT", "3", "STREAMS", "events", ">"});
  CHECK(pending(redis, "events", "dashboards") == 3);

  RedisStreamSource second(*a.broker, source_settings(redis.url(), "instance-a"));
  second.start();
  REQUIRE(client->wait_until([](const std::vector<std::string>& r) { return ns(r).size() >= 20; }, wait_limit));
  REQUIRE(eventually([&] { return second.metrics().acknowledged == 10; }));
  CHECK_MESSAGE(ns(client->received()) == sequence(1, 20), text(ns(client->received())));
  CHECK(second.metrics().redelivered == 3);
  CHECK(second.metrics().published == 10);
  CHECK(pending(redis, "events", "dashboards") == 0);
}

TEST_CASE("a publication the backend does not accept is not acknowledged, and is published once it can be") {
  SKIP_WITHOUT_REDIS_SERVER();
  REQUIRE_MESSAGE(redis_cli_installed(), redis_cli_path << " is missing (apt-get install redis-tools)");
  RedisServer redis;
  // The broker reaches Redis through a relay that the test cuts; the source
  // reads the stream directly.
  TcpProxy proxy(redis.port());
  Instance a(proxy.url());
  auto client = feed_subscriber(a);

  RedisStreamSource source(*a.broker, source_settings(redis.url(), "instance-a"));
  source.start();
  produce(redis, "events", "feed", 1, 5);
  REQUIRE(eventually([&] { return source.metrics().acknowledged == 5; }));

  proxy.cut();
  REQUIRE(eventually([&] { return !a.backend->connected(); }));
  produce(redis, "events", "feed", 6, 8);
  REQUIRE(eventually([&] { return source.metrics().publish_failures >= 3; }));
  CHECK(source.metrics().acknowledged == 5);
  CHECK(pending(redis, "events", "dashboards") >= 1);

  proxy.restore();
  REQUIRE(client->wait_until([](const std::vector<std::string>& r) { return ns(r).size() >= 8; }, wait_limit));
  REQUIRE(eventually([&] { return source.metrics().acknowledged == 8; }));
  auto got = ns(client->received());
  CHECK_MESSAGE(got == sequence(1, 8), text(got));
  CHECK(publication_offsets(client->received()) == range(1, 8));
  CHECK(pending(redis, "events", "dashboards") == 0);
}
