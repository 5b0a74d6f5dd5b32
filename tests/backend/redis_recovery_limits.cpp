// Recovery amplification against a real redis-server: one long-poll request
// naming many topics with old cursors. Without bounds every topic's whole
// missed history would be read from Redis and encoded for that one request;
// with RecoverySettings the Redis commands and the bytes Redis sends stay
// within what the settings state.
#include "../transport/http_test_client.hpp"
#include "redis_fixture.hpp"

#include <livecast/http_transport.hpp>

#include <rapidjson/document.h>

#include <cstdint>
#include <future>
#include <optional>
#include <tuple>
#include <string>
#include <vector>

using namespace livecast;
using namespace livecast_test;
using namespace std::chrono_literals;

TEST_CASE("a poll naming many topics with old cursors reads a bounded amount from Redis") {
  SKIP_WITHOUT_REDIS_SERVER();
  RedisServer redis;
  constexpr int topics = 20;
  constexpr std::uint64_t per_topic = 300;
  constexpr std::size_t most = 25;  // RecoverySettings::max_publications
  const std::string payload = "{\"pad\":\"" + std::string(500, 'x') + "\"}";

  Instance writer(redis.url());
  std::vector<std::string> epochs;  // each topic has its own
  for (int t = 0; t < topics; ++t) {
    const std::string topic = "amp" + std::to_string(t);
    for (std::uint64_t i = 1; i < per_topic; ++i) REQUIRE_FALSE(writer.broker->publish(topic, payload));  // pipelined
    REQUIRE(writer.publish(topic, payload).offset == per_topic);
    std::promise<std::string> head;
    writer.broker->topic(topic).latest(
        [&](std::error_code, std::optional<Publication>, StreamPosition at) { head.set_value(at.epoch); });
    epochs.push_back(head.get_future().get());
    REQUIRE_FALSE(epochs.back().empty());
  }

  BrokerSettings b;
  b.recovery.max_publications = most;
  b.recovery.max_reads_in_flight = 4;
  Instance reader(Instance::settings(redis.url()), /*must_connect=*/true, b);
  HttpTransportSettings h;
  h.address = "127.0.0.1";
  h.port = 0;
  HttpTransport http(*reader.broker, h);
  http.start();

  // Every topic from offset `from`: `missed` publications each.
  auto poll_from = [&](std::uint64_t from) {
    std::string query = "/poll?timeout=1000&topics=", cursor;
    for (int t = 0; t < topics; ++t) {
      const std::string topic = "amp" + std::to_string(t);
      query += (t ? "," : "") + topic;
      cursor += (t ? "," : "") + topic + ":" + epochs[t] + ":" + std::to_string(from);
    }
    HttpClient client(http.port());
    client.get(query + "&cursor=" + cursor);
    auto response = client.response(wait_limit);
    REQUIRE(response);
    REQUIRE(response->status == 200);
    rapidjson::Document body;
    body.Parse(response->body.c_str(), response->body.size());
    REQUIRE_FALSE(body.HasParseError());
    int recovered = 0, not_recovered = 0, publications = 0;
    for (const auto& m : body["messages"].GetArray()) {
      if (m.HasMember("ok") && m["ok"].HasMember("recovered")) (m["ok"]["recovered"].GetBool() ? recovered : not_recovered)++;
      if (m.HasMember("offset") && !m.HasMember("ok")) ++publications;
    }
    return std::make_tuple(recovered, not_recovered, publications);
  };
  auto bytes_out = [&] { return std::stoull(redis.info_field("total_net_output_bytes")); };
  auto scripts = [&] { return redis.calls("evalsha") + redis.calls("eval"); };

  // 299 missed per topic, 25 allowed: not recovered, the latest value alone.
  const std::uint64_t bytes_before = bytes_out(), scripts_before = scripts();
  auto [recovered, not_recovered, publications] = poll_from(1);
  const std::uint64_t bytes = bytes_out() - bytes_before, commands = scripts() - scripts_before;
  CHECK(recovered == 0);
  CHECK(not_recovered == topics);
  CHECK(publications == topics);
  // One read script per topic, each answering with one entry; the whole
  // history would have been topics * 299 entries of ~530 bytes (3 MB).
  CHECK(commands <= topics + 2);
  MESSAGE("Redis sent " << bytes << " bytes for " << topics << " topics (unbounded: about "
                        << topics * (per_topic - 1) * payload.size() << ")");
  CHECK(bytes < std::uint64_t(topics) * 2 * payload.size() + 16 * 1024);

  // 20 missed per topic: within the bound, recovered exactly.
  const std::uint64_t bytes_before2 = bytes_out();
  auto [recovered2, not_recovered2, publications2] = poll_from(per_topic - 20);
  const std::uint64_t bytes2 = bytes_out() - bytes_before2;
  (void)recovered2;  // a poll answer leaves out replies that recovered: nothing changes for the client
  CHECK(not_recovered2 == 0);
  CHECK(publications2 == topics * 20);
  CHECK(bytes2 < std::uint64_t(topics) * (most + 1) * (payload.size() + 64) + 16 * 1024);

  const BrokerMetrics m = reader.broker->metrics();
  CHECK(m.recoveries_not_recovered == std::uint64_t(topics));
  CHECK(m.recoveries_recovered == std::uint64_t(topics));
  CHECK(m.publications_replayed == std::uint64_t(topics) * 20);
  CHECK(m.subscribe_reads == std::uint64_t(2 * topics));
  CHECK(m.subscribe_reads_in_flight == 0);
  http.stop();
}
