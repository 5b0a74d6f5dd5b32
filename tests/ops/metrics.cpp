// MetricsExporter end to end: the exposition is read back by a strict parser
// of the text format (prometheus_text.hpp), scraped over a real port through
// the WebSocket transport's http_handler while a real WebSocket client
// subscribes, receives publications and sends a bad message; the counters
// must move with it. The names and types must be those of the table in
// docs/operations.md (LIVECAST_OPERATIONS_DOC), and the health endpoints
// must answer as documented.
#include "prometheus_text.hpp"
#include "transport_server.hpp"
#include "ws_test_client.hpp"

#include <livecast/broker.hpp>
#include <livecast/http_transport.hpp>
#include <livecast/jwt.hpp>
#include <livecast/metrics.hpp>
#include <livecast/websocket_transport.hpp>

#include <doctest/doctest.h>

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>

#include <fstream>
#include <future>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>

using namespace livecast;
using livecast_test::eventually;
using livecast_test::parse_prometheus;
using livecast_test::PromExposition;
using livecast_test::WsClient;

namespace {

struct HttpAnswer {
  int status = 0;
  std::string head, body;
  std::string header(const std::string& name) const {
    std::string lower_head = head;
    for (auto& c : lower_head) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::string key = "\r\n" + name + ":";
    for (auto& c : key) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    auto at = lower_head.find(key);
    if (at == std::string::npos) return {};
    auto start = at + key.size();
    auto end = head.find("\r\n", start);
    std::string value = head.substr(start, end - start);
    while (!value.empty() && value.front() == ' ') value.erase(0, 1);
    return value;
  }
};

HttpAnswer get(std::uint16_t port, const std::string& target) {
  const std::string raw = livecast_test::http_get(port, target);
  HttpAnswer a;
  const auto split = raw.find("\r\n\r\n");
  if (raw.size() < 12 || split == std::string::npos) return a;
  a.status = std::stoi(raw.substr(9, 3));
  a.head = raw.substr(0, split);
  a.body = raw.substr(split + 4);
  return a;
}

// Scrapes /metrics and parses it; every format error fails the test.
PromExposition scrape(std::uint16_t port) {
  const HttpAnswer a = get(port, "/metrics");
  CHECK(a.status == 200);
  CHECK(a.header("Content-Type") == "text/plain; version=0.0.4; charset=utf-8");
  PromExposition e = parse_prometheus(a.body);
  for (const std::string& error : e.errors) FAIL_CHECK(error);
  return e;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

HttpResponse page(const HttpRequest& r) {
  if (r.path == "/") return HttpResponse{200, "text/html; charset=utf-8", "<p>page</p>", {}};
  return HttpResponse::not_found();
}

// A broker, the WebSocket transport serving the exporter's handler (with a
// page behind it) and an HTTP transport, both added to the exporter.
struct Server {
  Server() : broker(livecast_test::with_threads(2)), exporter(broker) {
    WebSocketSettings ws_settings = livecast_test::loopback_settings<WebSocketSettings>();
    ws_settings.http_handler = exporter.handler(page);
    ws.emplace(broker, std::move(ws_settings));
    http.emplace(broker, livecast_test::loopback_settings<HttpTransportSettings>());
    exporter.add(*ws);
    exporter.add(*http);
    broker.start();
    ws->start();
    http->start();
  }
  ~Server() {
    http->stop();
    ws->stop();
  }
  std::uint16_t port() const { return ws->port(); }

  Broker broker;
  MetricsExporter exporter;
  std::optional<WebSocketTransport> ws;
  std::optional<HttpTransport> http;
};

}  // namespace

TEST_CASE("MetricsWriter: families grouped under one HELP and TYPE, label values escaped") {
  MetricsWriter w;
  w.counter("demo_events_total", "Events, by kind.", 3, {{"kind", "a\"b\\c\nd"}});
  w.gauge("demo_level", "A level with a \\ and a\nline.", 0.25);
  w.counter("demo_events_total", "Events, by kind.", 4, {{"kind", "plain"}});
  w.histogram("demo_seconds", "Durations.", {0.001, 0.5, 10}, {1, 2, 0, 3}, 42.5, {{"shard", "0"}});
  const std::string text = w.text();
  PromExposition e = parse_prometheus(text);
  for (const std::string& error : e.errors) FAIL_CHECK(error);
  CHECK(e.families.at("demo_events_total").samples.size() == 2);
  CHECK(e.value("demo_events_total", {{"kind", "a\"b\\c\nd"}}) == 3);
  CHECK(e.value("demo_events_total", {{"kind", "plain"}}) == 4);
  CHECK(e.value("demo_level") == 0.25);
  CHECK(e.families.at("demo_level").help == "A level with a \\\\ and a\\nline.");
  CHECK(e.value("demo_seconds_bucket", {{"le", "0.001"}}) == 1);
  CHECK(e.value("demo_seconds_bucket", {{"le", "0.5"}}) == 3);
  CHECK(e.value("demo_seconds_bucket", {{"le", "10"}}) == 3);
  CHECK(e.value("demo_seconds_bucket", {{"le", "+Inf"}, {"shard", "0"}}) == 6);
  CHECK(e.value("demo_seconds_count") == 6);
  CHECK(e.value("demo_seconds_sum") == 42.5);
  // The two counter samples are one group, after one HELP and one TYPE.
  CHECK(text.find("# TYPE demo_events_total counter\ndemo_events_total{kind=\"a\\\"b\\\\c\\nd\"} 3\n"
                  "demo_events_total{kind=\"plain\"} 4\n") != std::string::npos);
}

TEST_CASE("MetricsWriter: what Prometheus would refuse is the caller's bug") {
  MetricsWriter w;
  CHECK_THROWS_AS(w.counter("demo_events", "no _total", 1), std::invalid_argument);
  CHECK_THROWS_AS(w.gauge("1demo", "bad name", 1), std::invalid_argument);
  CHECK_THROWS_AS(w.gauge("demo-level", "bad name", 1), std::invalid_argument);
  CHECK_THROWS_AS(w.gauge("demo_level", "bad label", 1, {{"bad-label", "x"}}), std::invalid_argument);
  CHECK_THROWS_AS(w.gauge("demo_level", "reserved label", 1, {{"__name", "x"}}), std::invalid_argument);
  w.gauge("demo_level", "a gauge", 1);
  CHECK_THROWS_AS(w.histogram("demo_level", "now a histogram", {1}, {0, 0}, 0), std::invalid_argument);
  CHECK_THROWS_AS(w.histogram("demo_seconds", "counts", {1, 2}, {0, 0}, 0), std::invalid_argument);
  CHECK_THROWS_AS(w.histogram("demo_seconds", "descending", {2, 1}, {0, 0, 0}, 0), std::invalid_argument);
  // Nothing half-written: what is there still parses.
  PromExposition e = parse_prometheus(w.text());
  for (const std::string& error : e.errors) FAIL_CHECK(error);
  CHECK(e.value("demo_level") == 1);
}

TEST_CASE("counters move as a WebSocket client subscribes, receives and errs, scraped over the transport's port") {
  Server server;
  const std::uint16_t port = server.port();

  const PromExposition before = scrape(port);
  CHECK(before.value("livecast_sessions_active") == 0);
  CHECK(before.value("livecast_publications_total") == 0);
  CHECK(before.value("livecast_backend_up") == 1);
  CHECK(before.value("livecast_dropped_publications_total", {{"policy", "conflate"}}) == 0);

  WsClient client(port);
  REQUIRE(client.wait_open());
  client.send(R"({"op":"subscribe","topic":"prices","id":1})");
  auto subscribed = client.next_json();
  REQUIRE(subscribed);
  REQUIRE(subscribed->HasMember("id"));

  {
    const PromExposition e = scrape(port);
    CHECK(e.value("livecast_sessions_active") == 1);
    CHECK(e.value("livecast_sessions_opened_total") == 1);
    CHECK(e.value("livecast_subscriptions_active") == 1);
    CHECK(e.value("livecast_topics_active") == 1);
    CHECK(e.value("livecast_connections_active", {{"transport", "websocket"}}) >= 1);
    // The scrapes themselves are connections on this port.
    CHECK(e.value("livecast_connections_accepted_total", {{"transport", "websocket"}}) >= 2);
    CHECK(e.value("livecast_connections_accepted_total", {{"transport", "http"}}) == 0);
  }

  constexpr int publications = 5;
  for (int i = 0; i < publications; ++i)
    REQUIRE_FALSE(server.broker.publish("prices", "{\"n\":" + std::to_string(i) + "}"));
  for (int i = 0; i < publications; ++i) {
    auto m = client.next_json();
    REQUIRE(m);
    REQUIRE(m->HasMember("data"));
  }
  client.send("this is not JSON");
  auto error = client.next_json();
  REQUIRE(error);
  REQUIRE(error->HasMember("error"));

  const PromExposition after = scrape(port);
  CHECK(after.value("livecast_publications_total") == publications);
  CHECK(after.value("livecast_deliveries_total") == publications);
  // Every delivery was timed before its frame reached the socket.
  CHECK(after.value("livecast_delivery_latency_seconds_count") == publications);
  CHECK(after.value("livecast_delivery_latency_seconds_bucket", {{"le", "+Inf"}}) == publications);
  CHECK(*after.value("livecast_delivery_latency_seconds_sum") >= 0);
  CHECK(*after.value("livecast_delivery_latency_seconds_sum") < 10 * publications);
  CHECK(after.value("livecast_error_replies_total", {{"code", "invalid_json"}}) == 1);
  CHECK(after.value("livecast_error_replies_total", {{"code", "unauthorized"}}) == 0);
  CHECK(after.value("livecast_messages_received_total") == 2);
  // The queue was written out: nothing waits in it.
  CHECK(eventually([&] { return scrape(port).value("livecast_send_queue_bytes") == 0; }));

  client.close();
  REQUIRE(client.wait_ended());
  CHECK(eventually([&] {
    const PromExposition e = scrape(port);
    return e.value("livecast_sessions_active") == 0 && e.value("livecast_sessions_closed_total") == 1 &&
           e.value("livecast_subscriptions_active") == 0 && e.value("livecast_topics_active") == 0;
  }));
  CHECK(server.broker.metrics().delivery_latency.count == publications);
}

TEST_CASE("the exposed families are the table of docs/operations.md, with its types") {
  Server server;
  const PromExposition e = scrape(server.port());
  const auto documented = livecast_test::documented_metrics(read_file(LIVECAST_OPERATIONS_DOC));
  REQUIRE(documented.size() > 20);
  for (const auto& exposed : e.families) {
    const std::string& name = exposed.first;
    const livecast_test::PromFamily& family = exposed.second;
    INFO("exposed: " << name);
    auto it = documented.find(name);
    if (it == documented.end()) {
      FAIL_CHECK("not in docs/operations.md");
      continue;
    }
    CHECK(it->second.type == family.type);
    // Every label the samples carry is named in the table's labels cell.
    for (const auto& s : family.samples)
      for (const auto& label : s.labels)
        if (label.first != "le")
          CHECK_MESSAGE(it->second.labels.find("`" + label.first + "`") != std::string::npos, label.first);
  }
  // The other way: everything documented is exposed, but what only a Redis
  // backend, a JwtVerifier, an Aggregator (tests/aggregate) or a measured
  // round trip adds.
  for (const auto& row : documented) {
    const std::string& name = row.first;
    if (name.rfind("livecast_redis_", 0) == 0 || name.rfind("livecast_jwt_", 0) == 0 ||
        name.rfind("livecast_aggregator_", 0) == 0 || name == "livecast_backend_round_trip_seconds")
      continue;
    INFO("documented: " << name);
    CHECK(e.families.count(name) == 1);
  }
}

TEST_CASE("healthz, readyz and the host's fallback on the same port") {
  Server server;
  const std::uint16_t port = server.port();
  HttpAnswer health = get(port, "/healthz");
  CHECK(health.status == 200);
  CHECK(health.body == "ok\n");
  HttpAnswer ready = get(port, "/readyz");
  CHECK(ready.status == 200);
  HttpAnswer root = get(port, "/");
  CHECK(root.status == 200);
  CHECK(root.body == "<p>page</p>");
  CHECK(get(port, "/elsewhere").status == 404);
  // The host's own families come after livecast's.
  server.exporter.add([](MetricsWriter& w) { w.gauge("demo_host_level", "The host's own.", 7); });
  CHECK(parse_prometheus(server.exporter.text()).value("demo_host_level") == 7);
}

TEST_CASE("readyz answers 503 with the reason once the broker stopped, healthz still 200") {
  // Host mode: the transport runs on the host's io_context, which keeps
  // serving plain HTTP after broker.stop() (a broker with threads of its own
  // would take the transport's threads with it).
  asio::io_context io;
  Broker broker(io);
  MetricsEndpoints endpoints;
  endpoints.ready_path = "/ready";
  endpoints.retry_after = std::chrono::seconds(7);
  MetricsExporter exporter(broker, endpoints);
  WebSocketSettings settings = livecast_test::loopback_settings<WebSocketSettings>();
  settings.http_handler = exporter.handler();
  WebSocketTransport ws(broker, settings);
  exporter.add(ws);
  ws.start();
  auto work = asio::make_work_guard(io);
  std::thread runner([&] { io.run(); });

  CHECK(get(ws.port(), "/ready").status == 200);
  CHECK(get(ws.port(), "/readyz").status == 404);  // the path is the configured one
  broker.stop();
  const HttpAnswer ready = get(ws.port(), "/ready");
  CHECK(ready.status == 503);
  CHECK(ready.body == "not ready: stopped\n");
  CHECK(ready.header("Retry-After") == "7");
  CHECK(get(ws.port(), "/healthz").status == 200);

  std::promise<void> stopped;
  asio::post(io, [&] {
    ws.stop();
    stopped.set_value();
  });
  stopped.get_future().wait();
  work.reset();
  io.stop();
  runner.join();
}

TEST_CASE("MetricsWriter: values and bounds spelled as Prometheus' own clients do") {
  MetricsWriter w;
  w.gauge("demo_a", "a", 10);
  w.gauge("demo_b", "b", 0.0005);
  w.gauge("demo_c", "c", 15000000);
  w.gauge("demo_d", "d", 1e-7);
  w.gauge("demo_e", "e", -2.5);
  w.gauge("demo_f", "f", 1e300);
  w.gauge("demo_g", "g", 0.1 + 0.2);
  const std::string text = w.text();
  for (const char* line : {"demo_a 10\n", "demo_b 0.0005\n", "demo_c 15000000\n", "demo_d 1e-07\n",
                           "demo_e -2.5\n", "demo_f 1e+300\n", "demo_g 0.30000000000000004\n"})
    CHECK_MESSAGE(text.find(line) != std::string::npos, line);
  MetricsWriter h;
  const std::vector<double> bounds(LatencyHistogram::bounds.begin(), LatencyHistogram::bounds.end());
  h.histogram("demo_seconds", "s", bounds, std::vector<std::uint64_t>(bounds.size() + 1, 1), 1);
  for (const char* le : {"0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1",
                         "2.5", "5", "10", "+Inf"})
    CHECK_MESSAGE(h.text().find(std::string("le=\"") + le + "\"") != std::string::npos, le);
}

TEST_CASE("a JwtVerifier's refusals by reason, beside the broker's") {
  Broker broker;
  JwtSettings jwt;
  jwt.keys.push_back(JwtKey::hs256_secret(std::string(32, 's')));
  JwtVerifier verifier(jwt);
  MetricsExporter exporter(broker);
  exporter.add(verifier);
  CHECK_FALSE(verifier.verify("not.a.token").accepted());
  CHECK_FALSE(verifier.verify("").accepted());
  const PromExposition e = parse_prometheus(exporter.text());
  for (const std::string& error : e.errors) FAIL_CHECK(error);
  CHECK(e.value("livecast_jwt_refusals_total", {{"reason", "malformed"}}) == 1);
  CHECK(e.value("livecast_jwt_refusals_total", {{"reason", "missing"}}) == 1);
  CHECK(e.total("livecast_jwt_refusals_total") == 2);
  CHECK(e.value("livecast_jwt_accepted_total") == 0);
  CHECK(e.value("livecast_jwt_keys") == 1);
  // Its families are documented too.
  const auto documented = livecast_test::documented_metrics(read_file(LIVECAST_OPERATIONS_DOC));
  for (const auto& exposed : e.families) {
    INFO(exposed.first);
    REQUIRE(documented.count(exposed.first) == 1);
    CHECK(documented.at(exposed.first).type == exposed.second.type);
  }
}
