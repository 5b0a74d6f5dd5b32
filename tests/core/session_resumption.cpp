// Resuming a session after its connection dropped (Protocol::resumes_sessions,
// Socket.IO's connection state recovery): the record a session leaves and
// where each topic resumes (sans-I/O), then the broker end to end with a
// line protocol of the test's own: the same id back and exactly what was
// missed when history covers the gap; a new id and a fresh start when it
// does not, for another principal, an unknown id, or a client that left on
// purpose.
#include "memory_connection.hpp"
#include "session_resumption.hpp"

#include <livecast/broker.hpp>
#include <livecast/in_process_backend.hpp>
#include <livecast/protocol.hpp>

#include <ostream>

#include <doctest/doctest.h>

#include <asio/io_context.hpp>

#include <algorithm>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

using namespace livecast;
using namespace std::chrono_literals;
using livecast::detail::ResumeRecord;
using livecast::detail::ResumeTracker;
using livecast::detail::resume_positions;
using livecast_test::MemoryConnection;

namespace {

std::optional<std::uint64_t> position_of(const std::optional<std::vector<std::pair<std::string, StreamPosition>>>& all,
                                         const std::string& topic) {
  if (!all) return std::nullopt;
  for (const auto& [t, at] : *all)
    if (t == topic) return at.offset;
  return std::nullopt;
}

}  // namespace

TEST_CASE("each topic resumes just before its first publication queued after the client's last one") {
  ResumeTracker tracker(16);
  tracker.started("a", {"ea", 10});
  tracker.started("b", {"eb", 100});
  tracker.queued("a", "e", 11);
  tracker.queued("b", "e", 101);
  tracker.queued("a", "e", 12);  // the client's last
  tracker.queued("b", "e", 102);
  tracker.queued("a", "e", 13);
  const ResumeRecord record = tracker.record("alice", "sid-1");

  const auto positions = resume_positions(record, publication_token("a", 12));
  REQUIRE(positions);
  CHECK(position_of(positions, "a") == 12u);
  CHECK(position_of(positions, "b") == 101u);  // 102 was queued after: replayed
  CHECK(positions->at(0).second.epoch == "ea");

  // The client's last was b's 102: a resumes after 12 (13 came later), b after 102.
  const auto after_b = resume_positions(record, publication_token("b", 102));
  CHECK(position_of(after_b, "a") == 12u);
  CHECK(position_of(after_b, "b") == 102u);

  // It received nothing: everything queued is replayed.
  const auto none = resume_positions(record, "");
  CHECK(position_of(none, "a") == 10u);
  CHECK(position_of(none, "b") == 100u);

  // A token the session never queued, or that is not a token: it cannot tell.
  CHECK_FALSE(resume_positions(record, publication_token("a", 14)));
  CHECK_FALSE(resume_positions(record, publication_token("c", 12)));
  CHECK_FALSE(resume_positions(record, "12"));
  CHECK_FALSE(resume_positions(record, "zzzzzzzz-12"));
}

TEST_CASE("a client that lagged by more than the ring holds is not placed; left topics are not resumed") {
  ResumeTracker tracker(3);
  tracker.started("a", {"e", 0});
  for (std::uint64_t o = 1; o <= 5; ++o) tracker.queued("a", "e", o);
  const ResumeRecord record = tracker.record("alice", "sid-1");
  CHECK_FALSE(record.complete);
  CHECK_FALSE(resume_positions(record, publication_token("a", 2)));  // fell out
  CHECK_FALSE(resume_positions(record, ""));                         // received none of 3..5, or of 1..2?
  CHECK(position_of(resume_positions(record, publication_token("a", 3)), "a") == 3u);

  tracker.started("b", {"e", 7});
  tracker.left("a");
  tracker.queued("b", "e", 8);
  const auto positions = resume_positions(tracker.record("alice", "sid-1"), publication_token("b", 8));
  CHECK_FALSE(position_of(positions, "a"));
  CHECK(position_of(positions, "b") == 8u);
}

TEST_CASE("the record survives its text, and anything else is refused") {
  ResumeTracker tracker(8);
  tracker.started("org:acme:kpi tps", {"ep 1", 3});
  tracker.queued("org:acme:kpi tps", "e", 4);
  const ResumeRecord record = tracker.record("user: 7", "sid 7");
  const std::string text = record.serialize();
  const std::optional<ResumeRecord> back = ResumeRecord::parse(text);
  REQUIRE(back);
  CHECK(back->principal_id == "user: 7");
  CHECK(back->session_name == "sid 7");
  REQUIRE(back->subscriptions.size() == 1);
  CHECK(back->subscriptions[0].topic == "org:acme:kpi tps");
  CHECK(back->subscriptions[0].start == StreamPosition{"ep 1", 3});
  CHECK(back->subscriptions[0].last_queued == 4u);
  CHECK(back->queued == record.queued);
  CHECK(back->complete);

  CHECK_FALSE(ResumeRecord::parse(""));
  CHECK_FALSE(ResumeRecord::parse("lcr1 "));
  CHECK_FALSE(ResumeRecord::parse(text.substr(0, text.size() - 3)));
  CHECK_FALSE(ResumeRecord::parse(text + "1 "));
  CHECK_FALSE(ResumeRecord::parse("lcr1 999999:x 1 0 0 "));
  CHECK_FALSE(ResumeRecord::parse("lcr1 1:x 1:y 1 99999999999 "));
}

namespace {

// "connect <token> [<resume id> <last token>]", "bye"; publications are
// "pub <topic> <data> <token>", the connect answer "connected <sid> <resume id>".
class ResumableLines final : public Protocol {
 public:
  std::string_view name() const noexcept override { return "resumable.test"; }
  bool connects_in_band() const noexcept override { return true; }
  bool resumes_sessions() const noexcept override { return true; }
  DecodeResult decode(std::string_view m) const override {
    std::vector<std::string> words;
    while (!m.empty()) {
      const std::size_t sp = m.find(' ');
      words.emplace_back(m.substr(0, sp));
      m = sp == std::string_view::npos ? std::string_view() : m.substr(sp + 1);
    }
    ClientRequest r;
    if (!words.empty() && words[0] == "connect" && words.size() >= 2) {
      r.op = ClientRequest::Op::connect;
      r.token = words[1];
      if (words.size() >= 3) r.resume_id = words[2];
      if (words.size() >= 4) r.resume_after = words[3];
      return DecodeResult::ok(std::move(r));
    }
    if (!words.empty() && words[0] == "bye") {
      r.op = ClientRequest::Op::close;
      return DecodeResult::ok(std::move(r));
    }
    return DecodeResult::fail(Errc::unknown_op, "unknown line");
  }
  MessageBatchFraming batch_framing(std::optional<std::string_view>) const override { return {"text/plain", "", "\n", ""}; }

 protected:
  std::string encode_publication_text(const Publication& p) const override {
    return "pub " + p.topic + " " + *p.data + " " + publication_token(p.topic, p.offset);
  }
  std::string encode_subscribed_text(std::optional<std::int64_t>, const std::string&, const StreamPosition&,
                                     bool) const override {
    return {};
  }
  std::string encode_unsubscribed_text(std::int64_t, const std::string&) const override { return "unsubscribed"; }
  std::string encode_published_text(std::int64_t, const std::string&, std::uint64_t) const override { return "published"; }
  std::string encode_pong_text(std::int64_t) const override { return "pong"; }
  std::string encode_refreshed_text(std::int64_t, std::optional<std::chrono::system_clock::time_point>) const override {
    return "refreshed";
  }
  std::string encode_error_text(std::optional<std::int64_t>, Errc code, std::string_view message) const override {
    return std::string("error ") + to_wire_name(code) + " " + std::string(message);
  }
  std::string encode_greeting_text(const Greeting&) const override { return "hello"; }
  std::string encode_connected_text(std::string_view sid, std::string_view resume_id) const override {
    return "connected " + std::string(sid) + " " + std::string(resume_id);
  }
  std::string encode_connect_refused_text(std::string_view reason) const override {
    return "refused " + std::string(reason);
  }
};

void pump(asio::io_context& io) {
  io.restart();
  io.poll();
}

BrokerSettings resumable_settings() {
  BrokerSettings s;
  s.protocols = {make_livecast_v1_protocol(), std::make_shared<ResumableLines>()};
  s.authenticator = [](const HandshakeRequest& r) {
    const std::string token(r.token());
    if (token == "alice" || token == "bob") {
      Principal p;
      p.id = token;
      return AuthResult::accept(p);
    }
    return AuthResult::refuse("invalid token");
  };
  s.server_joins = [](const Principal& p) { return std::vector<std::string>{"room:" + p.id, "room:all"}; };
  return s;
}

MemoryConnection::InBand in_band() {
  MemoryConnection::InBand b{1, {}, {}};
  b.request.transport = "test";
  return b;
}

// The resume id in "connected <sid> <id>".
std::string resume_id_in(const std::vector<std::string>& received) {
  for (const std::string& line : received)
    if (line.rfind("connected ", 0) == 0) return line.substr(line.rfind(' ') + 1);
  return {};
}

// The session's name in "connected <sid> <id>".
std::string name_in(const std::vector<std::string>& received) {
  for (const std::string& line : received)
    if (line.rfind("connected ", 0) == 0) return line.substr(10, line.rfind(' ') - 10);
  return {};
}

// The token of the publication whose data is `data`.
std::string token_of(const std::vector<std::string>& received, const std::string& data) {
  for (const std::string& line : received)
    if (line.rfind("pub ", 0) == 0 && line.find(" " + data + " ") != std::string::npos)
      return line.substr(line.rfind(' ') + 1);
  return {};
}

// A first connection of alice's that received {"n":1} on room:alice and
// then dropped (or said goodbye): its resume id and the token of {"n":1}.
struct FirstSession {
  std::string id, last;
};
FirstSession first_session(Broker& broker, asio::io_context& io, bool say_goodbye = false) {
  MemoryConnection c(broker, 0, in_band());
  c.send("connect alice");
  pump(io);
  FirstSession first{resume_id_in(c.received()), {}};
  broker.publish("room:alice", R"({"n":1})");
  pump(io);
  first.last = token_of(c.received(), R"({"n":1})");
  if (say_goodbye) {
    c.send("bye");
    pump(io);
  }
  return first;
}

std::vector<std::string> publications(const std::vector<std::string>& received) {
  std::vector<std::string> out;
  for (const std::string& line : received)
    if (line.rfind("pub ", 0) == 0) out.push_back(line.substr(0, line.rfind(' ')));
  return out;
}

}  // namespace

TEST_CASE("a dropped connection resumes: the same id back, exactly what was missed, in order, once") {
  asio::io_context io;
  Broker broker(io, resumable_settings());
  std::string id, last, first_name;
  {
    MemoryConnection c(broker, 0, in_band());
    c.send("connect alice");
    pump(io);
    id = resume_id_in(c.received());
    first_name = name_in(c.received());
    REQUIRE(id.size() >= 20);
    broker.publish("room:alice", R"({"n":1})");
    broker.publish("room:all", R"({"n":2})");
    pump(io);
    broker.publish("room:alice", R"({"n":3})");
    broker.publish("room:all", R"({"n":4})");
    pump(io);
    // The client got up to n:2; n:3 and n:4 were lost with the connection.
    last = token_of(c.received(), R"({"n":2})");
    REQUIRE_FALSE(last.empty());
    REQUIRE(publications(c.received()).size() == 4);
  }  // the connection drops
  broker.publish("room:all", R"({"n":5})");
  pump(io);

  MemoryConnection back(broker, 0, in_band());
  back.send("connect alice " + id + " " + last);
  pump(io);
  CHECK(resume_id_in(back.received()) == id);
  CHECK(name_in(back.received()) == first_name);  // a resumed session keeps its public name
  CHECK(publications(back.received()) ==
        std::vector<std::string>{R"(pub room:alice {"n":3})", R"(pub room:all {"n":4})", R"(pub room:all {"n":5})"});
  CHECK(back.session().subscribed("room:alice"));
  CHECK(back.session().subscribed("room:all"));
  CHECK(broker.metrics().recoveries_recovered == 2);

  // Live again: the next publication arrives once.
  broker.publish("room:alice", R"({"n":6})");
  pump(io);
  CHECK(publications(back.received()).back() == R"(pub room:alice {"n":6})");
  CHECK(publications(back.received()).size() == 4);

  // And it resumes again from its new place.
  const std::string again = token_of(back.received(), R"({"n":6})");
  back.disconnect();
  MemoryConnection third(broker, 0, in_band());
  third.send("connect alice " + id + " " + again);
  pump(io);
  CHECK(resume_id_in(third.received()) == id);
  CHECK(publications(third.received()).empty());
}

TEST_CASE("no resumption: another principal, an unknown id, a token it never sent, a client that said goodbye") {
  asio::io_context io;
  Broker broker(io, resumable_settings());
  std::string id, last;
  auto first = [&](bool say_goodbye) {
    const FirstSession f = first_session(broker, io, say_goodbye);
    id = f.id;
    last = f.last;
  };
  // Not resumed: a new id, and a fresh start: the server's joins, the latest values.
  auto check_fresh = [&](MemoryConnection& c, const std::string& principal) {
    const std::string fresh = resume_id_in(c.received());
    CHECK_FALSE(fresh.empty());
    CHECK(fresh != id);
    CHECK(c.session().principal().id == principal);
    CHECK(c.session().subscribed("room:" + principal));
  };

  SUBCASE("another principal with the id") {
    first(false);
    MemoryConnection c(broker, 0, in_band());
    c.send("connect bob " + id + " " + last);
    pump(io);
    check_fresh(c, "bob");
    CHECK_FALSE(c.session().subscribed("room:alice"));
  }
  SUBCASE("an id nobody left") {
    first(false);
    MemoryConnection c(broker, 0, in_band());
    c.send("connect alice not-an-id-of-ours " + last);
    pump(io);
    check_fresh(c, "alice");
  }
  SUBCASE("a token the session never queued") {
    first(false);
    MemoryConnection c(broker, 0, in_band());
    c.send("connect alice " + id + " " + publication_token("room:alice", 99));
    pump(io);
    check_fresh(c, "alice");
    CHECK(broker.metrics().recoveries_not_recovered >= 1);
  }
  SUBCASE("the client said goodbye: nothing was kept") {
    first(true);
    MemoryConnection c(broker, 0, in_band());
    c.send("connect alice " + id + " " + last);
    pump(io);
    check_fresh(c, "alice");
  }
  SUBCASE("an id is taken once") {
    first(false);
    {
      MemoryConnection c(broker, 0, in_band());
      c.send("connect alice " + id + " " + last);
      pump(io);
      CHECK(resume_id_in(c.received()) == id);
      c.send("bye");  // and leaves for good
      pump(io);
    }
    MemoryConnection c(broker, 0, in_band());
    c.send("connect alice " + id + " " + last);
    pump(io);
    check_fresh(c, "alice");
  }
}

TEST_CASE("a topic whose history no longer covers the gap: not resumed, and the session starts over") {
  asio::io_context io;
  InProcessBackendSettings history;
  history.history_size = 2;
  Broker broker(io, resumable_settings(), std::make_unique<InProcessBackend>(history));
  const auto [id, last] = first_session(broker, io);
  for (int n = 2; n <= 6; ++n) broker.publish("room:alice", "{\"n\":" + std::to_string(n) + "}");
  pump(io);
  MemoryConnection c(broker, 0, in_band());
  c.send("connect alice " + id + " " + last);
  pump(io);
  CHECK(resume_id_in(c.received()) != id);
  CHECK(c.session().subscribed("room:alice"));
  // The fresh start's latest value, not a replay.
  CHECK(publications(c.received()) == std::vector<std::string>{R"(pub room:alice {"n":6})"});
}
