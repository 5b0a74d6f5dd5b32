// Sessions end when their principal's token does (Principal::expires_at),
// with CloseCode::token_expired, unless the client refreshes with a newer
// token for the same principal. A broker with its own thread; every wait is
// for a close or a message, bounded.
#include "memory_connection.hpp"
#include "received_messages.hpp"

#include <livecast/broker.hpp>

#include <doctest/doctest.h>

#include <chrono>
#include <string>

using namespace livecast;
using namespace std::chrono_literals;
using livecast_test::has;
using livecast_test::MemoryConnection;

namespace {

using Clock = std::chrono::system_clock;

// Tokens of the form "<id>:<ms from now>", or "<id>:<ms>:<role>".
Authenticator test_tokens() {
  return [](const HandshakeRequest& r) {
    const std::string token = r.token();
    const auto colon = token.find(':');
    if (colon == std::string::npos) return AuthResult::refuse("malformed token");
    Principal p;
    p.id = token.substr(0, colon);
    const auto second = token.find(':', colon + 1);
    p.expires_at = Clock::now() + std::chrono::milliseconds(std::stoll(token.substr(colon + 1, second - colon - 1)));
    if (second != std::string::npos) p.roles.push_back(token.substr(second + 1));
    return AuthResult::accept(std::move(p));
  };
}

Principal expiring(std::string id, std::chrono::milliseconds in) {
  Principal p;
  p.id = std::move(id);
  p.expires_at = Clock::now() + in;
  return p;
}

struct Fixture {
  Fixture() : broker(settings()) { broker.start(); }
  static BrokerSettings settings() {
    BrokerSettings s;
    s.threads = 1;
    s.authenticator = test_tokens();
    return s;
  }
  std::unique_ptr<MemoryConnection> connect(Principal p) {
    std::unique_ptr<MemoryConnection> c;
    broker.session_host().execute_on_shard(0, [&] { c = std::make_unique<MemoryConnection>(broker, 0, std::move(p)); });
    return c;
  }
  Broker broker;
};

}  // namespace

TEST_CASE("a session is closed with token_expired when its principal expires; one without expiry stays") {
  Fixture f;
  auto forever = f.connect(Principal{"bob", {}, {}});
  auto soon = f.connect(expiring("alice", 150ms));
  auto already = f.connect(expiring("carol", -1s));  // a host's authenticator may hand out a stale one
  CHECK(already->wait_closed() == CloseCode::token_expired);
  CHECK(soon->wait_closed() == CloseCode::token_expired);
  CHECK_FALSE(forever->close_code());
  forever->send(R"({"op":"ping","id":1})");
  CHECK(forever->wait_for_count(1));
}

TEST_CASE("refresh with a newer token for the same principal moves the end; the reply says until when") {
  Fixture f;
  auto refreshed = f.connect(expiring("alice", 300ms));
  auto witness = f.connect(expiring("alice", 300ms));
  refreshed->send(R"({"op":"refresh","id":7,"token":"alice:60000"})");
  REQUIRE(refreshed->wait_for_count(1));
  const std::string reply = refreshed->received()[0];
  CHECK(has(reply, R"("id":7,"ok":{"expires_at":)"));
  const auto until = Clock::time_point(std::chrono::milliseconds(livecast_test::number_after(reply, "expires_at")));
  CHECK(until > Clock::now() + 50s);
  CHECK(refreshed->session().principal().expires_at.has_value());
  // The witness's end passes; the refreshed session's old end with it.
  CHECK(witness->wait_closed() == CloseCode::token_expired);
  refreshed->send(R"({"op":"ping","id":8})");
  CHECK(refreshed->wait_for_count(2));
  CHECK_FALSE(refreshed->close_code());
}

TEST_CASE("refresh is refused for a bad token or another principal, and the session still ends on time") {
  Fixture f;
  auto c = f.connect(expiring("alice", 400ms));
  c->send(R"({"op":"refresh","id":1,"token":"garbage"})");
  c->send(R"({"op":"refresh","id":2,"token":"mallory:60000"})");
  c->send(R"({"op":"refresh","id":3,"token":"alice:60000:admin"})");  // alice, but with more roles
  c->send(R"({"op":"refresh","id":4})");
  REQUIRE(c->wait_for_count(4));
  const auto r = c->received();
  CHECK(has(r[0], R"("id":1,"error":{"code":"unauthorized","message":"malformed token")"));
  CHECK(has(r[1], R"("id":2,"error":{"code":"unauthorized")"));
  CHECK(has(r[1], "another principal"));
  CHECK(has(r[2], R"("id":3,"error":{"code":"unauthorized")"));
  CHECK(has(r[3], R"("id":4,"error":{"code":"bad_request")"));
  CHECK(c->wait_closed() == CloseCode::token_expired);
  CHECK(f.broker.metrics().errors(Errc::unauthorized) == 3);
}
