// Broker::close_sessions over a real WebSocket on loopback: a revoked
// principal's clients see the close code the host chose; another
// principal's client stays connected. (Which shard a connection lands on is
// the kernel's choice here; tests/core/session_control.cpp places sessions
// on every shard.)
#include "transport_server.hpp"
#include "ws_test_client.hpp"

#include <livecast/broker.hpp>
#include <livecast/websocket_transport.hpp>

#include <doctest/doctest.h>

#include <future>
#include <memory>
#include <string>
#include <vector>

using namespace livecast;
using livecast_test::WsClient;

namespace {

// The token is the principal's id.
BrokerSettings token_is_id() {
  BrokerSettings s = livecast_test::with_threads(2);
  s.authenticator = [](const HandshakeRequest& r) {
    Principal p;
    p.id = r.token();
    return AuthResult::accept(std::move(p));
  };
  return s;
}

// Opens a client and waits until its session answers a ping.
std::unique_ptr<WsClient> connect(std::uint16_t port, const std::string& token) {
  auto c = std::make_unique<WsClient>(port, livecast_test::WsOptions{"/ws?token=" + token, {}, {}});
  REQUIRE(c->wait_open());
  c->send(R"({"op":"ping","id":1})");
  auto pong = c->next();
  REQUIRE(pong);
  CHECK(pong->find(R"("id":1)") != std::string::npos);
  return c;
}

}  // namespace

TEST_CASE("close_sessions reaches real WebSocket clients with the host's close code") {
  livecast_test::TransportServer<WebSocketTransport, WebSocketSettings> server(token_is_id());
  std::vector<std::unique_ptr<WsClient>> alice;
  for (int i = 0; i < 4; ++i) alice.push_back(connect(server.port(), "alice"));
  auto carol = connect(server.port(), "carol");

  std::promise<SessionList> listed;
  server.broker.sessions("alice", [&](SessionList l) { listed.set_value(std::move(l)); });
  auto list = listed.get_future();
  REQUIRE(list.wait_for(std::chrono::seconds(5)) == std::future_status::ready);
  const SessionList sessions = list.get();
  CHECK(sessions.total == 4);
  for (const SessionInfo& s : sessions.sessions) CHECK(s.principal_id == "alice");

  std::promise<std::size_t> closed;
  server.broker.close_sessions("alice", CloseCode::unauthorized, "token revoked",
                               [&](std::size_t n) { closed.set_value(n); });
  auto n = closed.get_future();
  REQUIRE(n.wait_for(std::chrono::seconds(5)) == std::future_status::ready);
  CHECK(n.get() == 4);
  for (auto& c : alice) {
    REQUIRE(c->wait_ended());
    CHECK(c->close_code() == static_cast<int>(CloseCode::unauthorized));
  }
  CHECK(livecast_test::eventually([&] { return server.broker.session_count() == 1; }));
  carol->send(R"({"op":"ping","id":2})");
  auto pong = carol->next();
  REQUIRE(pong);
  CHECK(pong->find(R"("id":2)") != std::string::npos);
  CHECK_FALSE(carol->ended());
}
