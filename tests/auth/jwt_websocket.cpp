// jwt_authenticator end to end: a Broker and a WebSocketTransport on
// loopback, and real WebSocket clients carrying the token each way a client
// can (Authorization header, the livecast.bearer subprotocol entry, the query).
#include "jwt_signer.hpp"
#include "transport_server.hpp"
#include "ws_test_client.hpp"

#include <livecast/broker.hpp>
#include <livecast/jwt.hpp>
#include <livecast/websocket_transport.hpp>

#include <doctest/doctest.h>

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
