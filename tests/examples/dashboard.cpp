// The dashboard demo's access rules over a real WebSocket: a demo token
// receives live KPI publications, a viewer is refused the transaction feed,
// and an unknown token is turned away; Socket.IO clients are joined to their
// org's rooms (tests/browser/dashboard_socketio.test.mjs drives them with
// socket.io-client). With the examples built, it also checks the HTTP side:
// the embedded pages and bundles, and /config.json.
#include "../transport/ws_test_client.hpp"

#include "demo_access.hpp"
#include "payment_simulation.hpp"
#ifdef LIVECAST_TEST_DASHBOARD_WEB
#include "web_server.hpp"
#endif

#include <livecast/livecast.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <future>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

using namespace livecast;
using livecast_test::WsClient;
using livecast_test::WsOptions;

namespace {

struct DemoServer {
  explicit DemoServer(std::string jwt_secret = {}) : broker(settings(jwt_secret)), transport(broker, websocket()) {
    broker.start();
    transport.start();
  }
  static BrokerSettings settings(const std::string& jwt_secret = {}) {
    BrokerSettings s;
    s.threads = 2;
    s.authenticator =
        jwt_secret.empty() ? dashboard::demo_authenticator() : dashboard::demo_jwt_authenticator(jwt_secret);
    s.authorizer = dashboard::demo_authorizer();
    s.server_joins = dashboard::demo_server_joins;
    return s;
  }
  static WebSocketSettings websocket() {
    WebSocketSettings w;
    w.address = "127.0.0.1";
    w.port = 0;
    return w;
  }
  Broker broker;
  WebSocketTransport transport;
};

WsOptions with_token(const std::string& token) {
  WsOptions o;
  o.resource = "/ws?token=" + token;
  return o;
}

// The next message that answers request `id` (join notices carry no id).
std::optional<rapidjson::Document> reply_to(WsClient& client, int id) {
  for (int i = 0; i < 10; ++i) {
    auto m = client.next_json();
    if (!m) return std::nullopt;
    if (m->HasMember("id") && (*m)["id"].GetInt() == id) return m;
  }
  return std::nullopt;
}

}  // namespace

TEST_CASE("an analyst receives live KPI publications; a viewer is refused raw transactions") {
  DemoServer server;

  WsClient analyst(server.transport.port(), with_token("analyst-acme"));
  REQUIRE(analyst.wait_open());
  analyst.send(R"({"op":"subscribe","id":1,"topic":"org:acme:kpi.tps"})");
  auto ok = reply_to(analyst, 1);
  REQUIRE(ok);
  REQUIRE(ok->HasMember("ok"));
  for (std::uint64_t offset = 1; offset <= 3; ++offset) {
    REQUIRE(server.broker.publish("org:acme:kpi.tps", Json::object({{"tps", static_cast<int>(offset)}})) ==
            std::error_code());
  }
  std::uint64_t last = 0;
  while (last < 3) {
    auto m = analyst.next_json();
    REQUIRE(m);
    if (!m->HasMember("topic") || std::string((*m)["topic"].GetString()) != "org:acme:kpi.tps") continue;
    CHECK((*m)["offset"].GetUint64() == last + 1);
    last = (*m)["offset"].GetUint64();
  }

  WsClient viewer(server.transport.port(), with_token("viewer-acme"));
  REQUIRE(viewer.wait_open());
  viewer.send(R"({"op":"subscribe","id":1,"topic":"org:acme:transactions"})");
  viewer.send(R"({"op":"subscribe","id":2,"topic":"org:acme:kpi.revenue"})");
  viewer.send(R"({"op":"subscribe","id":3,"topic":"org:globex:kpi.revenue"})");
  auto refused = reply_to(viewer, 1);
  REQUIRE(refused);
  REQUIRE(refused->HasMember("error"));
  CHECK(std::string((*refused)["error"]["code"].GetString()) == "forbidden");
  auto allowed = reply_to(viewer, 2);
  REQUIRE(allowed);
  CHECK(allowed->HasMember("ok"));
  auto other_org = reply_to(viewer, 3);
  REQUIRE(other_org);
  CHECK(other_org->HasMember("error"));
}

TEST_CASE("the demo's aggregates: org:<org>:agg.<metric>.<window> with every field, for analysts, not viewers") {
  CHECK(dashboard::demo_aggregate_topic("org:acme:latency_ms", "1s") == "org:acme:agg.latency_ms.1s");
  CHECK(dashboard::demo_aggregate_topic("org:globex:amount", "1m") == "org:globex:agg.amount.1m");
  CHECK(dashboard::demo_aggregate_topic("amount", "1s").empty());

  DemoServer server;
  // The demo's Aggregator on a clock of the test's own, ticked by hand.
  auto now = std::make_shared<std::atomic<std::int64_t>>(1'733'580'000'100);
  AggregatorSettings settings = dashboard::demo_aggregator_settings();
  settings.own_thread = false;
  settings.clock = [now] { return std::chrono::system_clock::time_point(std::chrono::milliseconds(now->load())); };
  Aggregator aggregates(server.broker, settings);

  WsClient analyst(server.transport.port(), with_token("analyst-acme"));
  REQUIRE(analyst.wait_open());
  analyst.send(R"({"op":"subscribe","id":1,"topic":"org:acme:agg.latency_ms.1s"})");
  auto ok = reply_to(analyst, 1);
  REQUIRE(ok);
  REQUIRE(ok->HasMember("ok"));
  for (double v : {80.0, 120.0, 95.5}) aggregates.record("org:acme:latency_ms", v);
  *now += 1000;
  REQUIRE(aggregates.tick() >= 1);
  std::optional<rapidjson::Document> summary;
  for (int i = 0; i < 10 && !summary; ++i) {
    auto m = analyst.next_json();
    REQUIRE(m);
    if (m->HasMember("topic") && std::string((*m)["topic"].GetString()) == "org:acme:agg.latency_ms.1s") summary = std::move(m);
  }
  REQUIRE(summary);
  const auto& data = (*summary)["data"];
  for (const char* field : {"count", "sum", "min", "max", "mean", "rate", "p50", "p90", "p95", "p99", "start"})
    CHECK_MESSAGE(data.HasMember(field), field);
  CHECK(data["count"].GetInt() == 3);
  CHECK(data["max"].GetDouble() == 120.0);
  CHECK(data["window"].GetString() == std::string("1s"));
  CHECK(data["start"].GetInt64() == 1'733'580'000'000);

  WsClient viewer(server.transport.port(), with_token("viewer-acme"));
  REQUIRE(viewer.wait_open());
  viewer.send(R"({"op":"subscribe","id":1,"topic":"org:acme:agg.amount.1s"})");
  auto refused = reply_to(viewer, 1);
  REQUIRE(refused);
  CHECK(refused->HasMember("error"));
}

namespace {

// A topic's history (every publication still kept), read through the public Topic API.
std::vector<rapidjson::Document> history_of(Broker& broker, const std::string& name) {
  std::promise<ReadResult> answer;
  auto future = answer.get_future();
  broker.topic(name).history(StreamPosition{"", 0}, [&](ReadResult r) { answer.set_value(std::move(r)); });
  REQUIRE(future.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
  ReadResult result = future.get();
  // Not recovered from an empty position in another epoch: read again from the head's epoch.
  if (!result.recovered && !result.head.epoch.empty()) {
    std::promise<ReadResult> again;
    auto next = again.get_future();
    broker.topic(name).history(StreamPosition{result.head.epoch, 0}, [&](ReadResult r) { again.set_value(std::move(r)); });
    REQUIRE(next.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
    result = next.get();
  }
  std::vector<rapidjson::Document> out;
  for (const Publication& p : result.publications) {
    rapidjson::Document d;
    d.Parse(p.data->c_str(), p.data->size());
    REQUIRE_FALSE(d.HasParseError());
    out.push_back(std::move(d));
  }
  return out;
}

}  // namespace

TEST_CASE("the demo's KPI tiles are made from Aggregator summaries: tps the 1 s count, revenue the 1 s sum, error rate the 5 s mean") {
  DemoServer server;
  asio::io_context io;
  // Every record lands in the windows starting at a 5 s boundary, on a clock the test moves.
  constexpr std::int64_t start_ms = 1'733'580'000'000;
  auto now = std::make_shared<std::atomic<std::int64_t>>(start_ms + 100);
  AggregatorSettings settings = dashboard::demo_aggregator_settings();
  settings.own_thread = false;
  settings.clock = [now] { return std::chrono::system_clock::time_point(std::chrono::milliseconds(now->load())); };
  dashboard::PaymentSimulation simulation(io, server.broker, {dashboard::demo_org_profiles()[0]}, settings);
  simulation.start();
  // Traffic for a while (about 35 transactions a second); nothing is counted by time here.
  while (history_of(server.broker, "org:acme:transactions").size() < 5) io.run_for(std::chrono::milliseconds(100));
  io.stop();
  io.restart();

  const auto transactions = history_of(server.broker, "org:acme:transactions");
  CHECK(history_of(server.broker, "org:acme:kpi.tps").empty());  // no hand-made count before the window closes
  double revenue = 0;
  std::int64_t failed = 0;
  for (const auto& t : transactions) {
    const std::string status = t["status"].GetString();
    if (status == "failed") ++failed;
    if (status != "approved") continue;
    const std::string currency = t["currency"].GetString();
    const double usd = currency == "EUR" ? 1.08 : currency == "GBP" ? 1.27 : 1.0;
    revenue += std::round(t["amount"].GetDouble() * usd * 100) / 100;
  }

  *now = start_ms + 1000 + 100;  // the first 1 s window is over (past its grace)
  REQUIRE(simulation.aggregator().tick() > 0);
  io.poll();  // the summaries are handed over to the simulation's thread
  const auto tps = history_of(server.broker, "org:acme:kpi.tps");
  REQUIRE(tps.size() == 1);
  CHECK(tps[0]["value"].GetInt64() == static_cast<std::int64_t>(transactions.size()));
  CHECK(tps[0]["ts"].GetInt64() == start_ms);
  const auto revenues = history_of(server.broker, "org:acme:kpi.revenue");
  REQUIRE(revenues.size() == 1);
  CHECK(revenues[0]["per_second"].GetDouble() == doctest::Approx(revenue).epsilon(1e-9));
  CHECK(revenues[0]["total"].GetDouble() == doctest::Approx(revenue).epsilon(1e-9));
  CHECK(history_of(server.broker, "org:acme:kpi.error_rate").empty());  // its window is 5 s

  *now = start_ms + 5000 + 100;
  REQUIRE(simulation.aggregator().tick() > 0);
  io.poll();
  const auto errors = history_of(server.broker, "org:acme:kpi.error_rate");
  REQUIRE(errors.size() == 1);
  CHECK(errors[0]["value"].GetDouble() ==
        doctest::Approx(static_cast<double>(failed) / static_cast<double>(transactions.size())).epsilon(1e-3));
  CHECK(errors[0]["window_s"].GetInt() == 5);
  // Quiet seconds are summed up too: four more 1 s windows, with count 0.
  const auto all_tps = history_of(server.broker, "org:acme:kpi.tps");
  REQUIRE(all_tps.size() == 5);
  CHECK(all_tps.back()["value"].GetInt64() == 0);
  simulation.stop();
}

TEST_CASE("an unknown token is closed with 4001 and does not become a session") {
  DemoServer server;
  WsClient stranger(server.transport.port(), with_token("root-acme"));
  REQUIRE(stranger.wait_ended());
  CHECK(stranger.close_code() == static_cast<int>(CloseCode::unauthorized));
  CHECK(server.broker.metrics().sessions_opened == 0);
}

// --jwt-secret: the demo's users as JWTs, checked by livecast's JwtVerifier.
TEST_CASE("with a JWT secret: minted tokens carry the demo roles and orgs; demo tokens and forgeries are refused") {
  const std::string secret = "a demo secret of at least 32 bytes, for HS256";
  DemoServer server(secret);
  const std::string viewer_token = dashboard::mint_demo_jwt(secret, "viewer-acme", std::chrono::minutes(5));
  CHECK(std::count(viewer_token.begin(), viewer_token.end(), '.') == 2);
  WsClient viewer(server.transport.port(), with_token(viewer_token));
  REQUIRE(viewer.wait_open());
  viewer.send(R"({"op":"subscribe","id":1,"topic":"org:acme:transactions"})");
  viewer.send(R"({"op":"subscribe","id":2,"topic":"org:acme:kpi.revenue"})");
  auto refused = reply_to(viewer, 1);
  REQUIRE(refused);
  REQUIRE(refused->HasMember("error"));
  auto allowed = reply_to(viewer, 2);
  REQUIRE(allowed);
  CHECK(allowed->HasMember("ok"));

  const std::string forged = dashboard::mint_demo_jwt("another secret of at least 32 bytes, not ours",
                                                      "admin-acme", std::chrono::minutes(5));
  const std::string expired = dashboard::mint_demo_jwt(secret, "admin-acme", std::chrono::minutes(-5));
  for (const std::string& token : {std::string("admin-acme"), forged, expired}) {
    WsClient refused_client(server.transport.port(), with_token(token));
    REQUIRE(refused_client.wait_ended());
    CHECK(refused_client.close_code() == static_cast<int>(CloseCode::unauthorized));
  }
  CHECK(server.broker.metrics().sessions_opened == 1);
  CHECK_THROWS_AS(dashboard::demo_jwt_authenticator("too short"), std::invalid_argument);
}

TEST_CASE("Socket.IO clients are put in their org's rooms on connect; livecast.v1 clients only in its announcements") {
  const Authenticator authenticate = dashboard::mark_socketio_clients(dashboard::demo_authenticator(), "/socket.io/");
  auto joins_for = [&](const std::string& path, const std::string& token) {
    HandshakeRequest request;
    request.transport = "websocket";
    request.path = path;
    request.auth = R"({"token":")" + token + R"("})";
    request.auth_token = token;  // what the in-band connect sets from `auth`
    const AuthResult verdict = authenticate(request);
    REQUIRE(verdict.accepted());
    return dashboard::demo_server_joins(*verdict.principal);
  };
  const std::vector<std::string> kpis{"org:acme:kpi.revenue", "org:acme:kpi.tps", "org:acme:kpi.active_users",
                                      "org:acme:kpi.error_rate", "org:acme:kpi.viewers", "org:acme:alerts"};
  auto with = [](std::vector<std::string> topics, std::vector<std::string> more) {
    topics.insert(topics.begin(), "org:acme");
    topics.insert(topics.end(), more.begin(), more.end());
    return topics;
  };
  CHECK(joins_for("/socket.io/", "analyst-acme") == with(kpis, {"org:acme:transactions"}));
  CHECK(joins_for("/socket.io/", "admin-acme") == with(kpis, {"org:acme:transactions"}));
  // What demo_authorizer() denies a viewer is not joined either.
  CHECK(joins_for("/socket.io/", "viewer-acme") == with(kpis, {}));
  // The livecast.v1 page subscribes itself.
  CHECK(joins_for("/ws", "analyst-acme") == std::vector<std::string>{"org:acme"});

  // A refusal stays a refusal, with its reason.
  HandshakeRequest stranger;
  stranger.path = "/socket.io/";
  stranger.auth_token = "root-acme";
  const AuthResult refused = authenticate(stranger);
  CHECK_FALSE(refused.accepted());
  CHECK(refused.reason.find("unknown token") != std::string::npos);
}

#ifdef LIVECAST_TEST_DASHBOARD_WEB
namespace {

HttpRequest get(std::string path, std::string host = "dash.example:8080") {
  HttpRequest request;
  request.transport = "http";
  request.path = std::move(path);
  if (!host.empty()) request.headers["host"] = std::move(host);
  return request;
}

}  // namespace

TEST_CASE("the page, its bundle and /config.json are served from the binary") {
  Broker broker(DemoServer::settings());
  const MetricsExporter exporter(broker);
  const HttpHandler handler = dashboard::make_web_handler(broker, exporter);

  const HttpResponse page = handler(get("/"));
  CHECK(page.status == 200);
  CHECK(page.content_type.rfind("text/html", 0) == 0);
  // The page is the esbuild bundle (web/dist), not loose modules.
  CHECK(page.body.find("/dist/dashboard.js") != std::string::npos);
  CHECK(page.body.find("/dist/dashboard.css") != std::string::npos);
  CHECK(page.body.find("id=\"feed-blocked\"") != std::string::npos);

  const HttpResponse script = handler(get("/dist/dashboard.js"));
  CHECK(script.status == 200);
  CHECK(script.content_type.rfind("text/javascript", 0) == 0);
  CHECK(script.body.size() > 10000);  // client + uPlot + page, minified
  CHECK(handler(get("/dist/dashboard.css")).status == 200);
  CHECK(handler(get("/app.js")).status == 404);
  // The default page carries no socket.io-client.
  CHECK(script.body.find("socket.io") == std::string::npos);

  // ?client=socketio: the same page and styles on the socket.io-client bundle.
  HttpRequest socketio_request = get("/");
  socketio_request.query["client"] = "socketio";
  const HttpResponse socketio_page = handler(socketio_request);
  CHECK(socketio_page.status == 200);
  CHECK(socketio_page.body.find("/dist/dashboard-socketio.js") != std::string::npos);
  CHECK(socketio_page.body.find("/dist/dashboard.js") == std::string::npos);
  CHECK(socketio_page.body.find("/dist/dashboard.css") != std::string::npos);
  CHECK(socketio_page.body.find("id=\"feed-blocked\"") != std::string::npos);
  const HttpResponse socketio_script = handler(get("/dist/dashboard-socketio.js"));
  CHECK(socketio_script.status == 200);
  CHECK(socketio_script.content_type.rfind("text/javascript", 0) == 0);
  CHECK(socketio_script.body.find("socket.io-client 4.8.") != std::string::npos);  // its notice

  // For operators: Prometheus text, liveness and readiness beside the page;
  // the page's admin panel reads its JSON view (admins only).
  const HttpResponse metrics = handler(get("/metrics"));
  CHECK(metrics.status == 200);
  CHECK(metrics.content_type == prometheus_content_type);
  CHECK(metrics.body.find("# TYPE livecast_sessions_active gauge") != std::string::npos);
  CHECK(handler(get("/healthz")).status == 200);
  CHECK(handler(get("/readyz")).status == 200);
  CHECK(handler(get("/admin/metrics.json")).status == 403);

  // One URL: the page dials the WebSocket, SSE and polling on the host it was loaded from.
  const HttpResponse config = handler(get("/config.json"));
  CHECK(config.status == 200);
  CHECK(config.content_type == "application/json");
  CHECK(config.body == R"({"url":"http://dash.example:8080"})");
  CHECK(handler(get("/config.json", "[::1]:9000")).body == R"({"url":"http://[::1]:9000"})");
  // A missing or odd Host gives no URL, and the page falls back to its own location.
  CHECK(handler(get("/config.json", "")).body == "{}");
  CHECK(handler(get("/config.json", "evil\"/><script>")).body == "{}");

  // With the fallbacks on a second port, they are announced there, whichever
  // port the page came from.
  const HttpHandler both = dashboard::make_web_handler(broker, exporter, {8080, 8081});
  CHECK(both(get("/config.json", "dash.example:8081")).body ==
        R"({"url":"http://dash.example:8080","sse":"http://dash.example:8081/sse",)"
        R"("poll":"http://dash.example:8081/poll"})");
  CHECK(both(get("/config.json", "[::1]:8080")).body ==
        R"({"url":"http://[::1]:8080","sse":"http://[::1]:8081/sse","poll":"http://[::1]:8081/poll"})");
  // With --tls-cert/--tls-key both ports speak TLS.
  const HttpHandler secure = dashboard::make_web_handler(broker, exporter, {8443, 8444, true});
  CHECK(secure(get("/config.json", "dash.example:8443")).body ==
        R"({"url":"https://dash.example:8443","sse":"https://dash.example:8444/sse",)"
        R"("poll":"https://dash.example:8444/poll"})");
}
#endif
