// HttpTransport end to end on loopback: a Broker with its own threads, the
// transport on 127.0.0.1 port 0, and plain HTTP clients written here on
// blocking sockets. Every wait is for bytes or an event, bounded by a timeout.
#include "eventually.hpp"
#include "http_test_client.hpp"
#include "transport_server.hpp"

#include <livecast/broker.hpp>
#include <livecast/http_transport.hpp>

#include <doctest/doctest.h>

#include <rapidjson/document.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

using namespace livecast;
using namespace std::chrono_literals;
using livecast_test::Event;
using livecast_test::HttpClient;
using livecast_test::Response;

namespace {

using livecast_test::eventually;
using livecast_test::wait_limit;

// For conditions with no event to wait on (the broker's counters).
rapidjson::Document parse(const std::string& text) {
  rapidjson::Document d;
  d.Parse(text.c_str(), text.size());
  REQUIRE_FALSE(d.HasParseError());
  return d;
}

std::string value(int v) { return R"({"v":)" + std::to_string(v) + "}"; }

HttpTransportSettings loopback() { return livecast_test::loopback_settings<HttpTransportSettings>(); }

using livecast_test::with_threads;
using Server = livecast_test::TransportServer<HttpTransport, HttpTransportSettings>;

bool is_publication(const rapidjson::Value& m) {
  return m.HasMember("topic") && m.HasMember("offset") && !m.HasMember("ok") && !m.HasMember("error");
}

// Reads the SSE response head and the retry field every stream starts with.
void expect_stream_start(HttpClient& c) {
  auto head = c.stream_head();
  REQUIRE(head);
  CHECK(head->status == 200);
  CHECK(head->header("content-type") == "text/event-stream; charset=utf-8");
  CHECK(head->header("cache-control") == "no-cache, no-transform");
  CHECK(head->header("x-accel-buffering") == "no");
  CHECK(head->header("transfer-encoding") == "chunked");
  auto retry = c.next_event();
  REQUIRE(retry);
  CHECK(retry->data.empty());
}


}  // namespace

TEST_CASE("SSE: the reply and the snapshot, then live publications in order, each with the cursor as id") {
  Server server;
  server.broker.publish("t", value(0));
  HttpClient c(server.port());
  c.get("/sse?topics=t");
  expect_stream_start(c);

  auto reply = c.next_message();
  REQUIRE(reply);
  auto r = parse(reply->data);
  REQUIRE(r.HasMember("ok"));
  CHECK(r["id"].GetInt() == 1);
  CHECK(r["ok"]["recovered"].GetBool() == false);
  CHECK(r["ok"]["offset"].GetUint64() == 1);
  const std::string epoch = r["ok"]["epoch"].GetString();
  CHECK(reply->id == "t:" + epoch + ":1");

  auto snapshot = c.next_message();
  REQUIRE(snapshot);
  auto s = parse(snapshot->data);
  CHECK(is_publication(s));
  CHECK(s["offset"].GetUint64() == 1);
  CHECK(snapshot->id == "t:" + epoch + ":1");

  for (int i = 1; i <= 20; ++i) server.broker.publish("t", value(i));
  for (int i = 1; i <= 20; ++i) {
    auto e = c.next_message();
    REQUIRE(e);
    auto p = parse(e->data);
    REQUIRE(is_publication(p));
    CHECK(p["offset"].GetUint64() == static_cast<std::uint64_t>(i + 1));
    CHECK(p["data"]["v"].GetInt() == i);
    CHECK(e->id == "t:" + epoch + ":" + std::to_string(i + 1));
  }
  CHECK(server.transport.metrics().sse_streams == 1);
}

TEST_CASE("SSE: several topics, percent-encoded names, one cursor naming all of them") {
  Server server;
  server.broker.publish("a,b", value(1));
  HttpClient c(server.port());
  c.get("/sse?topics=a%2Cb,plain");
  expect_stream_start(c);
  std::string epoch;
  int replies = 0;
  while (replies < 2) {
    auto e = c.next_message();
    REQUIRE(e);
    auto m = parse(e->data);
    if (m.HasMember("ok")) {
      ++replies;
      epoch = m["ok"]["epoch"].GetString();
      CHECK((m["id"].GetInt() == 1) == (std::string(m["ok"]["topic"].GetString()) == "a,b"));
    }
  }
  server.broker.publish("plain", value(2));
  std::optional<Event> live;
  while ((live = c.next_message())) {
    auto m = parse(live->data);
    if (is_publication(m) && std::string(m["topic"].GetString()) == "plain") break;
  }
  REQUIRE(live);
  CHECK(live->id == "a%2Cb:" + epoch + ":1,plain:" + epoch + ":1");
}

TEST_CASE("SSE and poll: the URL's topics are one request, not one message each under the rate limit") {
  // A burst of 2 messages: before, the third topic of a stream was refused
  // with rate_limited, since each topic went through the message path.
  BrokerSettings settings = with_threads(2);
  settings.session.max_messages_per_second = 1;
  Server server(settings);
  const std::string topics = "t1,t2,t3,t4,t5";
  HttpClient c(server.port());
  c.get("/sse?topics=" + topics);
  expect_stream_start(c);
  for (int id = 1; id <= 5; ++id) {
    auto e = c.next_message();
    REQUIRE(e);
    auto m = parse(e->data);
    REQUIRE_MESSAGE(m.HasMember("ok"), e->data);
    CHECK(m["id"].GetInt() == id);
  }
  HttpClient p(server.port());
  p.get("/poll?topics=" + topics);
  auto answer = p.response();
  REQUIRE(answer);
  auto body = parse(answer->body);
  REQUIRE(body["messages"].Size() == 5);
  for (auto& m : body["messages"].GetArray()) CHECK_MESSAGE(m.HasMember("ok"), answer->body);
  CHECK(server.broker.metrics().errors(Errc::rate_limited) == 0);
}

TEST_CASE("SSE: resuming with Last-Event-ID gets exactly the missed publications") {
  Server server;
  for (int i = 1; i <= 3; ++i) server.broker.publish("t", value(i));
  std::string last_id;
  {
    HttpClient c(server.port());
    c.get("/sse?topics=t");
    expect_stream_start(c);
    auto reply = c.next_message();
    auto snapshot = c.next_message();
    REQUIRE(snapshot);
    last_id = snapshot->id;
  }
  for (int i = 4; i <= 6; ++i) server.broker.publish("t", value(i));

  HttpClient c(server.port());
  // The query's cursor is ignored when the header is there.
  c.get("/sse?topics=t&cursor=t%3Aunknown%3A0", "Last-Event-ID: " + last_id + "\r\n");
  expect_stream_start(c);
  auto reply = c.next_message();
  REQUIRE(reply);
  auto r = parse(reply->data);
  REQUIRE(r.HasMember("ok"));
  CHECK(r["ok"]["recovered"].GetBool() == true);
  for (int i = 4; i <= 6; ++i) {
    auto e = c.next_message();
    REQUIRE(e);
    auto p = parse(e->data);
    REQUIRE(is_publication(p));
    CHECK(p["data"]["v"].GetInt() == i);
  }
  // Nothing else was sent: the next event is the next live publication.
  server.broker.publish("t", value(7));
  auto e = c.next_message();
  REQUIRE(e);
  CHECK(parse(e->data)["data"]["v"].GetInt() == 7);
}

TEST_CASE("SSE: a cursor with an unknown epoch gets recovered:false and the snapshot") {
  Server server;
  for (int i = 1; i <= 3; ++i) server.broker.publish("t", value(i));
  HttpClient c(server.port());
  c.get("/sse?topics=t&cursor=" + std::string("t%3Agone%3A2"));
  expect_stream_start(c);
  auto reply = c.next_message();
  REQUIRE(reply);
  auto r = parse(reply->data);
  REQUIRE(r.HasMember("ok"));
  CHECK(r["ok"]["recovered"].GetBool() == false);
  CHECK(std::string(r["ok"]["epoch"].GetString()) != "gone");
  auto snapshot = c.next_message();
  REQUIRE(snapshot);
  auto s = parse(snapshot->data);
  REQUIRE(is_publication(s));
  CHECK(s["data"]["v"].GetInt() == 3);
}

TEST_CASE("SSE: heartbeats arrive as comments") {
  HttpTransportSettings h = loopback();
  h.sse_heartbeat = 50ms;
  Server server(with_threads(1), h);
  HttpClient c(server.port());
  c.get("/sse?topics=t");
  expect_stream_start(c);
  int heartbeats = 0;
  while (heartbeats < 2) {
    auto e = c.next_event();
    REQUIRE(e);
    for (const auto& comment : e->comments)
      if (comment == " hb") ++heartbeats;
  }
  CHECK(heartbeats == 2);
}

TEST_CASE("SSE: a JSON text with line breaks is split over several data lines") {
  Server server;
  server.broker.publish("t", std::string("{\n\"v\":\r\n1}"));
  HttpClient c(server.port());
  c.get("/sse?topics=t");
  expect_stream_start(c);
  c.next_message();  // reply
  auto snapshot = c.next_message();
  REQUIRE(snapshot);
  auto p = parse(snapshot->data);  // the lines joined with \n are the same JSON
  CHECK(p["data"]["v"].GetInt() == 1);
  CHECK(snapshot->data.find('\n') != std::string::npos);
}

TEST_CASE("poll: without a cursor the replies and snapshots come at once, with a cursor for next time") {
  Server server;
  server.broker.publish("a", value(1));
  server.broker.publish("b", value(2));
  HttpClient c(server.port());
  const auto started = std::chrono::steady_clock::now();
  c.get("/poll?topics=a,b");
  auto r = c.response();
  REQUIRE(r);
  CHECK(std::chrono::steady_clock::now() - started < 5s);  // far below the 25 s poll timeout
  CHECK(r->status == 200);
  CHECK(r->header("content-type") == "application/json");
  CHECK(r->header("cache-control") == "no-store");
  auto body = parse(r->body);
  const auto& messages = body["messages"];
  REQUIRE(messages.Size() == 4);
  CHECK(messages[0]["id"].GetInt() + messages[2]["id"].GetInt() == 3);
  CHECK(messages[0].HasMember("ok"));
  CHECK(is_publication(messages[1]));
  CHECK(is_publication(messages[3]));
  const std::string epoch = messages[0]["ok"]["epoch"].GetString();
  const std::string cursor = body["cursor"].GetString();
  CHECK((cursor == "a:" + epoch + ":1,b:" + epoch + ":1" || cursor == "b:" + epoch + ":1,a:" + epoch + ":1"));

  // The same connection serves the next poll (keep-alive).
  c.get("/poll?topics=a&timeout=1");
  auto again = c.response();
  REQUIRE(again);
  CHECK(again->status == 200);
}

TEST_CASE("poll and SSE: `recent` asks for the last publications of topics the cursor has no position on") {
  Server server;
  for (int i = 1; i <= 10; ++i) server.broker.publish("a", value(i));
  server.broker.publish("b", value(100));
  HttpClient c(server.port());
  c.get("/poll?topics=a,b&recent=a:3:3600");
  auto r = c.response();
  REQUIRE(r);
  REQUIRE(r->status == 200);
  auto body = parse(r->body);
  std::vector<std::uint64_t> a_offsets;
  std::uint64_t a_start = 0, b_publications = 0;
  for (const auto& m : body["messages"].GetArray()) {
    if (m.HasMember("ok") && std::string(m["ok"]["topic"].GetString()) == "a") a_start = m["ok"]["offset"].GetUint64();
    if (!is_publication(m)) continue;
    if (std::string(m["topic"].GetString()) == "a") a_offsets.push_back(m["offset"].GetUint64());
    else ++b_publications;
  }
  CHECK(a_start == 7);
  CHECK(a_offsets == std::vector<std::uint64_t>{8, 9, 10});
  CHECK(b_publications == 1);  // no recent asked: the latest value alone
  const std::string cursor = body["cursor"].GetString();
  CHECK(cursor.find(":10") != std::string::npos);

  HttpClient sse(server.port());
  sse.get("/sse?topics=a&recent=a:0:3600");
  expect_stream_start(sse);
  std::vector<std::uint64_t> streamed;
  while (streamed.size() < 10) {
    auto event = sse.next_event();
    REQUIRE(event);
    auto m = parse(event->data);
    if (is_publication(m)) streamed.push_back(m["offset"].GetUint64());
  }
  CHECK(streamed.front() == 1);
  CHECK(streamed.back() == 10);
  CHECK(server.broker.metrics().recent_history_reads == 2);
}

TEST_CASE("poll: with an up-to-date cursor it waits, then answers with the publication") {
  Server server;
  server.broker.publish("t", value(1));
  HttpClient first(server.port());
  first.get("/poll?topics=t");
  auto r1 = first.response();
  REQUIRE(r1);
  const std::string cursor = parse(r1->body)["cursor"].GetString();

  HttpClient c(server.port());
  const auto before = server.broker.metrics().subscriptions_active;
  c.get("/poll?topics=t&cursor=" + cursor);  // ':' needs no escape in a query
  REQUIRE(eventually([&] { return server.broker.metrics().subscriptions_active > before; }));
  // Nothing new yet: no answer.
  CHECK_FALSE(c.receive(100ms));
  server.broker.publish("t", value(2));
  auto r = c.response();
  REQUIRE(r);
  auto body = parse(r->body);
  const auto& messages = body["messages"];
  REQUIRE(messages.Size() == 1);
  CHECK(is_publication(messages[0]));
  CHECK(messages[0]["data"]["v"].GetInt() == 2);
  const std::string next = body["cursor"].GetString();
  CHECK(next.substr(next.size() - 2) == ":2");
  // The transient session is gone once answered.
  CHECK(eventually([&] { return server.broker.metrics().sessions_active == 0; }));
}

TEST_CASE("poll: times out with no messages and the same cursor") {
  Server server;
  server.broker.publish("t", value(1));
  HttpClient c(server.port());
  c.get("/poll?topics=t");
  auto r1 = c.response();
  REQUIRE(r1);
  const std::string cursor = parse(r1->body)["cursor"].GetString();
  c.get("/poll?topics=t&timeout=100&cursor=" + cursor);
  auto r = c.response();
  REQUIRE(r);
  auto body = parse(r->body);
  CHECK(body["messages"].Size() == 0);
  CHECK(std::string(body["cursor"].GetString()) == cursor);
}

TEST_CASE("poll: a cursor whose epoch is gone gets recovered:false and the snapshot") {
  Server server;
  server.broker.publish("t", value(5));
  HttpClient c(server.port());
  c.get("/poll?topics=t&cursor=t:old:9&timeout=2000");
  auto r = c.response();
  REQUIRE(r);
  auto body = parse(r->body);
  const auto& messages = body["messages"];
  REQUIRE(messages.Size() == 2);
  CHECK(messages[0]["ok"]["recovered"].GetBool() == false);
  CHECK(messages[1]["data"]["v"].GetInt() == 5);
}

TEST_CASE("POST /poll: a publish reaches a subscriber when the Authorizer allows it, and is forbidden otherwise") {
  BrokerSettings b = with_threads(2);
  b.authorizer = Authorizer{};
  b.authorizer.allow_subscribe("*").allow_publish("open");
  Server server(std::move(b));

  HttpClient subscriber(server.port());
  subscriber.get("/sse?topics=open");
  expect_stream_start(subscriber);
  REQUIRE(subscriber.next_message());  // reply

  HttpClient c(server.port());
  c.post("/poll", R"({"op":"publish","id":7,"topic":"open","data":{"v":42}})");
  auto r = c.response();
  REQUIRE(r);
  CHECK(r->status == 200);
  auto body = parse(r->body);
  REQUIRE(body["messages"].Size() == 1);
  CHECK(body["messages"][0]["id"].GetInt() == 7);
  CHECK(body["messages"][0]["ok"]["offset"].GetUint64() == 1);
  auto e = subscriber.next_message();
  REQUIRE(e);
  CHECK(parse(e->data)["data"]["v"].GetInt() == 42);

  c.post("/poll", R"({"op":"publish","id":8,"topic":"closed","data":1})");
  auto refused = c.response();
  REQUIRE(refused);
  auto rb = parse(refused->body);
  REQUIRE(rb["messages"].Size() == 1);
  CHECK(std::string(rb["messages"][0]["error"]["code"].GetString()) == "forbidden");

  c.post("/poll", R"({"op":"ping","id":9})");
  auto pong = c.response();
  REQUIRE(pong);
  CHECK(parse(pong->body)["messages"][0]["id"].GetInt() == 9);

  c.post("/poll", R"({"op":"subscribe","id":10,"topic":"open"})");
  auto sub = c.response();
  REQUIRE(sub);
  CHECK(std::string(parse(sub->body)["messages"][0]["error"]["code"].GetString()) == "bad_request");

  c.post("/poll", "not json");
  auto invalid = c.response();
  REQUIRE(invalid);
  CHECK(std::string(parse(invalid->body)["messages"][0]["error"]["code"].GetString()) == "invalid_json");
  CHECK(server.transport.metrics().posts >= 3);
}

TEST_CASE("bad requests get 4xx and the server stays healthy") {
  HttpTransportSettings h = loopback();
  h.max_header_bytes = 1024;
  h.max_body_bytes = 1024;
  h.max_request_line_bytes = 512;
  Server server(with_threads(2), h);

  struct Case {
    std::string request;
    int status;
  };
  const Case cases[] = {
      {"GARBAGE\r\n\r\n", 400},
      {std::string("\x16\x03\x01\x02\x00", 5), 400},  // a TLS ClientHello, answered without a line end
      {"GET /poll?topics=t HTTP/1.1\nHost: x\n\n", 400},  // bare LF
      {"GET /poll?topics=t HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n", 400},
      {"GET /poll?topics=t HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(2000, 'a') + "\r\n\r\n", 431},
      {"GET /" + std::string(1000, 'a') + " HTTP/1.1\r\nHost: x\r\n\r\n", 414},
      {"POST /poll HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n" + std::string(5000, 'x'), 413},
      {"GET /poll?topics=t&cursor=nonsense HTTP/1.1\r\nHost: x\r\n\r\n", 400},
      {"GET /sse?topics=t&cursor=t:e:x HTTP/1.1\r\nHost: x\r\n\r\n", 400},
      {"GET /sse HTTP/1.1\r\nHost: x\r\n\r\n", 400},
      {"GET /poll?topics=a,,b HTTP/1.1\r\nHost: x\r\n\r\n", 400},
      {"GET /poll?topics=t&timeout=soon HTTP/1.1\r\nHost: x\r\n\r\n", 400},
      {"GET /poll?topics=t&recent=t:-1:0 HTTP/1.1\r\nHost: x\r\n\r\n", 400},
      {"DELETE /poll HTTP/1.1\r\nHost: x\r\n\r\n", 405},
      {"POST /sse HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", 405},
      {"GET /elsewhere HTTP/1.1\r\nHost: x\r\n\r\n", 404},
  };
  for (const Case& bad : cases) {
    CAPTURE(bad.request.substr(0, 60));
    HttpClient c(server.port());
    c.send(bad.request);
    auto r = c.response();
    REQUIRE(r);
    CHECK(r->status == bad.status);
  }
  const auto m = server.transport.metrics();
  CHECK(m.refused_malformed == 4);
  CHECK(m.refused_too_large == 3);
  CHECK(m.refused_bad_parameters == 6);
  CHECK(m.refused_method == 2);
  CHECK(m.refused_not_found == 1);

  // Healthy: a normal poll still works.
  HttpClient c(server.port());
  c.get("/poll?topics=t&timeout=10");
  auto ok = c.response();
  REQUIRE(ok);
  CHECK(ok->status == 200);
}

TEST_CASE("a request that never completes is cut off after request_timeout") {
  HttpTransportSettings h = loopback();
  h.request_timeout = 100ms;
  Server server(with_threads(1), h);
  HttpClient c(server.port());
  c.send("GET /poll?topics=t HTTP/1.1\r\nHost: x\r\n");  // no end of head
  auto r = c.response();
  REQUIRE(r);
  CHECK(r->status == 408);
  CHECK(c.closed_by_server());
  CHECK(server.transport.metrics().refused_timeout == 1);
}

TEST_CASE("authentication: the token rules of the WebSocket transport, 401 with a JSON body") {
  BrokerSettings b = with_threads(1);
  b.authenticator = [](const HandshakeRequest& r) {
    if (r.token() == "good") return AuthResult::accept(Principal{"u", {}, {}, {}});
    return AuthResult::refuse("token refused");
  };
  Server server(std::move(b));
  HttpClient c(server.port());
  c.get("/poll?topics=t&timeout=10&token=bad");
  auto r = c.response();
  REQUIRE(r);
  CHECK(r->status == 401);
  auto body = parse(r->body);
  CHECK(std::string(body["error"]["code"].GetString()) == "unauthorized");
  CHECK(std::string(body["error"]["message"].GetString()) == "token refused");

  HttpClient sse(server.port());
  sse.get("/sse?topics=t");
  auto refused = sse.response();
  REQUIRE(refused);
  CHECK(refused->status == 401);

  for (const std::string& how : {std::string("&token=good"), std::string()}) {
    HttpClient ok(server.port());
    ok.get("/poll?topics=t&timeout=10" + how, how.empty() ? "Authorization: Bearer good\r\n" : "");
    auto accepted = ok.response();
    REQUIRE(accepted);
    CHECK(accepted->status == 200);
  }
  CHECK(server.transport.metrics().refused_unauthorized == 2);
}

// Each SSE stream, poll and POST is a new session reading every topic it
// names: the allowance is the client's (principal, or address when
// anonymous), not the request's.
TEST_CASE("session requests per client: beyond the allowance 429 with Retry-After; other clients are served") {
  BrokerSettings b = with_threads(1);
  b.authenticator = [](const HandshakeRequest& r) {
    return AuthResult::accept(Principal{r.token(), {}, {}});  // "": anonymous
  };
  HttpTransportSettings t = loopback();
  t.max_session_requests_per_second = 2;  // bursts of 4
  Server server(std::move(b), t);
  auto status_of = [&](const std::string& token) {
    HttpClient c(server.port());
    c.get("/poll?topics=t" + (token.empty() ? std::string() : "&token=" + token));
    auto r = c.response();
    REQUIRE(r);
    return std::make_pair(r->status, r->header("retry-after"));
  };
  for (const std::string& client : {std::string("alice"), std::string()}) {
    CAPTURE(client);
    for (int i = 0; i < 4; ++i) CHECK(status_of(client).first == 200);
    auto [status, retry_after] = status_of(client);
    CHECK(status == 429);
    CHECK(retry_after == "1");
  }
  CHECK(status_of("bob").first == 200);
  CHECK(server.transport.metrics().refused_rate_limited == 2);
  CHECK(server.broker.metrics().errors(Errc::rate_limited) == 2);
}

TEST_CASE("poll: timeout=0 with nothing to say waits min_poll_timeout instead of answering at once") {
  HttpTransportSettings t = loopback();
  t.min_poll_timeout = 300ms;
  Server server(with_threads(1), t);
  server.broker.publish("t", value(1));
  HttpClient c(server.port());
  c.get("/poll?topics=t");
  auto first = c.response();
  REQUIRE(first);
  const std::string cursor = parse(first->body)["cursor"].GetString();
  const auto asked = std::chrono::steady_clock::now();
  c.get("/poll?topics=t&timeout=0&cursor=" + cursor);
  auto r = c.response();
  REQUIRE(r);
  CHECK(std::chrono::steady_clock::now() - asked >= 300ms);
  CHECK(parse(r->body)["messages"].Size() == 0);
}

// Cross-site request forgery with the user's cookie: any page can make a
// browser send a text/plain POST (no CORS preflight) or a GET to this origin
// with its cookies attached. A cookie proves nothing about who is asking
// unless an Origin the operator listed says where the page came from.
TEST_CASE("a livecast_token cookie counts only with an Origin on a configured allow-list") {
  BrokerSettings b = with_threads(1);
  b.authenticator = [](const HandshakeRequest& r) {
    if (r.token() == "good") return AuthResult::accept(Principal{"u", {}, {}, {}});
    return AuthResult::refuse("token refused");
  };
  b.authorizer = Authorizer{};
  b.authorizer.allow_subscribe("*").allow_publish("*");
  const std::string publish = R"({"op":"publish","id":1,"topic":"t","data":{"v":1}})";
  // What a form or fetch() of a hostile page sends: no preflight for text/plain.
  auto text_post = [&](const std::string& target, const std::string& headers) {
    return "POST " + target + " HTTP/1.1\r\nHost: test\r\nContent-Type: text/plain\r\nContent-Length: " +
           std::to_string(publish.size()) + "\r\n" + headers + "\r\n" + publish;
  };
  const std::string cookie = "Cookie: other=1; livecast_token=good\r\n";
  const std::string evil = "Origin: https://evil.example\r\n";

  SUBCASE("default settings: a forged POST, SSE stream or poll with the user's cookie gets 401") {
    HttpTransportSettings h = loopback();
    std::mutex mutex;  // the handler runs on a shard thread
    std::string handler_token = "unset", handler_cookie;
    h.http_handler = [&](const HttpRequest& r) {
      std::lock_guard<std::mutex> lock(mutex);
      handler_token = r.token();
      handler_cookie = r.cookie("livecast_token");
      return HttpResponse{200, "text/plain", "page", {}};
    };
    Server server(std::move(b), h);

    HttpClient forged(server.port());
    forged.send(text_post("/poll", evil + cookie));
    auto posted = forged.response();
    REQUIRE(posted);
    CHECK(posted->status == 401);
    CHECK(server.broker.metrics().publications == 0);

    HttpClient sse(server.port());
    sse.get("/sse?topics=t", evil + cookie);
    auto streamed = sse.response();
    REQUIRE(streamed);
    CHECK(streamed->status == 401);

    HttpClient poll(server.port());
    poll.get("/poll?topics=t&timeout=10", cookie);  // no Origin at all
    auto polled = poll.response();
    REQUIRE(polled);
    CHECK(polled->status == 401);
    CHECK(server.transport.metrics().refused_unauthorized == 3);
    CHECK(server.transport.metrics().ignored_cookie_credentials == 3);

    // The host's handler follows the same rule, and still sees the cookie itself.
    HttpClient page(server.port());
    page.get("/", cookie);
    auto served = page.response();
    REQUIRE(served);
    CHECK(served->status == 200);
    {
      std::lock_guard<std::mutex> lock(mutex);
      CHECK(handler_token.empty());
      CHECK(handler_cookie == "good");
    }

    // A token the page itself holds is not ambient: it still counts.
    HttpClient by_query(server.port());
    by_query.send(text_post("/poll?token=good", evil));
    auto accepted = by_query.response();
    REQUIRE(accepted);
    CHECK(accepted->status == 200);
    CHECK(server.broker.metrics().publications == 1);
  }
  SUBCASE("with allowed_origins: the cookie counts from a listed Origin, not from a request without one") {
    HttpTransportSettings h = loopback();
    // "null" is what any site's sandboxed frame sends: listed, it may connect,
    // but it never vouches for a cookie.
    h.allowed_origins = {"https://dash.example", "null"};
    Server server(std::move(b), h);

    HttpClient dashboard(server.port());
    dashboard.send(text_post("/poll", "Origin: https://dash.example\r\n" + cookie));
    auto posted = dashboard.response();
    REQUIRE(posted);
    CHECK(posted->status == 200);
    CHECK(posted->header("access-control-allow-credentials") == "true");
    CHECK(server.broker.metrics().publications == 1);

    HttpClient no_origin(server.port());
    no_origin.get("/poll?topics=t&timeout=10", cookie);
    auto refused = no_origin.response();
    REQUIRE(refused);
    CHECK(refused->status == 401);

    HttpClient sandboxed(server.port());
    sandboxed.send(text_post("/poll", "Origin: null\r\n" + cookie));
    auto forged = sandboxed.response();
    REQUIRE(forged);
    CHECK(forged->status == 401);
    CHECK(server.broker.metrics().publications == 1);
    CHECK(server.transport.metrics().refused_unauthorized == 2);
    CHECK(server.transport.metrics().ignored_cookie_credentials == 2);
  }
}

TEST_CASE("CORS: an allowed Origin is reflected, a foreign one gets 403, preflights are answered") {
  HttpTransportSettings h = loopback();
  h.allowed_origins = {"https://dash.example.com"};
  Server server(with_threads(1), h);

  HttpClient foreign(server.port());
  foreign.get("/poll?topics=t&timeout=10", "Origin: https://evil.example\r\n");
  auto refused = foreign.response();
  REQUIRE(refused);
  CHECK(refused->status == 403);

  HttpClient c(server.port());
  c.get("/poll?topics=t&timeout=10", "Origin: https://dash.example.com\r\n");
  auto r = c.response();
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(r->header("access-control-allow-origin") == "https://dash.example.com");
  CHECK(r->header("vary") == "Origin");

  c.send("OPTIONS /poll HTTP/1.1\r\nHost: x\r\nOrigin: https://dash.example.com\r\n"
         "Access-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: content-type, authorization\r\n\r\n");
  auto pre = c.response();
  REQUIRE(pre);
  CHECK(pre->status == 204);
  CHECK(pre->header("access-control-allow-origin") == "https://dash.example.com");
  CHECK(pre->header("access-control-allow-methods").find("POST") != std::string::npos);
  CHECK(pre->header("access-control-allow-headers").find("Authorization") != std::string::npos);
  CHECK(pre->header("access-control-allow-headers").find("Content-Type") != std::string::npos);
  const auto m = server.transport.metrics();
  CHECK(m.refused_origin == 1);
  CHECK(m.preflights == 1);
}

TEST_CASE("a slow SSE reader under the disconnect policy is closed while another reader gets everything") {
  BrokerSettings b = with_threads(2);
  b.session.send_queue_bytes = 256 * 1024;
  b.session.slow_consumer_policy = SlowConsumerPolicy::disconnect;
  HttpTransportSettings h = loopback();
  h.socket_send_buffer_bytes = 64 * 1024;  // the queue, not the kernel, holds the backlog
  Server server(std::move(b), h);

  HttpClient slow(server.port(), 4096);
  slow.get("/sse?topics=t");
  HttpClient fast(server.port());
  fast.get("/sse?topics=t");
  expect_stream_start(fast);
  REQUIRE(fast.next_message());  // reply
  REQUIRE(eventually([&] { return server.broker.metrics().subscriptions_active == 2; }));

  const std::string payload = "{\"pad\":\"" + std::string(8000, 'x') + "\"}";
  constexpr int batches = 200, per_batch = 10;
  int received = 0;
  std::uint64_t last_offset = 0;
  bool in_order = true;
  for (int batch = 0; batch < batches; ++batch) {
    for (int i = 0; i < per_batch; ++i) server.broker.publish("t", payload);
    // The fast reader keeps up: read this batch before publishing the next.
    while (received < (batch + 1) * per_batch) {
      auto e = fast.next_message();
      REQUIRE(e);
      auto p = parse(e->data);
      REQUIRE(is_publication(p));
      in_order = in_order && p["offset"].GetUint64() == last_offset + 1;
      last_offset = p["offset"].GetUint64();
      ++received;
    }
    if (server.broker.metrics().slow_consumer_closes > 0 && batch > 20) break;
  }
  CHECK(in_order);
  CHECK(server.broker.metrics().slow_consumer_closes == 1);

  // The slow reader finds either the close event or the end of its socket.
  bool saw_close = false;
  REQUIRE(slow.stream_head());
  while (auto e = slow.next_event(3s)) {
    if (e->event == "close") {
      saw_close = parse(e->data)["code"].GetInt() == 4008;
      break;
    }
  }
  CHECK((saw_close || slow.eof() || slow.stream_ended()));
}

TEST_CASE("write_timeout: an SSE reader that stopped reading is cut off and its session closed; a reader is not") {
  BrokerSettings b = with_threads(1);
  b.session.send_queue_bytes = 256 * 1024;
  // The queue drops what the stuck reader cannot take and never closes it:
  // only the write timeout can.
  b.session.slow_consumer_policy = SlowConsumerPolicy::drop_oldest;
  HttpTransportSettings h = loopback();
  h.socket_send_buffer_bytes = 4096;  // full after a few events
  h.write_timeout = 300ms;
  Server server(std::move(b), h);

  HttpClient stuck(server.port(), 4096);  // never reads
  stuck.get("/sse?topics=t");
  HttpClient reader(server.port());
  reader.get("/sse?topics=t");
  expect_stream_start(reader);
  REQUIRE(reader.next_message());  // reply
  REQUIRE(eventually([&] { return server.broker.metrics().subscriptions_active == 2; }));
  CHECK(server.transport.metrics().sse_active == 2);

  // Far more than both buffers of the stuck connection hold, paced by the reader.
  const std::string payload = "{\"pad\":\"" + std::string(8000, 'x') + "\"}";
  for (int batch = 0; batch < 20; ++batch) {
    for (int i = 0; i < 10; ++i) REQUIRE(!server.broker.publish("t", payload));
    for (int i = 0; i < 10; ++i) REQUIRE(reader.next_message());
  }
  // Not a byte read from the stuck client until the server gave up on it.
  REQUIRE(eventually([&] { return server.transport.metrics().sse_active == 1; }));
  CHECK(server.transport.metrics().write_timeouts == 1);
  CHECK(eventually([&] { return server.broker.metrics().sessions_active == 1; }));
  CHECK(stuck.closed_by_server());  // what was on its way, then the end

  // The reader's stream is older than the timeout, and alive: the timeout
  // measures a write, not a stream.
  REQUIRE(!server.broker.publish("t", value(1)));
  auto e = reader.next_message();
  REQUIRE(e);
  CHECK(parse(e->data)["data"]["v"].GetInt() == 1);
  CHECK(server.transport.metrics().write_timeouts == 1);
}

TEST_CASE("stop() ends SSE streams with close 1001 and answers waiting polls") {
  Server server;
  HttpClient sse(server.port());
  sse.get("/sse?topics=t");
  expect_stream_start(sse);
  REQUIRE(sse.next_message());
  HttpClient poll(server.port());
  poll.get("/poll?topics=t&timeout=30000&cursor=t:" + std::string("x:0"));
  auto first = poll.response();  // unknown epoch: answered at once
  REQUIRE(first);
  const std::string cursor = parse(first->body)["cursor"].GetString();
  const auto before = server.broker.metrics().subscriptions_active;
  poll.get("/poll?topics=t&timeout=30000&cursor=" + cursor);
  REQUIRE(eventually([&] { return server.broker.metrics().subscriptions_active > before; }));

  server.transport.stop();
  auto close = sse.next_message();
  REQUIRE(close);
  CHECK(close->event == "close");
  auto data = parse(close->data);
  CHECK(data["code"].GetInt() == 1001);
  while (!sse.stream_ended() && sse.receive()) {
  }
  CHECK(sse.stream_ended());
  auto answered = poll.response();
  REQUIRE(answered);
  CHECK(answered->status == 200);
  CHECK(answered->header("connection") == "close");
  CHECK(server.broker.metrics().sessions_active == 0);
}

TEST_CASE("other paths go to the http_handler") {
  HttpTransportSettings h = loopback();
  h.http_handler = [](const HttpRequest& r) {
    return HttpResponse{200, "text/plain", "page " + r.path, {{"X-Page", "1"}}};
  };
  Server server(with_threads(1), h);
  HttpClient c(server.port());
  c.get("/index.html");
  auto r = c.response();
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(r->body == "page /index.html");
  CHECK(r->header("x-page") == "1");

  SUBCASE("a header or content type with a line break or an invalid name is left out") {
    HttpTransportSettings bad = loopback();
    bad.http_handler = [](const HttpRequest&) {
      return HttpResponse{200, "text/plain\r\nSet-Cookie: a=1", "page",
                          {{"X-Ok", "1"}, {"X-Split", "v\r\nSet-Cookie: b=2"}, {"Bad Name", "v"}, {"X:Colon", "v"}}};
    };
    Server other(with_threads(1), bad);
    HttpClient client(other.port());
    client.get("/");
    auto answer = client.response();
    REQUIRE(answer);
    CHECK(answer->status == 200);
    CHECK(answer->body == "page");
    CHECK(answer->header("x-ok") == "1");
    CHECK(answer->header("set-cookie").empty());
    CHECK(answer->header("content-type").empty());
    CHECK(answer->header("x-split").empty());
    CHECK(answer->headers.count("bad name") == 0);
    CHECK(answer->headers.count("x") == 0);
  }
}

TEST_CASE("max_connections: one over the limit gets 503, the others are served") {
  HttpTransportSettings h = loopback();
  h.max_connections = 1;
  Server server(with_threads(1), h);
  HttpClient stream(server.port());
  stream.get("/sse?topics=t");
  expect_stream_start(stream);
  HttpClient extra(server.port());
  auto refused = extra.response();
  REQUIRE(refused);
  CHECK(refused->status == 503);
  CHECK(extra.closed_by_server());
  CHECK(server.transport.metrics().refused_too_many_connections == 1);
  REQUIRE(stream.next_message());  // the first is still served
  CHECK(eventually([&] { return server.transport.metrics().connections_active == 1; }));
}

TEST_CASE("max_connections_per_address: a third from one address gets 503, another address is served") {
  HttpTransportSettings h = loopback();
  h.max_connections_per_address = 2;
  Server server(with_threads(2), h);
  HttpClient first(server.port(), 0, "127.0.0.1");
  first.get("/sse?topics=t");
  expect_stream_start(first);
  auto second = std::make_unique<HttpClient>(server.port(), 0, "127.0.0.1");
  second->get("/sse?topics=t");
  expect_stream_start(*second);
  {
    HttpClient third(server.port(), 0, "127.0.0.1");
    auto refused = third.response();
    REQUIRE(refused);
    CHECK(refused->status == 503);
    CHECK(third.closed_by_server());
  }
  CHECK(server.transport.metrics().refused_per_address == 1);
  CHECK(server.transport.metrics().refused_too_many_connections == 0);

  // Loopback answers for all of 127.0.0.0/8 on Linux: another client.
  HttpClient elsewhere(server.port(), 0, "127.0.0.2");
  elsewhere.get("/sse?topics=t");
  expect_stream_start(elsewhere);

  second.reset();  // its place goes back to 127.0.0.1
  REQUIRE(eventually([&] { return server.transport.metrics().connections_active == 2; }));
  HttpClient again(server.port(), 0, "127.0.0.1");
  again.get("/sse?topics=t");
  expect_stream_start(again);
  REQUIRE(first.next_message());  // the first is still served
  const HttpTransportMetrics m = server.transport.metrics();
  CHECK(m.refused_per_address == 1);
  CHECK(m.refused() == 1);
}

TEST_CASE("POST with Expect: 100-continue gets the go-ahead before the body") {
  Server server(with_threads(1));
  HttpClient c(server.port());
  const std::string body = R"({"op":"ping","id":1})";
  c.send("POST /poll HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\n\r\n");
  auto go = c.stream_head();
  REQUIRE(go);
  CHECK(go->status == 100);
  c.send(body);
  auto r = c.response();
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(parse(r->body)["messages"][0]["id"].GetInt() == 1);
}

TEST_CASE("a throwing http_handler or Authenticator gets 500, is reported, and the server keeps serving") {
  std::atomic<int> reported{0};
  BrokerSettings b = with_threads(1);
  b.on_error = [&](const std::string&, std::error_code) { ++reported; };
  b.authenticator = [](const HandshakeRequest& r) -> AuthResult {
    if (r.token() == "boom") throw std::runtime_error("token store down");
    return AuthResult::accept(Principal{});
  };
  HttpTransportSettings h = loopback();
  h.http_handler = [](const HttpRequest& r) -> HttpResponse {
    if (r.path == "/boom") throw std::runtime_error("template missing");
    return HttpResponse{200, "text/plain", "fine", {}};
  };
  Server server(b, h);
  HttpClient c(server.port());
  c.get("/boom");
  auto r = c.response();
  REQUIRE(r);
  CHECK(r->status == 500);
  c.get("/poll?topics=t&token=boom&timeout=0");
  auto refused = c.response();
  REQUIRE(refused);
  CHECK(refused->status == 500);
  c.get("/ok");
  auto ok = c.response();
  REQUIRE(ok);
  CHECK(ok->status == 200);
  CHECK(server.broker.metrics().callback_errors == 2);
  CHECK(reported == 2);
}

TEST_CASE("HEAD to the http_handler gets the head only; the connection is reused") {
  HttpTransportSettings h = loopback();
  h.http_handler = [](const HttpRequest&) { return HttpResponse{200, "text/plain", "hello", {}}; };
  Server server(with_threads(1), h);
  HttpClient c(server.port());
  c.send("HEAD / HTTP/1.1\r\nHost: x\r\n\r\n");
  auto head = c.stream_head();
  REQUIRE(head);
  CHECK(head->status == 200);
  CHECK(head->header("content-length") == "5");
  c.get("/");
  auto r = c.response();
  REQUIRE(r);
  CHECK(r->body == "hello");  // no stray body bytes from the HEAD answer before it
  CHECK(server.transport.metrics().handler_requests == 2);
}

TEST_CASE("SSE to an HTTP/1.0 client is close-delimited, not chunked") {
  Server server(with_threads(1));
  server.broker.publish("t", value(1));
  HttpClient c(server.port());
  c.send("GET /sse?topics=t HTTP/1.0\r\n\r\n");
  auto head = c.stream_head();
  REQUIRE(head);
  CHECK(head->status == 200);
  CHECK(head->header("transfer-encoding").empty());
  CHECK(head->header("connection") == "close");
  CHECK(c.wait_for_raw("retry: 2000\n\n"));
  CHECK(c.wait_for_raw("\"data\":{\"v\":1}}\n\n"));
  server.transport.stop();
  CHECK(c.wait_for_raw("event: close\ndata: {\"code\":1001"));
  CHECK(c.closed_by_server());
}

TEST_CASE("poll: an answer stops at max_poll_response_bytes and the next poll continues from its cursor") {
  HttpTransportSettings h = loopback();
  h.max_poll_response_bytes = 1000;
  Server server(with_threads(1), h);
  HttpClient c(server.port());
  c.get("/poll?topics=t&timeout=2000");
  auto first = c.response();  // no publication yet: the reply alone
  REQUIRE(first);
  std::string cursor = parse(first->body)["cursor"].GetString();
  const std::string padding(300, 'x');
  for (int i = 1; i <= 10; ++i) server.broker.publish("t", R"({"v":)" + std::to_string(i) + R"(,"pad":")" + padding + "\"}");

  std::vector<int> received;
  int answers = 0;
  while (received.size() < 10 && answers < 10) {
    c.get("/poll?topics=t&timeout=2000&cursor=" + cursor);
    auto r = c.response();
    REQUIRE(r);
    ++answers;
    CHECK(r->body.size() < 1000 + 400);
    auto body = parse(r->body);
    for (const auto& m : body["messages"].GetArray())
      if (is_publication(m)) received.push_back(m["data"]["v"].GetInt());
    cursor = body["cursor"].GetString();
  }
  CHECK(answers >= 3);
  REQUIRE(received.size() == 10);
  for (int i = 0; i < 10; ++i) CHECK(received[static_cast<std::size_t>(i)] == i + 1);
}
