// Broker behaviour on the in-memory transport: ordering, recovery, holds
// during a pending read, authorization, limits, slow consumers, threads.
#include "in_process_wrapper.hpp"
#include "memory_connection.hpp"
#include "org_member.hpp"
#include "received_messages.hpp"

#include <livecast/broker.hpp>
#include <livecast/in_process_backend.hpp>

#include <ostream>  // doctest prints std::error_code

#include <doctest/doctest.h>

#include <asio/io_context.hpp>

#include <atomic>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace livecast;
using livecast_test::MemoryConnection;
using livecast_test::member;
using livecast_test::has;
using livecast_test::is_publication;
using livecast_test::number_after;
using livecast_test::publication_offsets;
using livecast_test::string_after;

namespace {


std::string value(int v) { return "{\"v\":" + std::to_string(v) + "}"; }

// Runs the host io_context until nothing is ready.
void pump(asio::io_context& io) {
  io.restart();
  io.poll();
}


std::unique_ptr<InProcessBackend> backend(std::string epoch = "e1", std::size_t history = 1000) {
  InProcessBackendSettings s;
  s.epoch = std::move(epoch);
  s.history_size = history;
  return std::make_unique<InProcessBackend>(s);
}

}  // namespace

TEST_CASE("publish validates the payload once and refuses bad input with an error code") {
  asio::io_context io;
  BrokerSettings s;
  s.max_payload_bytes = 64;
  Broker broker(io, s);
  CHECK(broker.publish("", "1") == Errc::invalid_topic);
  CHECK(broker.publish("bad\ntopic", "1") == Errc::invalid_topic);
  CHECK(broker.publish("t", "{\"unterminated\":") == Errc::invalid_payload);
  CHECK(broker.publish("t", "1 2") == Errc::invalid_payload);
  CHECK(broker.publish("t", "\"" + std::string(100, 'x') + "\"") == Errc::message_too_large);
  CHECK_FALSE(broker.publish("t", "{\"ok\":true}"));
  CHECK_FALSE(broker.publish("t", Json::object({{"n", 1}, {"s", "a\"b"}})));
  CHECK(broker.metrics().publications == 2);
  CHECK(broker.metrics().publish_errors == 5);
  broker.stop();
  CHECK(broker.publish("t", "1") == Errc::shutting_down);
}

TEST_CASE("topics must be strict UTF-8: no overlong forms, surrogates or code points above U+10FFFF") {
  asio::io_context io;
  Broker broker(io);
  CHECK(broker.publish("a\xc0\xaf" "b", "1") == Errc::invalid_topic);  // overlong '/'
  CHECK(broker.publish("\xed\xa0\x80", "1") == Errc::invalid_topic);    // surrogate U+D800
  CHECK(broker.publish("\xf4\x90\x80\x80", "1") == Errc::invalid_topic);  // U+110000
  CHECK(broker.publish("caf\xc3", "1") == Errc::invalid_topic);          // truncated
  CHECK(broker.publish("a\x7f", "1") == Errc::invalid_topic);            // control characters still refused
  CHECK(broker.metrics().publish_errors == 5);
  CHECK_FALSE(broker.publish("caf\xc3\xa9", "1"));
  CHECK_FALSE(broker.publish("\xf4\x8f\xbf\xbf", "1"));  // U+10FFFF, the last code point
  CHECK(broker.metrics().publications == 2);
}

TEST_CASE("publish refuses a Json value whose strings are not UTF-8 instead of altering it") {
  asio::io_context io;
  Broker broker(io);
  MemoryConnection c(broker, 0);
  c.send(R"({"op":"subscribe","id":1,"topic":"t"})");
  pump(io);
  CHECK(broker.publish("t", Json("\xc3\x28")) == Errc::invalid_payload);  // a lead byte without its continuation
  CHECK(broker.publish("t", Json::object({{"s", "\xed\xa0\x80"}})) == Errc::invalid_payload);  // a surrogate
  CHECK(broker.publish("t", Json::object({{"\xc3\x28", 1}})) == Errc::invalid_payload);       // in a key
  CHECK(broker.metrics().publish_errors == 3);
  CHECK(broker.metrics().publications == 0);
  CHECK_FALSE(broker.publish("t", Json::object({{"caf\xc3\xa9", "\xe2\x82\xac \xf0\x9f\x98\x80"}})));
  CHECK(broker.metrics().publications == 1);
  pump(io);
  auto r = c.received();
  REQUIRE(r.size() == 2);  // the reply and the one valid publication, bytes unchanged
  CHECK(has(r[1], "{\"caf\xc3\xa9\":\"\xe2\x82\xac \xf0\x9f\x98\x80\"}"));
}

TEST_CASE("a subscriber gets the reply, then the latest value, then live publications in order") {
  asio::io_context io;
  Broker broker(io, {}, backend());
  for (int i = 1; i <= 3; ++i) REQUIRE_FALSE(broker.publish("kpi", value(i)));
  pump(io);
  MemoryConnection c(broker, 0);
  c.send(R"({"op":"subscribe","id":1,"topic":"kpi"})");
  pump(io);
  for (int i = 4; i <= 5; ++i) REQUIRE_FALSE(broker.publish("kpi", value(i)));
  pump(io);
  auto r = c.received();
  REQUIRE(r.size() == 4);
  CHECK(has(r[0], "\"id\":1"));
  CHECK(has(r[0], "\"recovered\":false"));
  CHECK(has(r[0], "\"epoch\":\"e1\""));
  CHECK(number_after(r[0], "offset") == 3);
  CHECK(has(r[1], "{\"v\":3}"));  // the snapshot is the latest value
  CHECK(publication_offsets(r) == std::vector<std::uint64_t>{3, 4, 5});
}

TEST_CASE("publications of several topics waiting in one batch reach each subscriber in the order published") {
  // Consecutive publications of a topic go out as one run per subscriber
  // (ShardTopic::deliver); a run must never pass the other topic's
  // publications around it.
  asio::io_context io;
  Broker broker(io, {}, backend());
  MemoryConnection both(broker, 0), only_a(broker, 0);
  both.send(R"({"op":"subscribe","id":1,"topic":"a"})");
  both.send(R"({"op":"subscribe","id":2,"topic":"b"})");
  only_a.send(R"({"op":"subscribe","id":1,"topic":"a"})");
  pump(io);
  const std::vector<std::pair<std::string, int>> published{{"a", 1}, {"a", 2}, {"b", 3}, {"a", 4}, {"a", 5}, {"b", 6}};
  for (const auto& [topic, v] : published) REQUIRE_FALSE(broker.publish(topic, value(v)));
  pump(io);  // one drain takes them all
  auto seen = [](const MemoryConnection& c) {
    std::vector<std::string> out;
    for (const std::string& m : c.received())
      if (is_publication(m)) out.push_back(string_after(m, "topic") + std::to_string(number_after(m, "v")));
    return out;
  };
  CHECK(seen(both) == std::vector<std::string>{"a1", "a2", "b3", "a4", "a5", "b6"});
  CHECK(seen(only_a) == std::vector<std::string>{"a1", "a2", "a4", "a5"});
}

TEST_CASE("presence counts this instance's subscriptions per topic with the in-process backend") {
  asio::io_context io;
  Broker broker(io, {}, backend());
  auto presence = [&](const std::string& topic) {
    std::uint64_t answer = 999;
    broker.presence(topic, [&](std::error_code ec, std::uint64_t n) {
      CHECK_FALSE(ec);
      answer = n;
    });
    return answer;
  };
  CHECK(presence("room") == 0);
  auto a = std::make_unique<MemoryConnection>(broker, 0);
  MemoryConnection b(broker, 0);
  a->send(R"({"op":"subscribe","id":1,"topic":"room"})");
  b.send(R"({"op":"subscribe","id":1,"topic":"room"})");
  b.send(R"({"op":"subscribe","id":2,"topic":"hall"})");
  pump(io);
  CHECK(presence("room") == 2);
  CHECK(presence("hall") == 1);
  a->disconnect();
  b.send(R"({"op":"unsubscribe","topic":"hall"})");
  pump(io);
  CHECK(presence("room") == 1);
  CHECK(presence("hall") == 0);
}

TEST_CASE("recovery returns exactly the missed publications, or says it cannot") {
  asio::io_context io;
  Broker broker(io, {}, backend("e1", 5));
  auto c1 = std::make_unique<MemoryConnection>(broker, 0);
  c1->send(R"({"op":"subscribe","id":1,"topic":"t"})");
  pump(io);
  for (int i = 1; i <= 4; ++i) REQUIRE_FALSE(broker.publish("t", value(i)));
  pump(io);
  CHECK(publication_offsets(c1->received()) == std::vector<std::uint64_t>{1, 2, 3, 4});
  c1.reset();  // disconnects
  for (int i = 5; i <= 7; ++i) REQUIRE_FALSE(broker.publish("t", value(i)));
  pump(io);

  SUBCASE("from a position still in history") {
    MemoryConnection c2(broker, 0);
    c2.send(R"({"op":"subscribe","id":2,"topic":"t","recover":{"epoch":"e1","offset":4}})");
    pump(io);
    REQUIRE_FALSE(broker.publish("t", value(8)));
    pump(io);
    auto r = c2.received();
    REQUIRE_FALSE(r.empty());
    CHECK(has(r[0], "\"recovered\":true"));
    CHECK(number_after(r[0], "offset") == 7);
    CHECK(publication_offsets(r) == std::vector<std::uint64_t>{5, 6, 7, 8});
  }
  SUBCASE("from the head: nothing missed") {
    MemoryConnection c2(broker, 0);
    c2.send(R"({"op":"subscribe","id":2,"topic":"t","recover":{"epoch":"e1","offset":7}})");
    pump(io);
    auto r = c2.received();
    REQUIRE(r.size() == 1);
    CHECK(has(r[0], "\"recovered\":true"));
  }
  SUBCASE("from another epoch: not recovered, snapshot") {
    MemoryConnection c2(broker, 0);
    c2.send(R"({"op":"subscribe","id":2,"topic":"t","recover":{"epoch":"old","offset":4}})");
    pump(io);
    auto r = c2.received();
    REQUIRE(r.size() == 2);
    CHECK(has(r[0], "\"recovered\":false"));
    CHECK(publication_offsets(r) == std::vector<std::uint64_t>{7});
  }
  SUBCASE("from a position trimmed out of history: not recovered, snapshot") {
    MemoryConnection c2(broker, 0);
    c2.send(R"({"op":"subscribe","id":2,"topic":"t","recover":{"epoch":"e1","offset":1}})");
    pump(io);
    auto r = c2.received();
    REQUIRE(r.size() == 2);
    CHECK(has(r[0], "\"recovered\":false"));
    CHECK(publication_offsets(r) == std::vector<std::uint64_t>{7});
  }
}

TEST_CASE("a subscribe with recent history gets the last publications, placed so that they run on into live ones") {
  asio::io_context io;
  Broker broker(io, {}, backend("e1", 20));
  for (int i = 1; i <= 30; ++i) REQUIRE_FALSE(broker.publish("t", value(i)));
  pump(io);

  SUBCASE("the last N: the reply stands just before the first of them") {
    MemoryConnection c(broker, 0);
    c.send(R"({"op":"subscribe","id":1,"topic":"t","recent":{"count":5}})");
    pump(io);
    REQUIRE_FALSE(broker.publish("t", value(31)));
    pump(io);
    auto r = c.received();
    REQUIRE_FALSE(r.empty());
    CHECK(has(r[0], "\"recovered\":false"));
    CHECK(number_after(r[0], "offset") == 25);
    CHECK(publication_offsets(r) == std::vector<std::uint64_t>{26, 27, 28, 29, 30, 31});
    CHECK(broker.metrics().recent_history_reads == 1);
    CHECK(broker.metrics().recent_publications_sent == 5);
  }
  SUBCASE("more than history keeps: what it keeps") {
    MemoryConnection c(broker, 0);
    c.send(R"({"op":"subscribe","id":1,"topic":"t","recent":{"count":500,"seconds":3600}})");
    pump(io);
    auto r = c.received();
    REQUIRE(r.size() == 21);
    CHECK(number_after(r[0], "offset") == 10);
    CHECK(publication_offsets(r).front() == 11);
    CHECK(publication_offsets(r).back() == 30);
  }
  SUBCASE("bounded by RecoverySettings::max_publications") {
    BrokerSettings settings;
    settings.recovery.max_publications = 3;
    Broker bounded(io, settings, backend("e2", 20));
    for (int i = 1; i <= 10; ++i) REQUIRE_FALSE(bounded.publish("t", value(i)));
    pump(io);
    MemoryConnection c(bounded, 0);
    c.send(R"({"op":"subscribe","id":1,"topic":"t","recent":{"count":8}})");
    pump(io);
    CHECK(publication_offsets(c.received()) == std::vector<std::uint64_t>{8, 9, 10});
  }
  SUBCASE("with recover, recent is ignored: the recovery continues the client's own position") {
    MemoryConnection c(broker, 0);
    c.send(R"({"op":"subscribe","id":1,"topic":"t","recover":{"epoch":"e1","offset":28},"recent":{"count":10}})");
    pump(io);
    auto r = c.received();
    REQUIRE_FALSE(r.empty());
    CHECK(has(r[0], "\"recovered\":true"));
    CHECK(publication_offsets(r) == std::vector<std::uint64_t>{29, 30});
    CHECK(broker.metrics().recent_history_reads == 0);
  }
  SUBCASE("a topic with no publication: the reply alone") {
    MemoryConnection c(broker, 0);
    c.send(R"({"op":"subscribe","id":1,"topic":"empty","recent":{"count":10}})");
    pump(io);
    auto r = c.received();
    REQUIRE(r.size() == 1);
    CHECK(number_after(r[0], "offset") == 0);
  }
}

namespace {
// A backend whose reads answer only when the test says so, as a remote one
// would, so publications race with the read.
class DeferredReadBackend final : public livecast_test::InProcessWrapper {
 public:
  explicit DeferredReadBackend(bool read_late) : read_late_(read_late) {}
  void read(const std::string& topic, const std::optional<StreamPosition>& since, std::size_t most,
            ReadHandler done) override {
    if (read_late_) {
      pending_ = [this, topic, since, most, done = std::move(done)]() mutable { inner_->read(topic, since, most, done); };
      return;
    }
    // Read now, answer later.
    inner_->read(topic, since, most, [this](ReadResult r) { early_ = std::move(r); });
    pending_ = [this, done = std::move(done)]() mutable { done(std::move(*early_)); };
  }
  void complete() { pending_(); }

 private:
  bool read_late_;
  std::function<void()> pending_;
  std::optional<ReadResult> early_;
};
}  // namespace

TEST_CASE("publications that race with the read are delivered once, in order, without a gap") {
  for (bool read_late : {false, true}) {
    CAPTURE(read_late);
    for (bool recover : {false, true}) {
      CAPTURE(recover);
      asio::io_context io;
      auto deferred = std::make_unique<DeferredReadBackend>(read_late);
      DeferredReadBackend& b = *deferred;
      Broker broker(io, {}, std::move(deferred));
      REQUIRE_FALSE(broker.publish("t", value(1)));
      REQUIRE_FALSE(broker.publish("t", value(2)));
      pump(io);
      MemoryConnection c(broker, 0);
      c.send(recover ? R"({"op":"subscribe","id":1,"topic":"t","recover":{"epoch":"e1","offset":1}})"
                     : R"({"op":"subscribe","id":1,"topic":"t"})");
      pump(io);
      CHECK(c.received().empty());  // nothing before the reply
      REQUIRE_FALSE(broker.publish("t", value(3)));
      REQUIRE_FALSE(broker.publish("t", value(4)));
      pump(io);
      CHECK(c.received().empty());
      b.complete();
      pump(io);
      REQUIRE_FALSE(broker.publish("t", value(5)));
      pump(io);
      auto r = c.received();
      REQUIRE_FALSE(r.empty());
      CHECK(has(r[0], "\"id\":1"));
      std::vector<std::uint64_t> expected;
      if (recover)
        expected = {2, 3, 4, 5};
      else
        expected = read_late ? std::vector<std::uint64_t>{4, 5} : std::vector<std::uint64_t>{2, 3, 4, 5};
      CHECK(publication_offsets(r) == expected);
    }
  }
}

TEST_CASE("the authorizer decides subscriptions with the principal's claims and roles") {
  asio::io_context io;
  BrokerSettings s;
  s.authorizer = Authorizer().allow_subscribe("org:{org}:*").deny_subscribe("org:{org}:transactions", "viewer");
  Broker broker(io, s);
  MemoryConnection viewer(broker, 0, member("acme", "viewer"));
  MemoryConnection analyst(broker, 0, member("acme", "analyst"));
  viewer.send(R"({"op":"subscribe","id":1,"topic":"org:acme:transactions"})");
  viewer.send(R"({"op":"subscribe","id":2,"topic":"org:acme:kpi"})");
  viewer.send(R"({"op":"subscribe","id":3,"topic":"org:globex:kpi"})");
  analyst.send(R"({"op":"subscribe","id":1,"topic":"org:acme:transactions"})");
  pump(io);
  auto r = viewer.received();
  REQUIRE(r.size() == 3);
  CHECK(has(r[0], "\"id\":1"));
  CHECK(has(r[0], "\"code\":\"forbidden\""));
  CHECK(has(r[1], "\"id\":2"));
  CHECK(has(r[1], "\"ok\""));
  CHECK(has(r[2], "\"code\":\"forbidden\""));
  CHECK(has(analyst.received().at(0), "\"ok\""));
  CHECK(broker.metrics().errors(Errc::forbidden) == 2);
  REQUIRE_FALSE(broker.publish("org:acme:transactions", value(1)));
  pump(io);
  CHECK(viewer.received().size() == 3);  // the refused topic delivers nothing
  CHECK(publication_offsets(analyst.received()) == std::vector<std::uint64_t>{1});
}

TEST_CASE("subscription limits and unsubscribe") {
  asio::io_context io;
  BrokerSettings s;
  s.session.max_subscriptions = 2;
  Broker broker(io, s);
  MemoryConnection c(broker, 0);
  c.send(R"({"op":"subscribe","id":1,"topic":"a"})");
  c.send(R"({"op":"subscribe","id":2,"topic":"a"})");
  c.send(R"({"op":"subscribe","id":3,"topic":"b"})");
  c.send(R"({"op":"subscribe","id":4,"topic":"c"})");
  c.send(R"({"op":"unsubscribe","id":5,"topic":"zzz"})");
  c.send(R"({"op":"unsubscribe","id":6,"topic":"a"})");
  pump(io);
  auto r = c.received();
  REQUIRE(r.size() == 6);
  CHECK(has(r[1], "already_subscribed"));
  CHECK(has(r[3], "too_many_subscriptions"));
  CHECK(has(r[4], "not_subscribed"));
  CHECK(has(r[5], "\"id\":6"));
  CHECK(has(r[5], "\"ok\""));
  CHECK(broker.metrics().subscriptions_active == 1);
  REQUIRE_FALSE(broker.publish("a", value(1)));
  REQUIRE_FALSE(broker.publish("b", value(1)));
  pump(io);
  auto after = c.received();
  REQUIRE(after.size() == 7);
  CHECK(has(after[6], "\"topic\":\"b\""));
}

TEST_CASE("clients publish only where the authorizer allows, and get the offset back") {
  asio::io_context io;
  BrokerSettings s;
  s.authorizer = Authorizer::subscribe_anything().allow_publish("chat:*", "admin");
  Broker broker(io, s);
  MemoryConnection admin(broker, 0, member("acme", "admin"));
  MemoryConnection viewer(broker, 0, member("acme", "viewer"));
  viewer.send(R"({"op":"subscribe","id":1,"topic":"chat:room"})");
  pump(io);
  viewer.send(R"({"op":"publish","id":2,"topic":"chat:room","data":{"text":"hi"}})");
  admin.send(R"({"op":"publish","id":3,"topic":"chat:room","data":{"text":"hello"}})");
  admin.send(R"({"op":"publish","id":4,"topic":"kpi","data":1})");
  pump(io);
  auto v = viewer.received();
  REQUIRE(v.size() == 3);
  CHECK(has(v[1], "forbidden"));
  CHECK(has(v[2], "hello"));
  auto a = admin.received();
  REQUIRE(a.size() == 2);
  CHECK(has(a[0], "\"id\":3"));
  CHECK(number_after(a[0], "offset") == 1);
  CHECK(has(a[1], "forbidden"));
}

TEST_CASE("a message flood is answered with rate_limited, then closed") {
  asio::io_context io;
  BrokerSettings s;
  s.session.max_messages_per_second = 10;
  Broker broker(io, s);
  MemoryConnection c(broker, 0);
  for (int i = 0; i < 200; ++i) c.send(R"({"op":"ping","id":1})");
  pump(io);
  auto r = c.received();
  std::size_t limited = 0;
  for (auto& m : r) limited += has(m, "rate_limited");
  CHECK(limited > 100);
  CHECK(r.size() < 200);  // closed before the end of the flood
  REQUIRE(c.close_code());
  CHECK(*c.close_code() == CloseCode::rate_limited);
  CHECK(broker.metrics().errors(Errc::rate_limited) == limited);
}

TEST_CASE("server-side joins go through the authorizer and tell the client") {
  asio::io_context io;
  BrokerSettings s;
  s.authorizer = Authorizer().allow_subscribe("org:{org}").allow_subscribe("org:{org}:*");
  s.server_joins = [](const Principal& p) {
    return std::vector<std::string>{"org:" + p.claim("org"), "org:" + p.claim("org") + ":" + p.roles.at(0),
                                    "org:other"};
  };
  std::vector<std::string> errors;
  s.on_error = [&](const std::string& what, std::error_code) { errors.push_back(what); };
  Broker broker(io, s);
  MemoryConnection c(broker, 0, member("acme", "viewer"));
  pump(io);
  CHECK(c.session().subscriptions().size() == 2);
  auto r = c.received();
  REQUIRE(r.size() == 2);
  CHECK(r[0].rfind("{\"ok\":", 0) == 0);  // a notice: no id
  CHECK(has(r[0], "\"topic\":\"org:acme\""));
  REQUIRE(errors.size() == 1);
  CHECK(has(errors[0], "org:other"));
  REQUIRE_FALSE(broker.publish("org:acme", value(1)));
  pump(io);
  CHECK(publication_offsets(c.received()) == std::vector<std::uint64_t>{1});
}

TEST_CASE("slow consumers: disconnect closes only the slow session") {
  asio::io_context io;
  BrokerSettings s;
  s.session.send_queue_bytes = 2000;
  s.session.slow_consumer_policy = SlowConsumerPolicy::disconnect;
  Broker broker(io, s);
  auto slow = std::make_unique<MemoryConnection>(broker, 0);
  MemoryConnection fast(broker, 0);
  slow->send(R"({"op":"subscribe","id":1,"topic":"t"})");
  fast.send(R"({"op":"subscribe","id":1,"topic":"t"})");
  pump(io);
  slow->set_reading(false);
  std::string payload = "\"" + std::string(100, 'x') + "\"";
  for (int i = 0; i < 100; ++i) {
    REQUIRE_FALSE(broker.publish("t", payload));
    pump(io);  // the fast reader drains between publications
  }
  REQUIRE(slow->close_code());
  CHECK(*slow->close_code() == CloseCode::slow_consumer);
  CHECK_FALSE(fast.close_code());
  auto offsets = publication_offsets(fast.received());
  REQUIRE(offsets.size() == 100);
  CHECK(offsets.back() == 100);
  slow.reset();
  CHECK(broker.metrics().slow_consumer_closes == 1);
}

TEST_CASE("slow consumers: conflate and drop_oldest keep the session and count the drops") {
  for (auto policy : {SlowConsumerPolicy::conflate, SlowConsumerPolicy::drop_oldest}) {
    CAPTURE(to_string(policy));
    asio::io_context io;
    BrokerSettings s;
    s.session.send_queue_bytes = 2000;
    s.session.slow_consumer_policy = policy;
    Broker broker(io, s);
    MemoryConnection slow(broker, 0);
    MemoryConnection fast(broker, 0);
    slow.send(R"({"op":"subscribe","id":1,"topic":"t"})");
    fast.send(R"({"op":"subscribe","id":1,"topic":"t"})");
    pump(io);
    slow.set_reading(false);
    std::string payload = "\"" + std::string(100, 'x') + "\"";
    for (int i = 0; i < 100; ++i) {
      REQUIRE_FALSE(broker.publish("t", payload));
      pump(io);  // the fast reader drains between publications
    }
    CHECK_FALSE(slow.close_code());
    CHECK(broker.metrics().dropped > 0);
    slow.set_reading(true);
    pump(io);
    auto got = publication_offsets(slow.received());
    REQUIRE_FALSE(got.empty());
    CHECK(got.size() < 100);
    CHECK(got.back() == 100);  // the newest value always arrives
    for (std::size_t i = 1; i < got.size(); ++i) CHECK(got[i] > got[i - 1]);
    CHECK(publication_offsets(fast.received()).size() == 100);
  }
}

TEST_CASE("closing a session leaves every topic") {
  asio::io_context io;
  Broker broker(io);
  {
    MemoryConnection c(broker, 0);
    c.send(R"({"op":"subscribe","id":1,"topic":"a"})");
    c.send(R"({"op":"subscribe","id":2,"topic":"b"})");
    pump(io);
    CHECK(broker.metrics().subscriptions_active == 2);
    CHECK(broker.metrics().sessions_active == 1);
  }
  CHECK(broker.metrics().subscriptions_active == 0);
  CHECK(broker.metrics().sessions_active == 0);
  CHECK_FALSE(broker.publish("a", value(1)));
  pump(io);
  CHECK(broker.metrics().deliveries == 0);
}

TEST_CASE("own threads: concurrent publishers, sessions on every shard, per-topic order kept") {
  BrokerSettings s;
  s.threads = 2;
  Broker broker(s);
  broker.start();
  std::vector<std::unique_ptr<MemoryConnection>> clients(4);
  for (std::size_t i = 0; i < clients.size(); ++i) {
    std::size_t shard = i % broker.session_host().shard_count();
    broker.session_host().execute_on_shard(shard, [&, i, shard] { clients[i] = std::make_unique<MemoryConnection>(broker, shard); });
    clients[i]->send(R"({"op":"subscribe","id":1,"topic":"t"})");
  }
  for (auto& c : clients) REQUIRE(c->wait_for_count(1));
  constexpr int publishers = 4, each = 250;
  std::vector<std::thread> threads;
  for (int p = 0; p < publishers; ++p)
    threads.emplace_back([&] {
      for (int i = 0; i < each; ++i) CHECK_FALSE(broker.publish("t", value(i)));
    });
  for (auto& t : threads) t.join();
  std::vector<std::uint64_t> expected;
  for (std::uint64_t o = 1; o <= publishers * each; ++o) expected.push_back(o);
  for (auto& c : clients) {
    REQUIRE(c->wait_for_count(1 + publishers * each));
    CHECK(publication_offsets(c->received()) == expected);
  }
  CHECK(broker.metrics().deliveries == clients.size() * publishers * each);
  clients.clear();
  broker.stop();
}

TEST_CASE("host mode: work a destroyed broker left in the host's io_context does nothing") {
  asio::io_context io;
  {
    Broker broker(io);
    auto c = std::make_unique<MemoryConnection>(broker, 0);
    c->send(R"({"op":"subscribe","id":1,"topic":"t"})");
    pump(io);
    REQUIRE_FALSE(broker.publish("t", value(1)));  // a delivery is now queued in `io`
    c.reset();
  }
  pump(io);  // runs the stale delivery: it must see the broker is gone (ASan checks)
  CHECK(io.stopped());
}

// --- the host's hooks that throw: reported, answered, never fatal ---

namespace {

struct ReportedErrors {
  std::vector<std::string> what;
  std::function<void(const std::string&, std::error_code)> hook() {
    return [this](const std::string& w, std::error_code ec) {
      CHECK(ec == Errc::internal_error);
      what.push_back(w);
    };
  }
};

}  // namespace

TEST_CASE("an Authorizer check that throws: the client gets internal_error, on_error hears of it, the shard lives on") {
  asio::io_context io;
  ReportedErrors reported;
  BrokerSettings s;
  s.on_error = reported.hook();
  s.authorizer = Authorizer::subscribe_anything()
                     .allow_publish("*")
                     .check([](Action, std::string_view topic, const Principal&) -> std::optional<bool> {
                       if (topic == "boom") throw std::runtime_error("policy store unreachable");
                       return std::nullopt;
                     });
  Broker broker(io, s, backend());
  MemoryConnection c(broker, 0);
  c.send(R"({"op":"subscribe","id":1,"topic":"boom"})");
  c.send(R"({"op":"publish","id":2,"topic":"boom","data":1})");
  c.send(R"({"op":"subscribe","id":3,"topic":"fine"})");
  pump(io);
  auto r = c.received();
  REQUIRE(r.size() == 3);
  CHECK(has(r[0], R"({"id":1,"error":{"code":"internal_error")"));
  CHECK(has(r[1], R"({"id":2,"error":{"code":"internal_error")"));
  CHECK(has(r[2], R"("id":3,"ok":{"topic":"fine")"));
  CHECK(broker.metrics().callback_errors == 2);
  CHECK(broker.metrics().errors(Errc::internal_error) == 2);
  REQUIRE(reported.what.size() == 2);
  CHECK(has(reported.what[0], "the authorizer threw: policy store unreachable"));
  CHECK_FALSE(c.session().subscribed("boom"));
}

TEST_CASE("server_joins that throws: the session opens without joins and is told; a throwing on_error is swallowed") {
  asio::io_context io;
  int reports = 0;
  BrokerSettings s;
  s.server_joins = [](const Principal&) -> std::vector<std::string> { throw std::logic_error("no org"); };
  s.on_error = [&](const std::string& what, std::error_code) {
    ++reports;
    CHECK(has(what, "server_joins threw: no org"));
    throw std::runtime_error("the logger is down too");
  };
  Broker broker(io, s, backend());
  MemoryConnection c(broker, 0);
  pump(io);
  auto r = c.received();
  REQUIRE(r.size() == 1);
  CHECK(has(r[0], R"({"error":{"code":"internal_error")"));
  CHECK(c.session().subscriptions().empty());
  CHECK(reports == 1);
  c.send(R"({"op":"ping","id":4})");
  pump(io);
  CHECK(c.received().back() == R"({"id":4,"ok":{}})");
}

TEST_CASE("publish and presence handlers that throw are reported; delivery goes on") {
  asio::io_context io;
  ReportedErrors reported;
  BrokerSettings s;
  s.on_error = reported.hook();
  Broker broker(io, s, backend());
  MemoryConnection c(broker, 0);
  c.send(R"({"op":"subscribe","id":1,"topic":"t"})");
  pump(io);
  CHECK_FALSE(broker.publish("t", value(1), [](std::error_code, std::uint64_t) { throw 42; }));
  broker.presence("t", [](std::error_code, std::uint64_t) { throw std::runtime_error("full"); });
  CHECK_FALSE(broker.publish("t", value(2)));
  pump(io);
  CHECK(publication_offsets(c.received()) == std::vector<std::uint64_t>{1, 2});
  CHECK(broker.metrics().callback_errors == 2);
  REQUIRE(reported.what.size() == 2);
  CHECK(has(reported.what[0], "publish handler threw: unknown exception"));
  CHECK(has(reported.what[1], "presence handler threw: full"));
}

TEST_CASE("the Topic view: latest value, history from a position, presence") {
  asio::io_context io;
  Broker broker(io, {}, backend("e1", 3));
  Topic kpi = broker.topic("kpi");
  CHECK(kpi.name() == "kpi");
  bool answered = false;
  kpi.latest([&](std::error_code ec, std::optional<Publication> latest, StreamPosition head) {
    answered = true;
    CHECK_FALSE(ec);
    CHECK_FALSE(latest.has_value());
    CHECK(head == StreamPosition{"e1", 0});
  });
  CHECK(answered);
  for (int i = 1; i <= 5; ++i) REQUIRE_FALSE(broker.publish("kpi", value(i)));
  kpi.latest([&](std::error_code, std::optional<Publication> latest, StreamPosition head) {
    REQUIRE(latest.has_value());
    CHECK(latest->offset == 5);
    CHECK(*latest->data == value(5));
    CHECK(head.offset == 5);
  });
  std::vector<std::uint64_t> replayed;
  kpi.history({"e1", 3}, [&](ReadResult r) {
    CHECK(r.recovered);
    for (auto& p : r.publications) replayed.push_back(p.offset);
  });
  CHECK(replayed == std::vector<std::uint64_t>{4, 5});
  kpi.history({"e1", 1}, [&](ReadResult r) { CHECK_FALSE(r.recovered); });  // 2 fell out of a history of 3
  std::error_code bad;
  broker.topic("").latest([&](std::error_code ec, std::optional<Publication>, StreamPosition) { bad = ec; });
  CHECK(bad == Errc::invalid_topic);
  std::uint64_t watching = 99;
  kpi.presence([&](std::error_code, std::uint64_t n) { watching = n; });
  CHECK(watching == 0);
}
