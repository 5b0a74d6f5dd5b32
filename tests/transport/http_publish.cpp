// POST /publish end to end on loopback: a Broker with its own threads, the
// HTTP transport on 127.0.0.1 port 0, services publishing with plain HTTP
// clients, and an SSE subscriber that must receive exactly what the answers'
// offsets say was published.
#include "http_test_client.hpp"
#include "in_process_wrapper.hpp"
#include "transport_server.hpp"

#include <livecast/broker.hpp>
#include <livecast/http_transport.hpp>

#include <doctest/doctest.h>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

using namespace livecast;
using namespace std::chrono_literals;
using livecast_test::HttpClient;
using livecast_test::Response;

namespace {

rapidjson::Document parse(const std::string& text) {
  rapidjson::Document d;
  d.Parse(text.c_str(), text.size());
  REQUIRE_FALSE(d.HasParseError());
  return d;
}

using Server = livecast_test::TransportServer<HttpTransport, HttpTransportSettings>;

constexpr const char* service_token = "service-token";
constexpr const char* viewer_token = "viewer-token";

// A service token may publish on org:*; a viewer's may not; others are refused.
BrokerSettings publishing_broker() {
  BrokerSettings b = livecast_test::with_threads(2);
  b.authenticator = [](const HandshakeRequest& r) {
    if (r.token() == service_token) return AuthResult::accept(Principal{"svc", {"publisher"}, {}});
    if (r.token() == viewer_token) return AuthResult::accept(Principal{"viewer", {}, {}});
    return AuthResult::refuse("token refused");
  };
  b.authorizer = Authorizer{};
  b.authorizer.allow_subscribe("*").allow_publish("org:*", "publisher");
  b.log = {};
  return b;
}

HttpTransportSettings loopback() { return livecast_test::loopback_settings<HttpTransportSettings>(); }

std::string bearer(const char* token) { return std::string("Authorization: Bearer ") + token + "\r\n"; }

Response post_publish(std::uint16_t port, const std::string& body, const std::string& headers = bearer(service_token)) {
  HttpClient c(port);
  c.post("/publish", body, headers);
  auto r = c.response();
  REQUIRE(r);
  return *r;
}

std::string error_code(const Response& r) { return parse(r.body)["error"]["code"].GetString(); }

std::vector<std::uint64_t> offsets(const Response& r) {
  auto d = parse(r.body);
  REQUIRE(d["offsets"].IsArray());
  std::vector<std::uint64_t> out;
  for (const auto& o : d["offsets"].GetArray()) out.push_back(o.GetUint64());
  return out;
}

// An SSE subscriber to `topics`, past its replies.
struct Subscriber {
  Subscriber(std::uint16_t port, const std::string& topics, int replies) : client(port) {
    client.get("/sse?topics=" + topics + "&token=" + viewer_token);
    auto head = client.stream_head();
    REQUIRE(head);
    REQUIRE(head->status == 200);
    for (int i = 0; i < replies; ++i) REQUIRE(client.next_message());
  }
  // The next publication: topic, offset, data (compact JSON text).
  std::tuple<std::string, std::uint64_t, std::string> next() {
    auto e = client.next_message();
    REQUIRE(e);
    auto d = parse(e->data);
    REQUIRE(d.HasMember("data"));
    rapidjson::StringBuffer text;
    rapidjson::Writer<rapidjson::StringBuffer> w(text);
    d["data"].Accept(w);
    return {d["topic"].GetString(), d["offset"].GetUint64(), text.GetString()};
  }
  HttpClient client;
};

// Publications to "org:down" fail in the backend; the rest go through.
class PartlyFailingBackend final : public livecast_test::InProcessWrapper {
 public:
  void publish(const std::string& topic, std::shared_ptr<const std::string> data, PublishHandler done) override {
    if (topic == "org:down") {
      done(make_error_code(Errc::backend_unavailable), 0);
      return;
    }
    InProcessWrapper::publish(topic, std::move(data), std::move(done));
  }
  void read(const std::string& topic, const std::optional<StreamPosition>& since, std::size_t most,
            ReadHandler done) override {
    inner_->read(topic, since, most, std::move(done));
  }
};

}  // namespace

TEST_CASE("POST /publish: one publication answers with its offset, and a subscriber receives it") {
  Server server(publishing_broker());
  Subscriber sub(server.port(), "org:a", 1);

  Response r = post_publish(server.port(), R"({"topic":"org:a","data":{"total":1250.5,"big":12345678901234567890123}})");
  CHECK(r.status == 200);
  CHECK(r.header("content-type") == "application/json");
  CHECK(offsets(r) == std::vector<std::uint64_t>{1});
  auto [topic, offset, data] = sub.next();
  CHECK(topic == "org:a");
  CHECK(offset == 1);
  CHECK(data.find("1250.5") != std::string::npos);

  // Again on one kept-alive connection: the next offset.
  HttpClient c(server.port());
  for (std::uint64_t expected : {2u, 3u}) {
    c.post("/publish", R"({"topic":"org:a","data":)" + std::to_string(expected) + "}", bearer(service_token));
    auto again = c.response();
    REQUIRE(again);
    CHECK(again->status == 200);
    CHECK(offsets(*again) == std::vector<std::uint64_t>{expected});
    auto [t, o, d] = sub.next();
    CHECK(o == expected);
    CHECK(d == std::to_string(expected));
  }
  const HttpTransportMetrics m = server.transport.metrics();
  CHECK(m.publish_requests == 3);
  CHECK(m.publish_publications == 3);
  CHECK(server.broker.metrics().publications == 3);
}

TEST_CASE("POST /publish: a batch is published in order and answered with one offset per item") {
  Server server(publishing_broker());
  Subscriber sub(server.port(), "org:a,org:b", 2);

  Response r = post_publish(server.port(),
                            R"([{"topic":"org:a","data":1},{"topic":"org:b","data":"x"},{"topic":"org:a","data":[3]}])");
  REQUIRE(r.status == 200);
  CHECK(offsets(r) == std::vector<std::uint64_t>{1, 1, 2});
  std::vector<std::tuple<std::string, std::uint64_t, std::string>> received;
  for (int i = 0; i < 3; ++i) received.push_back(sub.next());
  // Per topic in order (across topics the backend may interleave).
  std::vector<std::tuple<std::string, std::uint64_t, std::string>> a, b;
  for (auto& p : received) (std::get<0>(p) == "org:a" ? a : b).push_back(p);
  REQUIRE(a.size() == 2);
  REQUIRE(b.size() == 1);
  CHECK(a[0] == std::make_tuple(std::string("org:a"), std::uint64_t{1}, std::string("1")));
  CHECK(a[1] == std::make_tuple(std::string("org:a"), std::uint64_t{2}, std::string("[3]")));
  CHECK(b[0] == std::make_tuple(std::string("org:b"), std::uint64_t{1}, std::string("\"x\"")));
  CHECK(server.transport.metrics().publish_publications == 3);
}

TEST_CASE("POST /publish: without a valid token 401, and nothing is published") {
  Server server(publishing_broker());
  Response none = post_publish(server.port(), R"({"topic":"org:a","data":1})", "");
  CHECK(none.status == 401);
  CHECK(error_code(none) == "unauthorized");
  Response bad = post_publish(server.port(), R"({"topic":"org:a","data":1})", bearer("forged"));
  CHECK(bad.status == 401);
  CHECK(server.transport.metrics().refused_unauthorized == 2);
  CHECK(server.broker.metrics().publications == 0);
}

TEST_CASE("POST /publish: a topic the Authorizer refuses is 403 naming it; a batch with one publishes nothing") {
  Server server(publishing_broker());
  Response viewer = post_publish(server.port(), R"({"topic":"org:a","data":1})", bearer(viewer_token));
  CHECK(viewer.status == 403);
  CHECK(error_code(viewer) == "forbidden");
  CHECK(std::string(parse(viewer.body)["error"]["message"].GetString()) == R"(not allowed to publish on "org:a")");

  Response batch = post_publish(server.port(), R"([{"topic":"org:a","data":1},{"topic":"private","data":2}])");
  CHECK(batch.status == 403);
  auto d = parse(batch.body);
  CHECK(d["error"]["item"].GetUint() == 1);
  CHECK(std::string(d["error"]["message"].GetString()).find("\"private\"") != std::string::npos);
  CHECK(server.broker.metrics().publications == 0);  // not even the allowed first item
  CHECK(server.transport.metrics().refused_forbidden == 2);
}

TEST_CASE("POST /publish: malformed bodies and invalid topics are 400 with a code") {
  Server server(publishing_broker());
  struct Case {
    std::string body;
    std::string code;
  };
  const Case cases[] = {
      {"not json", "invalid_json"},
      {R"({"topic":"org:a","data":1)", "invalid_json"},
      {R"({"topic":"org:a"})", "bad_request"},
      {R"({"topic":"org:a","data":1,"extra":0})", "bad_request"},
      {"[]", "bad_request"},
      {R"({"topic":"org:a\u0001","data":1})", "invalid_topic"},
      {R"({"topic":"org:a","data":"\udc00"})", "invalid_payload"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.body);
    Response r = post_publish(server.port(), c.body);
    CHECK(r.status == 400);
    CHECK(error_code(r) == c.code);
  }
  CHECK(server.transport.metrics().refused_bad_parameters == std::size(cases));
  CHECK(server.broker.metrics().publications == 0);
}

TEST_CASE("POST /publish: too large is 413: the body, the batch, one publication's data") {
  BrokerSettings b = publishing_broker();
  b.max_payload_bytes = 100;
  HttpTransportSettings h = loopback();
  h.max_body_bytes = 4096;
  h.max_publish_batch = 3;
  Server server(std::move(b), h);

  Response body = post_publish(server.port(), R"({"topic":"org:a","data":")" + std::string(5000, 'x') + "\"}");
  CHECK(body.status == 413);
  std::string four = "[";
  for (int i = 0; i < 4; ++i) four += std::string(i ? "," : "") + R"({"topic":"org:a","data":1})";
  Response batch = post_publish(server.port(), four + "]");
  CHECK(batch.status == 413);
  CHECK(error_code(batch) == "message_too_large");
  Response data = post_publish(server.port(), R"({"topic":"org:a","data":")" + std::string(200, 'x') + "\"}");
  CHECK(data.status == 413);
  CHECK(error_code(data) == "message_too_large");
  CHECK(server.transport.metrics().refused_too_large == 3);
  CHECK(server.broker.metrics().publications == 0);
}

TEST_CASE("POST /publish: the client's request rate applies (429 with Retry-After)") {
  HttpTransportSettings h = loopback();
  h.max_session_requests_per_second = 1;  // bursts of 2
  Server server(publishing_broker(), h);
  for (int i = 0; i < 2; ++i) CHECK(post_publish(server.port(), R"({"topic":"org:a","data":1})").status == 200);
  Response limited = post_publish(server.port(), R"({"topic":"org:a","data":1})");
  CHECK(limited.status == 429);
  CHECK(limited.header("retry-after") == "1");
  CHECK(server.broker.metrics().publications == 2);
}

TEST_CASE("POST /publish: the backend failing part of a batch is 503 with the offsets it took") {
  BrokerSettings b = publishing_broker();
  Broker broker(std::move(b), std::make_unique<PartlyFailingBackend>());
  HttpTransport transport(broker, loopback());
  broker.start();
  transport.start();

  Response r = post_publish(transport.port(),
                            R"([{"topic":"org:a","data":1},{"topic":"org:down","data":2},{"topic":"org:a","data":3}])");
  CHECK(r.status == 503);
  CHECK(r.header("retry-after") == "1");
  auto d = parse(r.body);
  CHECK(std::string(d["error"]["code"].GetString()) == "backend_unavailable");
  REQUIRE(d["offsets"].Size() == 3);
  CHECK(d["offsets"][0].GetUint64() == 1);
  CHECK(d["offsets"][1].IsNull());
  CHECK(d["offsets"][2].GetUint64() == 2);
  CHECK(transport.metrics().refused_unavailable == 1);
  CHECK(transport.metrics().publish_publications == 2);
  transport.stop();
}

TEST_CASE("POST /publish: CORS preflight and headers, other methods 405, and an empty path turns it off") {
  HttpTransportSettings h = loopback();
  h.allowed_origins = {"https://ops.example.com"};
  Server server(publishing_broker(), h);
  HttpClient pre(server.port());
  pre.send("OPTIONS /publish HTTP/1.1\r\nHost: test\r\nOrigin: https://ops.example.com\r\n"
           "Access-Control-Request-Method: POST\r\n\r\n");
  auto p = pre.response();
  REQUIRE(p);
  CHECK(p->status == 204);
  CHECK(p->header("access-control-allow-methods") == "POST");
  CHECK(p->header("access-control-allow-headers").find("Authorization") != std::string::npos);
  CHECK(p->header("access-control-allow-origin") == "https://ops.example.com");

  Response cors = post_publish(server.port(), R"({"topic":"org:a","data":1})",
                               bearer(service_token) + "Origin: https://ops.example.com\r\n");
  CHECK(cors.status == 200);
  CHECK(cors.header("access-control-allow-origin") == "https://ops.example.com");

  HttpClient get(server.port());
  get.get("/publish", bearer(service_token));
  auto g = get.response();
  REQUIRE(g);
  CHECK(g->status == 405);
  CHECK(g->header("allow") == "POST, OPTIONS");

  HttpTransportSettings off = loopback();
  off.publish_path.clear();
  Server without(publishing_broker(), off);
  CHECK(post_publish(without.port(), R"({"topic":"org:a","data":1})").status == 405);
  CHECK(without.broker.metrics().publications == 0);
}
