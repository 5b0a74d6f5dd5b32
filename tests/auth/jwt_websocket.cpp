// jwt_authenticator end to end: a Broker with its transports on
// loopback, and real WebSocket clients carrying the token each way a client
// can (Authorization header, the livecast.bearer subprotocol entry, the query).
#include "http_test_client.hpp"
#include "jwt_signer.hpp"
#include "one_port_server.hpp"
#include "transport_server.hpp"
#include "ws_test_client.hpp"

#include <livecast/broker.hpp>
#include <livecast/jwt.hpp>
#include <livecast/http_transport.hpp>
#include <livecast/websocket_transport.hpp>

#include <doctest/doctest.h>

#include <rapidjson/document.h>

#include <chrono>
#include <memory>
#include <string>

using namespace livecast;
using livecast_test::WsClient;
using livecast_test::WsOptions;

namespace {

const std::string secret = "an HS256 secret of 32 bytes or m";

std::string token_for(const std::string& org, std::chrono::seconds valid_for) {
  const auto exp = std::chrono::duration_cast<std::chrono::seconds>(
                       (std::chrono::system_clock::now() + valid_for).time_since_epoch())
                       .count();
  return livecast_test::make_token(
      R"({"alg":"HS256","typ":"JWT"})",
      R"({"sub":"u1","org":")" + org + R"(","roles":["viewer"],"exp":)" + std::to_string(exp) + "}",
      [](const std::string& input) { return livecast_test::hs256(secret, input); });
}

// Subscribes to `topic` and returns whether the reply is ok (not an error).
bool subscribed(WsClient& c, const std::string& topic) {
  c.send(R"({"op":"subscribe","id":1,"topic":")" + topic + R"("})");
  auto reply = c.next_json();
  return reply && reply->HasMember("ok");
}

}  // namespace

TEST_CASE("a broker with jwt_authenticator: a good token by header, subprotocol or query; a bad one gets 4001") {
  JwtSettings jwt;
  jwt.keys.push_back(JwtKey::hs256_secret(secret));
  jwt.claims = {"org"};
  auto verifier = std::make_shared<JwtVerifier>(jwt);
  BrokerSettings b = livecast_test::with_threads(2);
  b.authenticator = jwt_authenticator(verifier);
  // The org claim reaches the Authorizer: acme's own topics only.
  b.authorizer = Authorizer().allow_subscribe("org:{org}:*");
  livecast_test::TransportServer<WebSocketTransport, WebSocketSettings> server(b);

  const std::string good = token_for("acme", std::chrono::seconds(300));

  SUBCASE("Authorization: Bearer") {
    WsClient c(server.port(), WsOptions{"/ws", {{"Authorization", "Bearer " + good}}, {}});
    REQUIRE(c.wait_open());
    CHECK(subscribed(c, "org:acme:kpi"));
    CHECK_FALSE(subscribed(c, "org:globex:kpi"));
  }
  SUBCASE("the livecast.bearer.<token> subprotocol entry, never echoed back") {
    WsClient c(server.port(), WsOptions{"/ws", {}, {"livecast.v1", "livecast.bearer." + good}});
    REQUIRE(c.wait_open());
    CHECK(c.response_header("Sec-WebSocket-Protocol") == "livecast.v1");
    CHECK(subscribed(c, "org:acme:kpi"));
  }
  SUBCASE("the bearer entry offered first: livecast.v1 is still the one selected") {
    WsClient c(server.port(), WsOptions{"/ws", {}, {"livecast.bearer." + good, "livecast.v1"}});
    REQUIRE(c.wait_open());
    CHECK(c.response_header("Sec-WebSocket-Protocol") == "livecast.v1");
    CHECK(subscribed(c, "org:acme:kpi"));
  }
  SUBCASE("?token=") {
    WsClient c(server.port(), WsOptions{"/ws?token=" + good, {}, {}});
    REQUIRE(c.wait_open());
    CHECK(subscribed(c, "org:acme:kpi"));
  }
  SUBCASE("a bad token: close code 4001 with the reason, no session") {
    std::string forged = good;
    forged[forged.size() - 3] = forged[forged.size() - 3] == 'A' ? 'B' : 'A';
    const std::string expired = token_for("acme", std::chrono::seconds(-3600));
    for (const std::string& token : {forged, expired}) {
      WsClient c(server.port(), WsOptions{"/ws", {}, {"livecast.v1", "livecast.bearer." + token}});
      REQUIRE(c.wait_ended());
      CHECK(c.close_code() == static_cast<int>(CloseCode::unauthorized));
    }
    WsClient none(server.port(), WsOptions{"/ws", {}, {}});
    REQUIRE(none.wait_ended());
    CHECK(none.close_code() == static_cast<int>(CloseCode::unauthorized));
    CHECK(server.broker.metrics().sessions_opened == 0);
    CHECK(server.broker.metrics().errors(Errc::unauthorized) == 3);
    const JwtMetrics m = verifier->metrics();
    CHECK(m.signature == 1);
    CHECK(m.expired == 1);
    CHECK(m.missing == 1);
    CHECK(m.accepted == 0);
  }
  SUBCASE("a claim with ':' in it is refused at the handshake") {
    WsClient c(server.port(), WsOptions{"/ws?token=" + token_for("acme:transactions", std::chrono::seconds(300)), {}, {}});
    REQUIRE(c.wait_ended());
    CHECK(c.close_code() == static_cast<int>(CloseCode::unauthorized));
    CHECK(verifier->metrics().claims == 1);
  }
}

namespace {

BrokerSettings tenant_settings(std::shared_ptr<const JwtVerifier> verifier) {
  BrokerSettings b = livecast_test::with_threads(2);
  b.authenticator = jwt_authenticator(std::move(verifier));
  b.authorizer = Authorizer().allow_subscribe("org:{org}:*");
  return b;
}

std::shared_ptr<JwtVerifier> org_verifier(std::chrono::seconds leeway = std::chrono::seconds(30)) {
  JwtSettings jwt;
  jwt.keys.push_back(JwtKey::hs256_secret(secret));
  jwt.claims = {"org"};
  jwt.leeway = leeway;
  return std::make_shared<JwtVerifier>(jwt);
}

// The error code of the reply about `topic` in an SSE stream or poll answer body.
std::string sse_reply_code(livecast_test::HttpClient& c) {
  auto head = c.stream_head();
  REQUIRE(head);
  REQUIRE(head->status == 200);
  auto m = c.next_message();
  REQUIRE(m);
  rapidjson::Document d;
  d.Parse(m->data.c_str(), m->data.size());
  REQUIRE_FALSE(d.HasParseError());
  return d.HasMember("error") ? d["error"]["code"].GetString() : "ok";
}

}  // namespace

TEST_CASE("a token of org acme reads acme's topics and no other org's, over WebSocket, SSE and long-polling") {
  livecast_test::OnePortServer server(tenant_settings(org_verifier()));
  const std::string acme = token_for("acme", std::chrono::seconds(300));

  WsClient ws(server.port(), WsOptions{"/ws", {}, {"livecast.v1", "livecast.bearer." + acme}});
  REQUIRE(ws.wait_open());
  CHECK(subscribed(ws, "org:acme:kpi"));
  CHECK_FALSE(subscribed(ws, "org:globex:kpi"));

  for (const std::string& topic : {std::string("org:acme:kpi"), std::string("org:globex:kpi")}) {
    CAPTURE(topic);
    const std::string expected = topic == "org:acme:kpi" ? "ok" : "forbidden";
    livecast_test::HttpClient sse(server.port());
    sse.get("/sse?topics=" + topic + "&token=" + acme);
    CHECK(sse_reply_code(sse) == expected);

    livecast_test::HttpClient poll(server.port());
    poll.get("/poll?timeout=1000&topics=" + topic, "Authorization: Bearer " + acme + "\r\n");
    auto r = poll.response();
    REQUIRE(r);
    REQUIRE(r->status == 200);
    rapidjson::Document body;
    body.Parse(r->body.c_str(), r->body.size());
    REQUIRE_FALSE(body.HasParseError());
    REQUIRE(body["messages"].Size() >= 1);
    const auto& first = body["messages"][0];
    CHECK(std::string(first.HasMember("error") ? first["error"]["code"].GetString() : "ok") == expected);
  }
  // A forged org never gets that far: the signature does not hold.
  std::string forged = token_for("globex", std::chrono::seconds(300));
  forged = forged.substr(0, forged.rfind('.')) + acme.substr(acme.rfind('.'));
  livecast_test::HttpClient refused(server.port());
  refused.get("/poll?topics=org:globex:kpi&token=" + forged);
  auto r = refused.response();
  REQUIRE(r);
  CHECK(r->status == 401);
}

TEST_CASE("over a WebSocket: refresh with a newer token extends the session; without it, 4011 at exp") {
  // No leeway: the session ends at the token's exp exactly.
  livecast_test::OnePortServer server(tenant_settings(org_verifier(std::chrono::seconds(0))));
  const std::string short_lived = token_for("acme", std::chrono::seconds(2));

  WsClient refreshed(server.port(), WsOptions{"/ws", {}, {"livecast.v1", "livecast.bearer." + short_lived}});
  WsClient left_alone(server.port(), WsOptions{"/ws", {}, {"livecast.v1", "livecast.bearer." + short_lived}});
  REQUIRE(refreshed.wait_open());
  REQUIRE(left_alone.wait_open());
  refreshed.send(R"({"op":"refresh","id":5,"token":")" + token_for("acme", std::chrono::seconds(300)) + R"("})");
  auto ok = refreshed.next_json();
  REQUIRE(ok);
  REQUIRE(ok->HasMember("ok"));
  CHECK((*ok)["ok"]["expires_at"].GetInt64() > 0);
  refreshed.send(R"({"op":"refresh","id":6,"token":")" + token_for("globex", std::chrono::seconds(300)) + R"("})");
  auto other = refreshed.next_json();
  REQUIRE(other);
  REQUIRE(other->HasMember("error"));
  CHECK(std::string((*other)["error"]["code"].GetString()) == "unauthorized");

  REQUIRE(left_alone.wait_ended());
  CHECK(left_alone.close_code() == static_cast<int>(CloseCode::token_expired));
  // The refreshed one outlived the old exp.
  CHECK(subscribed(refreshed, "org:acme:kpi"));
}
