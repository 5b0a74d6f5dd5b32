// Protocols that connect in band (src/core/in_band_connect.cpp): the session
// opens unauthenticated and greeted, its connect request is judged by the
// Authenticator with the handshake plus the request's credentials, nothing
// else runs before it, and a session that never connects is closed; client
// events reach on_client_event and its answer is the acknowledgement. Driven
// with a line-oriented protocol of the test's own, so that what is checked
// is the broker, not Socket.IO's format.
#include "memory_connection.hpp"

#include <livecast/broker.hpp>
#include <livecast/protocol.hpp>

#include <ostream>

#include <doctest/doctest.h>

#include <asio/io_context.hpp>

#include <algorithm>
#include <chrono>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

using namespace livecast;
using namespace std::chrono_literals;
using livecast_test::MemoryConnection;

namespace {

// "connect <token>", "event[#<id>] <name> <json array>", "sub[#<id>] <topic>", "bye", "beat".
class InBandLines final : public Protocol {
 public:
  std::string_view name() const noexcept override { return "inband.test"; }
  bool connects_in_band() const noexcept override { return true; }
  DecodeResult decode(std::string_view m) const override {
    ClientRequest r;
    auto word = [&m]() {
      const std::size_t sp = m.find(' ');
      std::string w(m.substr(0, sp));
      m = sp == std::string_view::npos ? std::string_view() : m.substr(sp + 1);
      return w;
    };
    std::string op = word();
    if (const std::size_t hash = op.find('#'); hash != std::string::npos) {
      r.id = std::stoll(op.substr(hash + 1));
      op.resize(hash);
    }
    if (op == "connect") {
      r.op = ClientRequest::Op::connect;
      r.token = word();
      r.auth = "{\"token\":\"" + r.token + "\"}";
    } else if (op == "event") {
      r.op = ClientRequest::Op::event;
      r.event = word();
      r.data = std::string(m);
    } else if (op == "sub") {
      r.op = ClientRequest::Op::subscribe;
      r.topic = word();
    } else if (op == "bye") {
      r.op = ClientRequest::Op::close;
    } else if (op == "beat") {
      r.op = ClientRequest::Op::heartbeat;
    } else {
      return DecodeResult::fail(Errc::unknown_op, "unknown line " + op);
    }
    return DecodeResult::ok(std::move(r));
  }
  MessageBatchFraming batch_framing(std::optional<std::string_view>) const override {
    return {"text/plain", "", "\n", ""};
  }

 protected:
  std::string encode_publication_text(const Publication& p) const override { return "pub " + p.topic + " " + *p.data; }
  std::string encode_subscribed_text(std::optional<std::int64_t> id, const std::string& topic, const StreamPosition&,
                                     bool) const override {
    return id ? "subscribed " + std::to_string(*id) + " " + topic : std::string();  // joins: nothing said
  }
  std::string encode_unsubscribed_text(std::int64_t id, const std::string&) const override {
    return "unsubscribed " + std::to_string(id);
  }
  std::string encode_published_text(std::int64_t id, const std::string&, std::uint64_t) const override {
    return "published " + std::to_string(id);
  }
  std::string encode_pong_text(std::int64_t id) const override { return "pong " + std::to_string(id); }
  std::string encode_refreshed_text(std::int64_t id,
                                    std::optional<std::chrono::system_clock::time_point>) const override {
    return "refreshed " + std::to_string(id);
  }
  std::string encode_error_text(std::optional<std::int64_t> id, Errc code, std::string_view message) const override {
    return "error " + (id ? std::to_string(*id) : std::string("-")) + " " + to_wire_name(code) + " " +
           std::string(message);
  }
  std::string encode_ack_text(std::int64_t id, std::string_view args) const override {
    return "ack " + std::to_string(id) + " " + std::string(args);
  }
  std::string encode_greeting_text(const Greeting& g) const override {
    return "hello " + g.session_id + " " + std::to_string(g.heartbeat_interval.count());
  }
  std::string encode_connected_text(std::string_view sid, std::string_view) const override {
    return "connected " + std::string(sid);
  }
  std::string encode_connect_refused_text(std::string_view reason) const override {
    return "refused " + std::string(reason);
  }
  std::string encode_heartbeat_text() const override { return "beat"; }
  std::string encode_farewell_text(CloseCode code, std::string_view) const override {
    return code == CloseCode::normal ? "farewell" : std::string();
  }
};

void pump(asio::io_context& io) {
  io.restart();
  io.poll();
}

BrokerSettings in_band_settings() {
  BrokerSettings s;
  s.protocols = {make_livecast_v1_protocol(), std::make_shared<InBandLines>()};
  s.authenticator = [](const HandshakeRequest& r) {
    // The handshake's own parts reach the Authenticator beside the in-band token.
    if (r.header("x-tenant") != "acme") return AuthResult::refuse("wrong tenant");
    if (r.token() == "good") {
      Principal p;
      p.id = "alice";
      return AuthResult::accept(p);
    }
    if (r.token() == "throw") throw std::runtime_error("authenticator failed");
    return AuthResult::refuse("invalid token");
  };
  s.server_joins = [](const Principal& p) { return std::vector<std::string>{"room:" + p.id}; };
  return s;
}

MemoryConnection::InBand in_band(std::string tenant = "acme") {
  MemoryConnection::InBand b{1, {}, {}};
  b.request.transport = "test";
  b.request.headers.emplace("x-tenant", std::move(tenant));
  b.greeting.session_id = "sid-1";
  b.greeting.heartbeat_interval = 25000ms;
  return b;
}

bool has(const std::vector<std::string>& v, const std::string& s) { return std::find(v.begin(), v.end(), s) != v.end(); }

}  // namespace

TEST_CASE("a connect with good credentials opens the session: greeting, connected, server joins, then requests") {
  asio::io_context io;
  std::vector<std::string> opened;
  BrokerSettings s = in_band_settings();
  s.hooks.on_open = [&](const Session& session) { opened.push_back(session.principal().id); };
  Broker broker(io, s);
  MemoryConnection c(broker, 0, in_band());
  pump(io);
  REQUIRE(c.received().size() == 1);
  CHECK(c.received()[0] == "hello sid-1 25000");
  CHECK(opened.empty());  // nobody yet: the hooks hear of it once connected
  CHECK(broker.session_count() == 1);

  c.send("connect good");
  pump(io);
  REQUIRE(c.received().size() >= 2);
  CHECK(c.received()[1].rfind("connected ", 0) == 0);
  CHECK(c.session().principal().id == "alice");
  CHECK(opened == std::vector<std::string>{"alice"});
  CHECK(c.session().subscribed("room:alice"));  // the server's join, which said nothing

  broker.publish("room:alice", R"({"n":1})");
  pump(io);
  CHECK(c.wait_until([](auto& r) { return has(r, R"(pub room:alice {"n":1})"); }, 0ms));

  c.send("connect good");  // once is enough
  pump(io);
  CHECK(c.wait_until([](auto& r) { return has(r, "error - bad_request already connected"); }, 0ms));
  CHECK_FALSE(c.close_code().has_value());
}

TEST_CASE("a refused connect is told why and closed; nothing else runs before a connect") {
  asio::io_context io;
  Broker broker(io, in_band_settings());

  SUBCASE("a bad token") {
    MemoryConnection c(broker, 0, in_band());
    c.send("connect bad");
    pump(io);
    CHECK(c.wait_until([](auto& r) { return has(r, "refused invalid token"); }, 0ms));
    CHECK(c.close_code() == CloseCode::unauthorized);
  }
  SUBCASE("the handshake's headers count too") {
    MemoryConnection c(broker, 0, in_band("other"));
    c.send("connect good");
    pump(io);
    CHECK(c.wait_until([](auto& r) { return has(r, "refused wrong tenant"); }, 0ms));
    CHECK(c.close_code() == CloseCode::unauthorized);
  }
  SUBCASE("an Authenticator that throws: a server fault, counted") {
    MemoryConnection c(broker, 0, in_band());
    c.send("connect throw");
    pump(io);
    CHECK(c.close_code() == CloseCode::internal_error);
    CHECK(broker.metrics().callback_errors == 1);
  }
  SUBCASE("a subscribe before connecting") {
    MemoryConnection c(broker, 0, in_band());
    c.send("sub#1 room:alice");
    pump(io);
    CHECK(c.wait_until([](auto& r) { return has(r, "refused connect first"); }, 0ms));
    CHECK(c.close_code() == CloseCode::policy_violation);
    CHECK_FALSE(c.session().subscribed("room:alice"));
  }
  SUBCASE("a message the protocol cannot read, before connecting") {
    MemoryConnection c(broker, 0, in_band());
    c.send("garbage");
    pump(io);
    CHECK(c.wait_until([](auto& r) { return has(r, "refused unknown line garbage"); }, 0ms));
    CHECK(c.close_code() == CloseCode::protocol_error);
  }
  SUBCASE("heartbeats are fine before connecting") {
    MemoryConnection c(broker, 0, in_band());
    c.send("beat");
    c.send("connect good");
    pump(io);
    CHECK(c.session().principal().id == "alice");
    CHECK_FALSE(c.close_code().has_value());
  }
}

TEST_CASE("a session that never connects is closed after connect_timeout, and never reaches the hooks") {
  asio::io_context io;
  BrokerSettings s = in_band_settings();
  s.session.connect_timeout = 50ms;
  int hooks = 0;
  s.hooks.on_open = [&](const Session&) { ++hooks; };
  s.hooks.on_close = [&](const Session&, std::optional<CloseCode>) { ++hooks; };
  Broker broker(io, s);
  MemoryConnection c(broker, 0, in_band());
  // The deadline is a timer on the shard's loop: run it until the session closes.
  const auto give_up = std::chrono::steady_clock::now() + 5s;
  while (!c.close_code() && std::chrono::steady_clock::now() < give_up) {
    io.restart();
    io.run_one_for(100ms);
  }
  CHECK(c.close_code() == CloseCode::unauthorized);
  pump(io);
  CHECK(c.wait_until([](auto& r) { return has(r, "refused no connect request in time"); }, 0ms));
  c.disconnect();
  pump(io);
  CHECK(hooks == 0);
  CHECK(broker.session_count() == 0);
}

TEST_CASE("client events: the handler's answer is the ack; refusals, throws and bad answers are errors") {
  asio::io_context io;
  BrokerSettings s = in_band_settings();
  std::vector<std::string> seen;
  s.on_client_event = [&](const ClientEvent& e) {
    seen.push_back(e.session.principal().id + " " + std::string(e.name) + " " + std::string(e.args) +
                   (e.wants_ack ? " ack" : ""));
    if (e.name == "echo") return ClientEventReply::acknowledge(std::string(e.args));
    if (e.name == "nope") return ClientEventReply::refuse(Errc::forbidden, "not you");
    if (e.name == "bad") return ClientEventReply::acknowledge("{not an array");
    throw std::runtime_error("handler failed");
  };
  Broker broker(io, s);
  MemoryConnection c(broker, 0, in_band());
  c.send("connect good");
  c.send(R"(event#7 echo [1,"two",{"three":3}])");
  c.send(R"(event echo [1])");  // no ack asked: nothing sent
  c.send(R"(event#8 nope [])");
  c.send(R"(event#9 bad [])");
  c.send(R"(event#10 boom [])");
  pump(io);
  CHECK(seen == std::vector<std::string>{R"(alice echo [1,"two",{"three":3}] ack)", "alice echo [1]", "alice nope [] ack",
                                         "alice bad [] ack", "alice boom [] ack"});
  const auto r = c.received();
  CHECK(has(r, R"(ack 7 [1,"two",{"three":3}])"));
  CHECK(std::count_if(r.begin(), r.end(), [](const std::string& m) { return m.rfind("ack ", 0) == 0; }) == 1);
  CHECK(has(r, "error 8 forbidden not you"));
  CHECK(has(r, "error 9 internal_error the server's answer was not valid"));
  CHECK(has(r, "error 10 internal_error the server failed on this event"));
  CHECK(broker.metrics().callback_errors == 1);
  CHECK_FALSE(c.close_code().has_value());  // the session goes on
}

TEST_CASE("without a handler every event is refused; a client's goodbye closes; the host's close says farewell") {
  asio::io_context io;
  Broker broker(io, in_band_settings());
  MemoryConnection c(broker, 0, in_band());
  c.send("connect good");
  c.send("event#1 anything []");
  pump(io);
  CHECK(c.wait_until([](auto& r) { return has(r, "error 1 unknown_op no handler for this event"); }, 0ms));

  SUBCASE("the client says bye") {
    c.send("bye");
    pump(io);
    CHECK(c.close_code() == CloseCode::normal);
  }
  SUBCASE("the host closes it: the protocol's farewell goes first") {
    broker.close_sessions("alice", CloseCode::normal, "revoked", [](std::size_t) {});
    pump(io);
    CHECK(c.close_code() == CloseCode::normal);
    CHECK(c.wait_until([](auto& r) { return !r.empty() && r.back() == "farewell"; }, 0ms));
  }
}

TEST_CASE("heartbeat(): the protocol's heartbeat is queued; livecast.v1 has none") {
  asio::io_context io;
  Broker broker(io, in_band_settings());
  MemoryConnection in_band_client(broker, 0, in_band());
  MemoryConnection v1_client(broker, 0, Principal{});
  CHECK(broker.session_host().heartbeat(in_band_client.session()));
  CHECK_FALSE(broker.session_host().heartbeat(v1_client.session()));
  pump(io);
  CHECK(in_band_client.wait_until([](auto& r) { return !r.empty() && r.back() == "beat"; }, 0ms));
}

TEST_CASE("the name a connected session is given differs between brokers (two processes behind one balancer)") {
  asio::io_context io;
  Broker first(io, in_band_settings());
  Broker second(io, in_band_settings());
  MemoryConnection a(first, 0, in_band());
  MemoryConnection b(second, 0, in_band());
  a.send("connect good");
  b.send("connect good");
  pump(io);
  REQUIRE(a.received().size() >= 2);
  REQUIRE(b.received().size() >= 2);
  // Both are their broker's first session, so only the instance tells them apart.
  CHECK(a.received()[1].rfind("connected ", 0) == 0);
  CHECK(a.received()[1] != b.received()[1]);
}

TEST_CASE("a drain closes what connects during it, and does not wait for what never connects") {
  asio::io_context io;
  BrokerSettings s = in_band_settings();
  s.session.connect_timeout = 60s;  // the drain must not lean on the connect deadline
  Broker broker(io, s);
  MemoryConnection connects(broker, 0, in_band());
  MemoryConnection silent(broker, 0, in_band());
  pump(io);
  bool drained = false;
  DrainSettings d;
  d.duration = 50ms;
  broker.drain(d, [&] { drained = true; });
  connects.send("connect good");  // opened before the drain, connected during it
  const auto give_up = std::chrono::steady_clock::now() + 5s;
  while (!connects.close_code() && std::chrono::steady_clock::now() < give_up) {
    io.restart();
    io.run_one_for(50ms);
  }
  CHECK(connects.close_code() == CloseCode::reconnect_after);
  connects.disconnect();
  pump(io);
  CHECK(drained);  // the silent one is not waited for
  CHECK_FALSE(silent.close_code().has_value());
}
