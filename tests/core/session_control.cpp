// Host control of sessions on the in-memory transport: counting and listing
// a principal's sessions over every shard, closing them with a code and a
// reason, the SessionHooks and their order, a hook that throws, and the
// calls after stop(). Every wait is for an answer or a close, bounded.
#include "in_process_wrapper.hpp"
#include "memory_connection.hpp"
#include "received_messages.hpp"

#include <livecast/broker.hpp>

#include <ostream>  // doctest prints std::error_code

#include <doctest/doctest.h>

#include <asio/io_context.hpp>

#include <algorithm>
#include <chrono>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

using namespace livecast;
using namespace std::chrono_literals;
using livecast_test::has;
using livecast_test::MemoryConnection;

namespace {

Principal user(std::string id) {
  Principal p;
  p.id = std::move(id);
  return p;
}

// A callback's one answer, awaited (bounded) from the test's thread.
template <class T>
struct Answer {
  std::shared_ptr<std::promise<T>> promise = std::make_shared<std::promise<T>>();
  std::future<T> future = promise->get_future();
  std::function<void(T)> callback() {
    return [p = promise](T value) { p->set_value(std::move(value)); };
  }
  bool ready() { return future.wait_for(0s) == std::future_status::ready; }
  std::optional<T> get(std::chrono::milliseconds timeout = 5s) {
    if (future.wait_for(timeout) != std::future_status::ready) return std::nullopt;
    return future.get();
  }
};

// A broker with four shards of its own; each session opened on the shard named.
struct FourShards {
  explicit FourShards(BrokerSettings s = settings()) : broker(std::move(s)) { broker.start(); }
  static BrokerSettings settings() {
    BrokerSettings s;
    s.threads = 4;
    s.server_joins = [](const Principal& p) {
      return p.id.empty() ? std::vector<std::string>{} : std::vector<std::string>{"user:" + p.id};
    };
    return s;
  }
  MemoryConnection& connect(std::size_t shard, Principal p) {
    std::unique_ptr<MemoryConnection> c;
    broker.session_host().execute_on_shard(shard, [&] { c = std::make_unique<MemoryConnection>(broker, shard, std::move(p)); });
    clients.push_back(std::move(c));
    return *clients.back();
  }
  SessionList list(const std::string& principal, std::size_t max = 1000) {
    Answer<SessionList> answer;
    broker.sessions(principal, answer.callback(), max);
    std::optional<SessionList> list = answer.get();
    REQUIRE(list);
    return std::move(*list);
  }
  std::size_t close(const std::string& principal, CloseCode code, const std::string& reason) {
    Answer<std::size_t> answer;
    broker.close_sessions(principal, code, reason, answer.callback());
    std::optional<std::size_t> closed = answer.get();
    REQUIRE(closed);
    return *closed;
  }

  Broker broker;
  std::vector<std::unique_ptr<MemoryConnection>> clients;  // destroyed before the broker
};

// Runs the host io_context until nothing is ready.
void pump(asio::io_context& io) {
  io.restart();
  io.poll();
}

}  // namespace

TEST_CASE("session_count and sessions(principal) see every shard; the empty id names no one") {
  FourShards f;
  const auto before = std::chrono::system_clock::now();
  for (std::size_t shard = 0; shard < 4; ++shard) f.connect(shard, user("alice"));
  f.connect(0, user("alice"));
  f.connect(1, user("bob"));
  f.connect(3, user("bob"));
  f.connect(2, Principal{});  // anonymous
  const auto after = std::chrono::system_clock::now();
  CHECK(f.broker.session_count() == 8);

  SessionList alice = f.list("alice");
  CHECK(alice.total == 5);
  REQUIRE(alice.sessions.size() == 5);
  std::set<std::size_t> shards;
  for (std::size_t i = 0; i < alice.sessions.size(); ++i) {
    const SessionInfo& s = alice.sessions[i];
    if (i > 0) CHECK(alice.sessions[i - 1].id < s.id);
    CHECK(s.principal_id == "alice");
    CHECK(s.protocol == "livecast.v1");
    CHECK(s.subscriptions == std::vector<std::string>{"user:alice"});
    CHECK(s.opened_at >= before);
    CHECK(s.opened_at <= after);
    CHECK_FALSE(s.closing);
    shards.insert(s.shard);
  }
  CHECK(shards == std::set<std::size_t>{0, 1, 2, 3});
  // The ids are the sessions' own.
  CHECK(alice.sessions[0].id == f.clients[0]->session().id());

  SUBCASE("a listing is bounded; total still counts every session") {
    SessionList two = f.list("alice", 2);
    CHECK(two.total == 5);
    REQUIRE(two.sessions.size() == 2);
    CHECK(two.sessions[0].id == alice.sessions[0].id);
    CHECK(two.sessions[1].id == alice.sessions[1].id);
    SessionList none = f.list("alice", 0);
    CHECK(none.total == 5);
    CHECK(none.sessions.empty());
  }
  SUBCASE("the anonymous and the unknown have no sessions to list") {
    CHECK(f.list("").total == 0);
    CHECK(f.list("").sessions.empty());
    CHECK(f.list("nobody").total == 0);
    CHECK(f.list("bob").total == 2);
  }
  SUBCASE("a closed session leaves the count and the listing") {
    f.clients[2]->disconnect();  // alice on shard 2
    CHECK(f.broker.session_count() == 7);
    SessionList left = f.list("alice");
    CHECK(left.total == 4);
    for (const SessionInfo& s : left.sessions) CHECK(s.shard != 2);
  }
}

TEST_CASE("close_sessions closes a principal's sessions on every shard with the code and reason, and no one else's") {
  FourShards f;
  for (std::size_t shard = 0; shard < 4; ++shard) f.connect(shard, user("alice"));
  f.connect(2, user("alice"));
  MemoryConnection& bob = f.connect(1, user("bob"));
  MemoryConnection& anonymous = f.connect(3, Principal{});

  CHECK(f.close("alice", CloseCode::unauthorized, "token revoked") == 5);
  for (std::size_t i = 0; i < 5; ++i) {
    CHECK(f.clients[i]->wait_closed() == CloseCode::unauthorized);
    CHECK(f.clients[i]->close_reason() == "token revoked");
  }
  CHECK_FALSE(bob.close_code());
  CHECK_FALSE(anonymous.close_code());
  // Closing until the transport reports the close: listed as such, not closed twice.
  SessionList closing = f.list("alice");
  CHECK(closing.total == 5);
  for (const SessionInfo& s : closing.sessions) CHECK(s.closing);
  CHECK(f.close("alice", CloseCode::unauthorized, "again") == 0);
  CHECK(f.clients[0]->close_reason() == "token revoked");
  // The empty id closes nothing, however many anonymous sessions there are.
  CHECK(f.close("", CloseCode::unauthorized, "nobody") == 0);
  CHECK_FALSE(anonymous.close_code());
  // Bob's session still works.
  bob.send(R"({"op":"ping","id":1})");
  CHECK(bob.wait_until([](const std::vector<std::string>& r) {
    return std::any_of(r.begin(), r.end(), [](const std::string& m) { return has(m, R"("id":1)"); });
  }));

  for (std::size_t i = 0; i < 5; ++i) f.clients[i]->disconnect();
  CHECK(f.broker.session_count() == 2);
  CHECK(f.list("alice").total == 0);
  // Without a callback too.
  f.broker.close_sessions("bob", CloseCode::policy_violation, "removed");
  CHECK(bob.wait_closed() == CloseCode::policy_violation);
}

TEST_CASE("hooks: open, subscribe (server joins first), unsubscribe, close, in order, with the right arguments") {
  asio::io_context io;
  std::vector<std::string> events;
  std::uint64_t seen_id = 0;
  BrokerSettings s;
  s.server_joins = [](const Principal&) { return std::vector<std::string>{"joined"}; };
  s.authorizer = Authorizer().allow_subscribe("joined").allow_subscribe("t").allow_subscribe("u");
  s.hooks.on_open = [&](const Session& session) {
    seen_id = session.id();
    events.push_back("open " + session.principal().id + " subscriptions=" + std::to_string(session.subscriptions().size()));
  };
  s.hooks.on_subscribe = [&](const Session& session, const std::string& topic) {
    CHECK(session.id() == seen_id);
    events.push_back("subscribe " + topic);
  };
  s.hooks.on_unsubscribe = [&](const Session& session, const std::string& topic) {
    CHECK(session.id() == seen_id);
    events.push_back("unsubscribe " + topic);
  };
  s.hooks.on_close = [&](const Session& session, std::optional<CloseCode> code) {
    events.push_back("close " + session.principal().id + " " +
                     (code ? std::to_string(static_cast<int>(*code)) : std::string("client")));
  };
  Broker broker(io, s);

  SUBCASE("closed by the server: the code") {
    {
      MemoryConnection c(broker, 0, user("alice"));
      c.send(R"({"op":"subscribe","id":1,"topic":"t"})");
      c.send(R"({"op":"subscribe","id":2,"topic":"forbidden"})");  // refused: no hook
      c.send(R"({"op":"unsubscribe","id":3,"topic":"t"})");
      c.send(R"({"op":"subscribe","id":4,"topic":"u"})");
      pump(io);
      CHECK(c.received().size() >= 5);
      Answer<std::size_t> closed;
      broker.close_sessions("alice", CloseCode::unauthorized, "token revoked", closed.callback());
      pump(io);
      CHECK(closed.get(0ms) == std::size_t{1});
      CHECK(c.close_code() == CloseCode::unauthorized);
    }  // the transport reports the close
    CHECK(events == std::vector<std::string>{"open alice subscriptions=0", "subscribe joined", "subscribe t",
                                             "unsubscribe t", "subscribe u", "unsubscribe joined", "unsubscribe u",
                                             "close alice 4001"});
  }
  SUBCASE("ended by the client: no code") {
    {
      MemoryConnection c(broker, 0, user("bob"));
      pump(io);
    }
    CHECK(events == std::vector<std::string>{"open bob subscriptions=0", "subscribe joined", "unsubscribe joined",
                                             "close bob client"});
  }
  CHECK(broker.metrics().callback_errors == 0);
}

namespace {
// A backend that cannot read: every subscribe is undone after its read.
class FailingReadBackend final : public livecast_test::InProcessWrapper {
 public:
  void read(const std::string&, const std::optional<StreamPosition>&, std::size_t, ReadHandler done) override {
    ReadResult r;
    r.error = make_error_code(Errc::backend_unavailable);
    done(std::move(r));
  }
};
}  // namespace

TEST_CASE("hooks: a subscribe undone because the backend could not read is matched by one unsubscribe") {
  asio::io_context io;
  std::vector<std::string> events;
  BrokerSettings s;
  s.hooks.on_subscribe = [&](const Session&, const std::string& topic) { events.push_back("subscribe " + topic); };
  s.hooks.on_unsubscribe = [&](const Session&, const std::string& topic) { events.push_back("unsubscribe " + topic); };
  Broker broker(io, s, std::make_unique<FailingReadBackend>());
  {
    MemoryConnection c(broker, 0, user("alice"));
    c.send(R"({"op":"subscribe","id":1,"topic":"t"})");
    pump(io);
    REQUIRE(c.received().size() == 1);
    CHECK(has(c.received()[0], R"("code":"backend_unavailable")"));
    CHECK_FALSE(c.session().subscribed("t"));
  }
  CHECK(events == std::vector<std::string>{"subscribe t", "unsubscribe t"});
}

TEST_CASE("a hook that throws is counted and reported; the session goes on") {
  asio::io_context io;
  std::vector<std::string> reported;
  BrokerSettings s;
  s.hooks.on_open = [](const Session&) { throw std::runtime_error("open hook broke"); };
  s.hooks.on_subscribe = [](const Session&, const std::string&) { throw std::runtime_error("subscribe hook broke"); };
  s.hooks.on_close = [](const Session&, std::optional<CloseCode>) { throw 42; };
  s.on_error = [&](const std::string& what, std::error_code) { reported.push_back(what); };
  Broker broker(io, s);
  {
    MemoryConnection c(broker, 0, user("alice"));
    c.send(R"({"op":"subscribe","id":1,"topic":"t"})");
    pump(io);
    REQUIRE(c.received().size() >= 1);
    CHECK(has(c.received()[0], R"("id":1,"ok")"));
    CHECK(c.session().subscribed("t"));
    CHECK_FALSE(broker.publish("t", R"({"n":1})"));
    pump(io);
    REQUIRE(c.received().size() >= 2);
    CHECK(livecast_test::is_publication(c.received().back()));
    CHECK_FALSE(c.close_code());
    CHECK(broker.session_count() == 1);
  }
  CHECK(broker.session_count() == 0);  // a throwing on_close still lets the session go
  CHECK(broker.metrics().callback_errors == 3);
  REQUIRE(reported.size() == 3);
  CHECK(has(reported[0], "SessionHooks::on_open threw: open hook broke"));
  CHECK(has(reported[1], "SessionHooks::on_subscribe threw: subscribe hook broke"));
  CHECK(has(reported[2], "SessionHooks::on_close threw"));
}

TEST_CASE("after stop(), sessions and close_sessions still answer, with nothing") {
  SUBCASE("own threads, stopped") {
    FourShards f;
    f.connect(1, user("alice"));
    f.broker.stop();
    Answer<SessionList> list;
    f.broker.sessions("alice", list.callback());
    REQUIRE(list.ready());  // at once, on the caller's thread
    CHECK(list.future.get().total == 0);
    Answer<std::size_t> closed;
    f.broker.close_sessions("alice", CloseCode::unauthorized, "revoked", closed.callback());
    REQUIRE(closed.ready());
    CHECK(closed.future.get() == 0);
    CHECK_FALSE(f.clients[0]->close_code());
  }
  SUBCASE("own threads never started: stop() answers what was asked") {
    BrokerSettings s;
    s.threads = 2;
    Broker broker(s);
    Answer<SessionList> list;
    broker.sessions("alice", list.callback());
    CHECK_FALSE(list.ready());
    broker.stop();
    REQUIRE(list.ready());
    CHECK(list.future.get().sessions.empty());
  }
  SUBCASE("host mode: a question the host's loop has not run yet is answered by stop()") {
    asio::io_context io;
    Broker broker(io);
    MemoryConnection c(broker, 0, user("alice"));
    Answer<std::size_t> closed;
    broker.close_sessions("alice", CloseCode::unauthorized, "revoked", closed.callback());
    CHECK_FALSE(closed.ready());
    broker.stop();
    REQUIRE(closed.ready());
    CHECK(closed.future.get() == 0);
    pump(io);  // the queued work finds the question answered
    CHECK_FALSE(c.close_code());
    c.disconnect();
  }
  SUBCASE("a destroyed broker answers too") {
    Answer<SessionList> list;
    {
      asio::io_context io;
      Broker broker(io);
      broker.sessions("alice", list.callback());
      CHECK_FALSE(list.ready());
    }
    CHECK(list.ready());
  }
}

TEST_CASE("a handler that throws is counted, not rethrown") {
  asio::io_context io;
  Broker broker(io);
  broker.sessions("alice", [](SessionList) { throw std::runtime_error("handler broke"); });
  pump(io);
  CHECK(broker.metrics().callback_errors == 1);
}
