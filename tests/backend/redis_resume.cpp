// Socket.IO's connection state recovery across instances sharing a real
// redis-server: a session of instance A whose connection dropped is resumed
// on instance B (its record kept in Redis by A, taken by B), with what was
// published meanwhile on either, once, in order. Brokers on threads of their
// own, the Redis backend on its own: a ThreadSanitizer test too. Skipped,
// not failed, without /usr/bin/redis-server.
#include "redis_fixture.hpp"

#include <livecast/socketio.hpp>

using namespace livecast;
using namespace livecast_test;
using namespace std::chrono_literals;

namespace {

BrokerSettings recovering_settings() {
  BrokerSettings b;
  SocketIoSettings socketio;
  socketio.connection_state_recovery = true;
  b.protocols = {make_livecast_v1_protocol(), make_socketio_protocol(socketio)};
  b.authenticator = [](const HandshakeRequest& r) {
    Principal p;
    p.id = std::string(r.token());
    return p.id.empty() ? AuthResult::refuse("no token") : AuthResult::accept(p);
  };
  b.server_joins = [](const Principal& p) { return std::vector<std::string>{"room:" + p.id}; };
  return b;
}

// A Socket.IO client's session on `instance` (the protocol's index is 1).
std::unique_ptr<MemoryConnection> socketio_client(Instance& instance) {
  MemoryConnection::InBand in_band{1, {}, {}};
  in_band.request.transport = "test";
  std::unique_ptr<MemoryConnection> c;
  instance.broker->session_host().execute_on_shard(
      0, [&] { c = std::make_unique<MemoryConnection>(*instance.broker, 0, std::move(in_band)); });
  return c;
}

// The value of the JSON string member `name` in `message` ("" if none).
std::string member(const std::string& message, const std::string& name) {
  const std::string key = "\"" + name + "\":\"";
  const std::size_t at = message.find(key);
  if (at == std::string::npos) return {};
  const std::size_t from = at + key.size();
  return message.substr(from, message.find('"', from) - from);
}

// The CONNECT answer (40{...}) among `received`.
std::string connect_answer(const std::vector<std::string>& received) {
  for (const std::string& m : received)
    if (m.rfind("40{", 0) == 0) return m;
  return {};
}

// The events on `room` among `received`, without their offsets; and the
// offset of the one carrying `data`.
std::vector<std::string> events(const std::vector<std::string>& received, const std::string& room) {
  std::vector<std::string> out;
  const std::string head = "42[\"" + room + "\",";
  for (const std::string& m : received)
    if (m.rfind(head, 0) == 0) out.push_back(m.substr(head.size(), m.rfind(",\"") - head.size()));
  return out;
}
std::string offset_of(const std::vector<std::string>& received, const std::string& data) {
  for (const std::string& m : received)
    if (m.find("," + data + ",\"") != std::string::npos) return m.substr(m.rfind(",\"") + 2, m.size() - m.rfind(",\"") - 4);
  return {};
}

}  // namespace

TEST_CASE("a session of instance A whose connection dropped resumes on instance B, with what it missed") {
  SKIP_WITHOUT_REDIS_SERVER();
  RedisServer redis;
  auto a = std::make_unique<Instance>(Instance::settings(redis.url()), true, recovering_settings());
  Instance b(Instance::settings(redis.url()), true, recovering_settings());

  auto first = socketio_client(*a);
  first->send(R"(40{"token":"alice"})");
  REQUIRE(first->wait_until([](const auto& r) { return !connect_answer(r).empty(); }, wait_limit));
  const std::string answer = connect_answer(first->received());
  const std::string sid = member(answer, "sid"), pid = member(answer, "pid");
  REQUIRE_FALSE(pid.empty());

  // Publications reach the joined room once its Redis subscription is in place.
  REQUIRE(eventually([&] {
    a->publish("room:alice", R"({"n":0})");
    return !events(first->received(), "room:alice").empty();
  }));
  REQUIRE(a->publish("room:alice", R"({"n":1})").offset > 0);
  REQUIRE(a->publish("room:alice", R"({"n":2})").offset > 0);
  REQUIRE(first->wait_until([](const auto& r) { return events(r, "room:alice").back() == R"({"n":2})"; }, wait_limit));
  // The client saw {"n":1} last; {"n":2} was lost with the connection.
  const std::string last = offset_of(first->received(), R"({"n":1})");
  REQUIRE_FALSE(last.empty());
  first->disconnect();
  // A stops (its records reach Redis before it does); B publishes meanwhile.
  first.reset();
  a.reset();
  REQUIRE(b.publish("room:alice", R"({"n":3})").offset > 0);

  auto back = socketio_client(b);
  back->send(R"(40{"token":"alice","pid":")" + pid + R"(","offset":")" + last + "\"}");
  REQUIRE(back->wait_until([](const auto& r) { return events(r, "room:alice").size() >= 2; }, wait_limit));
  const std::string resumed = connect_answer(back->received());
  CHECK(member(resumed, "pid") == pid);
  CHECK(member(resumed, "sid") == sid);
  // The greeting, the answer, then what was missed.
  REQUIRE(back->received().size() >= 3);
  CHECK(back->received()[0].rfind("0{", 0) == 0);
  CHECK(back->received()[1] == resumed);
  CHECK(events(back->received(), "room:alice") == std::vector<std::string>{R"({"n":2})", R"({"n":3})"});
  CHECK(b.broker->metrics().recoveries_recovered == 1);

  // Live on B from there, once.
  REQUIRE(b.publish("room:alice", R"({"n":4})").offset > 0);
  REQUIRE(back->wait_until([](const auto& r) { return events(r, "room:alice").size() >= 3; }, wait_limit));
  CHECK(events(back->received(), "room:alice") ==
        std::vector<std::string>{R"({"n":2})", R"({"n":3})", R"({"n":4})"});

  // The record was taken: the same id again starts over.
  back->send("41");
  auto third = socketio_client(b);
  third->send(R"(40{"token":"alice","pid":")" + pid + R"(","offset":")" + last + "\"}");
  REQUIRE(third->wait_until([](const auto& r) { return !connect_answer(r).empty(); }, wait_limit));
  CHECK(member(connect_answer(third->received()), "pid") != pid);
}
