// WebSocketTransport end to end on loopback: a Broker with its own threads
// (or on a host io_context), the transport on 127.0.0.1 port 0, and real
// clients: websocketpp's, and hand-made ones that misbehave.
#include "transport_server.hpp"
#include "ws_test_client.hpp"

#include <livecast/broker.hpp>
#include <livecast/websocket_transport.hpp>

#include <doctest/doctest.h>

#include <asio/executor_work_guard.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>

#include <websocketpp/utf8_validator.hpp>

#include <atomic>
#include <fstream>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

using namespace livecast;
using livecast_test::eventually;
using livecast_test::RawWebSocket;
using livecast_test::WsClient;

namespace {

WebSocketSettings loopback() { return livecast_test::loopback_settings<WebSocketSettings>(); }

using livecast_test::with_threads;
using Server = livecast_test::TransportServer<WebSocketTransport, WebSocketSettings>;

// A broker on a host io_context run by one thread of the test. The transport
// starts before that thread runs and stops on it, as the host-mode rules ask.
struct HostServer {
  explicit HostServer(BrokerSettings b = {}, WebSocketSettings w = loopback())
      : broker(io, std::move(b)), transport(broker, std::move(w)), work(io.get_executor()) {
    transport.start();
    thread = std::thread([this] { io.run(); });
  }
  ~HostServer() {
    std::promise<void> stopped;
    asio::post(io, [&] {
      transport.stop();
      stopped.set_value();
    });
    stopped.get_future().wait();
    work.reset();
    io.stop();
    thread.join();
  }
  std::uint16_t port() const { return transport.port(); }

  asio::io_context io;
  Broker broker;
  WebSocketTransport transport;
  asio::executor_work_guard<asio::io_context::executor_type> work;
  std::thread thread;
};

// The most a TCP socket may buffer for sending (Linux: tcp_wmem's maximum).
std::size_t kernel_send_buffer_max() {
  std::ifstream in("/proc/sys/net/ipv4/tcp_wmem");
  std::size_t min = 0, initial = 0, max = 0;
  if (in >> min >> initial >> max && max > 0) return max;
  return 4 * 1024 * 1024;
}

std::string subscribe(std::int64_t id, const std::string& topic) {
  return R"({"op":"subscribe","id":)" + std::to_string(id) + R"(,"topic":")" + topic + R"("})";
}
std::string ping(std::int64_t id) { return R"({"op":"ping","id":)" + std::to_string(id) + "}"; }
std::string value(int v) { return R"({"v":)" + std::to_string(v) + "}"; }

bool is_publication(const rapidjson::Document& d) {
  return d.HasMember("topic") && d.HasMember("offset") && !d.HasMember("ok") && !d.HasMember("error");
}
std::int64_t id_of(const rapidjson::Document& d) { return d.HasMember("id") && d["id"].IsInt64() ? d["id"].GetInt64() : -1; }
std::string error_code_of(const rapidjson::Document& d) {
  if (!d.HasMember("error") || !d["error"].IsObject() || !d["error"].HasMember("code")) return {};
  return d["error"]["code"].GetString();
}

// Receives the reply to a subscribe and checks it succeeded.
rapidjson::Document expect_subscribed(WsClient& c, std::int64_t id, const std::string& topic) {
  auto reply = c.next_json();
  REQUIRE(reply);
  REQUIRE(reply->HasMember("ok"));
  CHECK(id_of(*reply) == id);
  const auto& ok = (*reply)["ok"];
  CHECK(std::string(ok["topic"].GetString()) == topic);
  return std::move(*reply);
}

// The client answers a ping next: nothing else was queued before it.
void expect_ping_reply_next(WsClient& c, std::int64_t id) {
  c.send(ping(id));
  auto reply = c.next_json();
  REQUIRE(reply);
  CHECK(id_of(*reply) == id);
  CHECK(reply->HasMember("ok"));
}

}  // namespace

TEST_CASE("subscribe: the reply, the snapshot, then live publications with offsets growing by one") {
  auto run = [](std::uint16_t port, auto publish) {
    publish("t", value(0));  // becomes the snapshot
    WsClient c(port);
    REQUIRE(c.wait_open());
    c.send(subscribe(1, "t"));
    auto reply = expect_subscribed(c, 1, "t");
    const auto& ok = reply["ok"];
    CHECK(ok["epoch"].IsString());
    CHECK(std::string(ok["epoch"].GetString()).size() > 0);
    CHECK(ok["offset"].GetUint64() == 1);
    CHECK(ok["recovered"].IsFalse());

    auto snapshot = c.next_json();
    REQUIRE(snapshot);
    REQUIRE(is_publication(*snapshot));
    CHECK((*snapshot)["offset"].GetUint64() == 1);
    CHECK((*snapshot)["data"]["v"].GetInt() == 0);

    for (int i = 1; i <= 20; ++i) publish("t", value(i));
    std::uint64_t last = 1;
    for (int i = 1; i <= 20; ++i) {
      auto p = c.next_json();
      REQUIRE(p);
      REQUIRE(is_publication(*p));
      CHECK((*p)["offset"].GetUint64() == last + 1);
      CHECK((*p)["data"]["v"].GetInt() == i);
      last = (*p)["offset"].GetUint64();
    }
    expect_ping_reply_next(c, 2);
  };

  SUBCASE("broker with two threads of its own") {
    Server server;
    run(server.port(), [&](const std::string& t, const std::string& v) { REQUIRE_FALSE(server.broker.publish(t, v)); });
  }
  SUBCASE("broker on the host's io_context") {
    HostServer server;
    run(server.port(), [&](const std::string& t, const std::string& v) { REQUIRE_FALSE(server.broker.publish(t, v)); });
  }
  SUBCASE("frames gathered for 2 ms before each write (flush_delay)") {
    WebSocketSettings w = loopback();
    w.flush_delay = std::chrono::milliseconds(2);
    Server server(with_threads(2), w);
    run(server.port(), [&](const std::string& t, const std::string& v) { REQUIRE_FALSE(server.broker.publish(t, v)); });
  }
}

TEST_CASE("the livecast.v1 subprotocol is selected when offered; unknown ones are refused") {
  Server server;
  WsClient offered(server.port(), {"/ws", {}, {"livecast.v1"}});
  REQUIRE(offered.wait_open());
  CHECK(offered.response_header("Sec-WebSocket-Protocol") == "livecast.v1");
  expect_ping_reply_next(offered, 1);

  WsClient unknown(server.port(), {"/ws", {}, {"mqtt"}});
  CHECK_FALSE(unknown.wait_open());
  CHECK(unknown.http_status() == 400);

  WsClient wrong_path(server.port(), {"/elsewhere", {}, {}});
  CHECK_FALSE(wrong_path.wait_open());
  CHECK(wrong_path.http_status() == 404);
}

TEST_CASE("recovery: a returning client gets exactly what it missed, then live publications") {
  Server server;
  std::string epoch;
  {
    WsClient a(server.port());
    REQUIRE(a.wait_open());
    a.send(subscribe(1, "t"));
    auto reply = expect_subscribed(a, 1, "t");
    epoch = reply["ok"]["epoch"].GetString();
    CHECK(reply["ok"]["offset"].GetUint64() == 0);
    for (int i = 1; i <= 3; ++i) REQUIRE_FALSE(server.broker.publish("t", value(i)));
    for (std::uint64_t offset = 1; offset <= 3; ++offset) {
      auto p = a.next_json();
      REQUIRE(p);
      CHECK((*p)["offset"].GetUint64() == offset);
    }
  }
  // Missed while disconnected.
  for (int i = 4; i <= 6; ++i) REQUIRE_FALSE(server.broker.publish("t", value(i)));

  WsClient b(server.port());
  REQUIRE(b.wait_open());
  b.send(R"({"op":"subscribe","id":2,"topic":"t","recover":{"epoch":")" + epoch + R"(","offset":3}})");
  auto reply = expect_subscribed(b, 2, "t");
  CHECK(reply["ok"]["recovered"].IsTrue());
  CHECK(reply["ok"]["offset"].GetUint64() == 6);
  for (std::uint64_t offset = 4; offset <= 6; ++offset) {
    auto p = b.next_json();
    REQUIRE(p);
    REQUIRE(is_publication(*p));
    CHECK((*p)["offset"].GetUint64() == offset);
    CHECK((*p)["data"]["v"].GetInt() == static_cast<int>(offset));
  }
  REQUIRE_FALSE(server.broker.publish("t", value(7)));
  auto live = b.next_json();
  REQUIRE(live);
  CHECK((*live)["offset"].GetUint64() == 7);
  expect_ping_reply_next(b, 3);  // and no duplicate before it

  SUBCASE("a wrong epoch gets the snapshot instead") {
    WsClient c(server.port());
    REQUIRE(c.wait_open());
    c.send(R"({"op":"subscribe","id":4,"topic":"t","recover":{"epoch":"not-the-epoch","offset":3}})");
    auto r = expect_subscribed(c, 4, "t");
    CHECK(r["ok"]["recovered"].IsFalse());
    auto snapshot = c.next_json();
    REQUIRE(snapshot);
    CHECK((*snapshot)["offset"].GetUint64() == 7);
    expect_ping_reply_next(c, 5);
  }
}

TEST_CASE("authentication and authorization at the handshake and on subscribe") {
  BrokerSettings s = with_threads(2);
  s.authenticator = [](const HandshakeRequest& r) {
    if (r.token() != "viewer-acme") return AuthResult::refuse("bad token");
    Principal p;
    p.id = "v1";
    p.roles = {"viewer"};
    p.claims["org"] = "acme";
    return AuthResult::accept(p);
  };
  s.authorizer = Authorizer().allow_subscribe("org:{org}:*").deny_subscribe("org:{org}:transactions", "viewer");
  Server server(s);

  WsClient viewer(server.port(), {"/ws?token=viewer-acme", {}, {}});
  REQUIRE(viewer.wait_open());
  viewer.send(subscribe(1, "org:acme:transactions"));
  auto refused = viewer.next_json();
  REQUIRE(refused);
  CHECK(id_of(*refused) == 1);
  CHECK(error_code_of(*refused) == "forbidden");
  viewer.send(subscribe(2, "org:globex:kpi"));
  auto other_org = viewer.next_json();
  REQUIRE(other_org);
  CHECK(error_code_of(*other_org) == "forbidden");
  viewer.send(subscribe(3, "org:acme:kpi"));
  expect_subscribed(viewer, 3, "org:acme:kpi");

  SUBCASE("a percent-encoded token in the query is decoded") {
    WsClient encoded(server.port(), {"/ws?token=viewer%2Dacme", {}, {}});
    REQUIRE(encoded.wait_open());
    expect_ping_reply_next(encoded, 1);
  }
  SUBCASE("a bearer header works too") {
    WsClient bearer(server.port(), {"/ws", {{"Authorization", "Bearer viewer-acme"}}, {}});
    REQUIRE(bearer.wait_open());
    expect_ping_reply_next(bearer, 1);
  }
  SUBCASE("a refused token gets close code 4001 and no session") {
    const auto opened_before = server.broker.metrics().sessions_opened;
    WsClient intruder(server.port(), {"/ws?token=guess", {}, {}});
    REQUIRE(intruder.wait_ended());
    CHECK(intruder.close_code() == static_cast<int>(CloseCode::unauthorized));
    CHECK(server.broker.metrics().sessions_opened == opened_before);
    CHECK(server.broker.metrics().errors(Errc::unauthorized) == 1);
  }
}

// Cross-site WebSocket hijacking: a browser attaches the user's cookies to a
// handshake that any page may start, so a cookie proves nothing about who is
// asking unless an Origin the operator listed says where the page came from.
TEST_CASE("a livecast_token cookie counts only with an Origin on a configured allow-list") {
  BrokerSettings s = with_threads(1);
  s.authenticator = [](const HandshakeRequest& r) {
    if (r.token() != "good") return AuthResult::refuse("bad token");
    return AuthResult::accept(Principal{"u", {}, {}, {}});
  };
  auto handshake = [](const std::string& resource, const std::string& origin) {
    livecast_test::WsOptions o;
    o.resource = resource;
    o.headers.emplace_back("Cookie", "livecast_token=good");
    if (!origin.empty()) o.headers.emplace_back("Origin", origin);
    return o;
  };

  SUBCASE("default settings: a hostile page's handshake with the user's cookie gets 4001 and no session") {
    Server server(s);
    WsClient hijack(server.port(), handshake("/ws", "https://evil.example"));
    REQUIRE(hijack.wait_ended());
    CHECK(hijack.close_code() == static_cast<int>(CloseCode::unauthorized));
    CHECK(server.broker.metrics().sessions_opened == 0);
    CHECK(server.broker.metrics().errors(Errc::unauthorized) == 1);

    // A token the page itself holds is not ambient: it still counts.
    WsClient by_query(server.port(), handshake("/ws?token=good", "https://evil.example"));
    REQUIRE(by_query.wait_open());
    expect_ping_reply_next(by_query, 1);
    CHECK(server.broker.metrics().sessions_opened == 1);
  }
  SUBCASE("with allowed_origins: the cookie counts from a listed Origin, not from a request without one") {
    WebSocketSettings w = loopback();
    w.allowed_origins = {"https://dash.example"};
    Server server(s, w);
    WsClient dashboard(server.port(), handshake("/ws", "https://dash.example"));
    REQUIRE(dashboard.wait_open());
    expect_ping_reply_next(dashboard, 1);

    WsClient no_origin(server.port(), handshake("/ws", ""));
    REQUIRE(no_origin.wait_ended());
    CHECK(no_origin.close_code() == static_cast<int>(CloseCode::unauthorized));
    CHECK(server.broker.metrics().sessions_opened == 1);
  }
}

TEST_CASE("an opening handshake whose Sec-WebSocket-Key is not 16 bytes in base64 gets 400") {
  Server server(with_threads(1));
  auto status_for_key = [&](const std::string& key) {
    const std::string head = livecast_test::http_response_head(
        server.port(), "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                       "Sec-WebSocket-Key: " + key + "\r\nSec-WebSocket-Version: 13\r\n\r\n");
    return head.substr(0, head.find("\r\n"));
  };
  CHECK(status_for_key("short") == "HTTP/1.1 400 Bad Request");
  CHECK(status_for_key("MTIzNDU2Nzg5MDEyMzQ1====") == "HTTP/1.1 400 Bad Request");  // 24 characters, 15 bytes
  CHECK(status_for_key("dGhlIHNhbXBsZSBub25jZQ==") == "HTTP/1.1 101 Switching Protocols");  // RFC 6455's example
  REQUIRE(eventually([&] { return server.broker.metrics().sessions_opened >= 1; }));
  CHECK(server.broker.metrics().sessions_opened == 1);  // none for the refused two
}

TEST_CASE("a refusal's reason too long for a close frame is cut at a whole UTF-8 character") {
  std::string reason;
  for (int i = 0; i < 100; ++i) reason += "\xc3\xa9";  // é, 200 bytes; byte 123 ends the 62nd
  BrokerSettings s = with_threads(1);
  s.authenticator = [&reason](const HandshakeRequest&) { return AuthResult::refuse(reason); };
  Server server(s);

  RawWebSocket refused;
  REQUIRE(refused.connect(server.port()).find(" 101 ") != std::string::npos);
  auto close = refused.read_close_frame();
  REQUIRE(close);
  REQUIRE(close->payload.size() >= 2);
  CHECK(((static_cast<std::uint8_t>(close->payload[0]) << 8) | static_cast<std::uint8_t>(close->payload[1])) ==
        static_cast<int>(CloseCode::unauthorized));
  const std::string sent = close->payload.substr(2);
  CHECK(sent.size() <= 123);
  CHECK(websocketpp::utf8_validator::validate(sent));
  CHECK(sent == reason.substr(0, 122));  // 61 whole characters
}

TEST_CASE("a text message that is not UTF-8 closes the connection with 1007, fragmented or not") {
  BrokerSettings s = with_threads(1);
  Server server(s);

  // websocketpp refuses this one itself.
  RawWebSocket whole;
  REQUIRE(whole.connect(server.port()).find(" 101 ") != std::string::npos);
  whole.send_text("{\"op\":\"ping\"}\xc3\x28");
  CHECK(whole.read_close_code() == static_cast<int>(CloseCode::invalid_payload));

  // websocketpp checks each fragment's bytes but not that the message ends
  // on a whole character (found by fuzz_websocket): "€" cut after 2 bytes.
  RawWebSocket fragmented;
  REQUIRE(fragmented.connect(server.port()).find(" 101 ") != std::string::npos);
  fragmented.send_frame(0x1, "{\"op\":\"ping\",\"id\":1}", /*final_fragment=*/false);
  fragmented.send_frame(0x0, "\xe2\x82");
  CHECK(fragmented.read_close_code() == static_cast<int>(CloseCode::invalid_payload));

  // A fragmented message ending on a whole character is served.
  RawWebSocket fine;
  REQUIRE(fine.connect(server.port()).find(" 101 ") != std::string::npos);
  fine.send_frame(0x1, "{\"op\":\"ping\",\"id\":2,\"x\":\"\xe2", /*final_fragment=*/false);
  fine.send_frame(0x0, "\x82\xac\"}");
  auto reply = fine.read_frame();
  REQUIRE(reply);
  CHECK(reply->payload == R"({"id":2,"ok":{}})");
}

TEST_CASE("on an open connection: broken framing gets 1002, a ping its pong, a client's close its echo") {
  Server server(with_threads(1));
  auto open_one = [&](RawWebSocket& c) {
    REQUIRE(c.connect(server.port()).find(" 101 ") != std::string::npos);
    c.send_text(R"({"op":"ping","id":1})");
    auto reply = c.read_frame();
    REQUIRE(reply);
    CHECK(reply->payload == R"({"id":1,"ok":{}})");
  };

  RawWebSocket unmasked;
  open_one(unmasked);
  unmasked.send_raw(std::string("\x81\x02hi", 4));
  CHECK(unmasked.read_close_code() == static_cast<int>(CloseCode::protocol_error));

  RawWebSocket reserved_bit;
  open_one(reserved_bit);
  reserved_bit.send_frame(0x40 | 0x1, "{}");
  CHECK(reserved_bit.read_close_code() == static_cast<int>(CloseCode::protocol_error));

  RawWebSocket bad_close;
  open_one(bad_close);
  bad_close.send_frame(0x8, std::string("\x03\xed", 2));  // 1005 may not be sent
  CHECK(bad_close.read_close_code() == static_cast<int>(CloseCode::protocol_error));

  RawWebSocket polite;
  open_one(polite);
  polite.send_frame(0x9, "are you there");
  auto pong = polite.read_frame();
  REQUIRE(pong);
  CHECK(pong->opcode == 0xA);
  CHECK(pong->payload == "are you there");
  polite.send_frame(0x8, std::string("\x03\xe8", 2) + "bye");
  auto echo = polite.read_close_frame();
  REQUIRE(echo);
  CHECK(echo->payload == std::string("\x03\xe8", 2) + "bye");
  // Every one of them ends its session.
  CHECK(eventually([&] { return server.broker.metrics().sessions_active == 0; }));
  CHECK(eventually([&] { return server.transport.connection_count() == 0; }));
}

// Subscribes to "t" a raw client that will never read (small receive
// buffer) and a websocketpp client that reads everything.
void subscribe_slow_and_fast(Server& server, RawWebSocket& slow, WsClient& fast) {
  REQUIRE(slow.connect(server.port(), 4096).find(" 101 ") != std::string::npos);
  slow.send_text(subscribe(1, "t"));
  REQUIRE(fast.wait_open());
  fast.send(subscribe(1, "t"));
  expect_subscribed(fast, 1, "t");
  REQUIRE(eventually([&] { return server.broker.metrics().subscriptions_active == 2; }));
}

TEST_CASE("slow consumers: a client that stops reading does not hold back the others") {
  const std::string pad(1000, 'x');
  auto payload = [&](int i) { return R"({"n":)" + std::to_string(i) + R"(,"pad":")" + pad + R"("})"; };
  constexpr int batch = 16;
  // The kernel buffers up to tcp_wmem's maximum for the stuck socket before
  // the session's queue fills; publish until the policy acted, which must
  // happen soon after that (a close waiting on the stuck socket would not).
  constexpr int at_least = 2000;
  const int at_most = at_least + 2 * static_cast<int>(kernel_send_buffer_max() / 1024);

  auto run = [&](SlowConsumerPolicy policy, auto acted, std::uint64_t sessions_left) {
    BrokerSettings s = with_threads(2);
    s.session.send_queue_bytes = 64 * 1024;
    s.session.slow_consumer_policy = policy;
    Server server(s);

    RawWebSocket slow;
    WsClient fast(server.port());
    subscribe_slow_and_fast(server, slow, fast);

    // Paced by the fast client, so that only the slow one falls behind.
    std::uint64_t last = 0;
    int published = 0;
    while (published < at_most && (published < at_least || !acted(server.broker.metrics()))) {
      for (int k = published + 1; k <= published + batch; ++k) REQUIRE_FALSE(server.broker.publish("t", payload(k)));
      for (int k = published + 1; k <= published + batch; ++k) {
        auto p = fast.next_json();
        REQUIRE(p);
        REQUIRE(is_publication(*p));
        REQUIRE((*p)["offset"].GetUint64() == last + 1);
        REQUIRE((*p)["data"]["n"].GetInt() == k);
        last = (*p)["offset"].GetUint64();
      }
      published += batch;
    }
    MESSAGE(std::string(to_string(policy)) << ": the policy acted after " << published << " publications of ~1 KiB");
    CHECK(last == static_cast<std::uint64_t>(published));
    CHECK(published < at_most);
    expect_ping_reply_next(fast, 2);
    CHECK(eventually([&] { return server.broker.metrics().sessions_active == sessions_left; }));
    return server.broker.metrics();
  };

  SUBCASE("disconnect") {
    auto m = run(
        SlowConsumerPolicy::disconnect, [](const BrokerMetrics& m) { return m.slow_consumer_closes >= 1; }, 1);
    CHECK(m.slow_consumer_closes == 1);
  }
  SUBCASE("drop_oldest") {
    auto m = run(SlowConsumerPolicy::drop_oldest, [](const BrokerMetrics& m) { return m.dropped > 0; }, 2);
    CHECK(m.dropped > 0);
    CHECK(m.slow_consumer_closes == 0);
  }
  SUBCASE("conflate") {
    auto m = run(SlowConsumerPolicy::conflate, [](const BrokerMetrics& m) { return m.dropped > 0; }, 2);
    CHECK(m.dropped > 0);
    CHECK(m.slow_consumer_closes == 0);
  }
}

TEST_CASE("malformed messages get error replies; binary and oversized frames close the connection") {
  BrokerSettings s = with_threads(2);
  s.session.max_message_bytes = 1024;
  Server server(s);

  WsClient c(server.port());
  REQUIRE(c.wait_open());
  c.send("not json");
  auto e1 = c.next_json();
  REQUIRE(e1);
  CHECK(error_code_of(*e1) == "invalid_json");
  c.send(R"({"op":"nope","id":7})");
  auto e2 = c.next_json();
  REQUIRE(e2);
  CHECK(error_code_of(*e2) == "unknown_op");
  CHECK(id_of(*e2) == 7);
  c.send(R"({"op":"subscribe"})");
  auto e3 = c.next_json();
  REQUIRE(e3);
  CHECK(error_code_of(*e3) == "bad_request");
  expect_ping_reply_next(c, 8);  // the session survived

  WsClient binary(server.port());
  REQUIRE(binary.wait_open());
  binary.send("\x01\x02", websocketpp::frame::opcode::binary);
  REQUIRE(binary.wait_ended());
  CHECK(binary.close_code() == static_cast<int>(CloseCode::unsupported_data));

  WsClient oversized(server.port());
  REQUIRE(oversized.wait_open());
  oversized.send(R"({"op":"ping","pad":")" + std::string(2000, 'x') + R"("})");
  REQUIRE(oversized.wait_ended());
  CHECK(oversized.close_code() == static_cast<int>(CloseCode::message_too_large));
  CHECK(eventually([&] { return server.broker.metrics().errors(Errc::message_too_large) == 1; }));

  // The server keeps serving the others.
  expect_ping_reply_next(c, 9);
  WsClient later(server.port());
  REQUIRE(later.wait_open());
  expect_ping_reply_next(later, 1);
}

TEST_CASE("an Origin outside the allow-list is refused with HTTP 403") {
  WebSocketSettings w = loopback();
  w.allowed_origins = {"http://good.example"};
  Server server(with_threads(1), w);

  WsClient evil(server.port(), {"/ws", {{"Origin", "http://evil.example"}}, {}});
  CHECK_FALSE(evil.wait_open());
  CHECK(evil.http_status() == 403);

  WsClient good(server.port(), {"/ws", {{"Origin", "http://good.example"}}, {}});
  REQUIRE(good.wait_open());
  expect_ping_reply_next(good, 1);

  WsClient no_origin(server.port());  // not a browser
  REQUIRE(no_origin.wait_open());
  // The server opens the session once its 101 response is written.
  CHECK(eventually([&] { return server.broker.metrics().sessions_opened == 2; }));
}

TEST_CASE("server-side joins: the client is told, and receives the topic without subscribing") {
  BrokerSettings s = with_threads(2);
  s.server_joins = [](const Principal&) { return std::vector<std::string>{"org:acme"}; };
  Server server(s);

  WsClient c(server.port());
  REQUIRE(c.wait_open());
  auto notice = c.next_json();
  REQUIRE(notice);
  CHECK_FALSE(notice->HasMember("id"));
  REQUIRE(notice->HasMember("ok"));
  CHECK(std::string((*notice)["ok"]["topic"].GetString()) == "org:acme");

  REQUIRE_FALSE(server.broker.publish("org:acme", value(42)));
  auto p = c.next_json();
  REQUIRE(p);
  REQUIRE(is_publication(*p));
  CHECK(std::string((*p)["topic"].GetString()) == "org:acme");
  CHECK((*p)["data"]["v"].GetInt() == 42);
}

TEST_CASE("plain HTTP requests go to the http handler") {
  std::mutex mutex;
  std::vector<HttpRequest> seen;
  WebSocketSettings w = loopback();
  w.http_handler = [&](const HttpRequest& r) {
    {
      std::lock_guard<std::mutex> lock(mutex);
      seen.push_back(r);
    }
    if (r.path != "/") return HttpResponse::not_found();
    HttpResponse response;
    response.status = 200;
    response.content_type = "text/html; charset=utf-8";
    response.body = "<h1>dashboard</h1>";
    response.headers = {{"Cache-Control", "no-store"}};
    return response;
  };
  HostServer server({}, w);

  std::string page = livecast_test::http_get(server.port(), "/?q=a%20b&x=1");
  CHECK(page.rfind("HTTP/1.1 200", 0) == 0);
  CHECK(page.find("Content-Type: text/html; charset=utf-8\r\n") != std::string::npos);
  CHECK(page.find("Cache-Control: no-store\r\n") != std::string::npos);
  CHECK(page.size() >= 18);
  CHECK(page.substr(page.size() - 18) == "<h1>dashboard</h1>");

  std::string missing = livecast_test::http_get(server.port(), "/nothing");
  CHECK(missing.rfind("HTTP/1.1 404", 0) == 0);

  std::lock_guard<std::mutex> lock(mutex);
  REQUIRE(seen.size() == 2);
  CHECK(seen[0].transport == "http");
  CHECK(seen[0].path == "/");
  CHECK(seen[0].query_param("q") == "a b");
  CHECK(seen[0].header("Host") == "127.0.0.1");
  CHECK(seen[0].remote_address == "127.0.0.1");

  SUBCASE("without a handler, every plain request is a 404") {
    Server bare(with_threads(1));
    CHECK(livecast_test::http_get(bare.port(), "/").rfind("HTTP/1.1 404", 0) == 0);
  }
}

TEST_CASE("a client that neither reads nor answers pings is closed for idleness") {
  BrokerSettings s = with_threads(1);
  // The healthy client's thread must answer a ping within the idle timeout:
  // a second leaves room for a loaded machine (300 ms once did not).
  s.session.ping_interval = std::chrono::milliseconds(100);
  s.session.idle_timeout = std::chrono::milliseconds(1000);
  Server server(s);

  WsClient healthy(server.port());  // websocketpp answers pings
  REQUIRE(healthy.wait_open());
  RawWebSocket silent;
  REQUIRE(silent.connect(server.port()).find(" 101 ") != std::string::npos);
  const auto start = std::chrono::steady_clock::now();
  CHECK(silent.read_close_code() == static_cast<int>(CloseCode::idle_timeout));
  CHECK(std::chrono::steady_clock::now() - start >= std::chrono::milliseconds(1000));
  // Longer than the idle timeout has passed: the pongs kept the other alive.
  CHECK_FALSE(healthy.ended());
  expect_ping_reply_next(healthy, 1);
}

TEST_CASE("stop() closes every connection with going_away, and destruction is clean") {
  auto server = std::make_unique<Server>();
  std::vector<std::unique_ptr<WsClient>> clients;
  for (int i = 0; i < 6; ++i) {
    clients.push_back(std::make_unique<WsClient>(server->port()));
    REQUIRE(clients.back()->wait_open());
    clients.back()->send(subscribe(1, "t"));
    expect_subscribed(*clients.back(), 1, "t");
  }
  CHECK(server->transport.connection_count() == 6);
  CHECK(server->broker.metrics().sessions_active == 6);

  SUBCASE("stop() while the broker runs") {
    server->transport.stop();
    CHECK(server->broker.metrics().sessions_active == 0);
    CHECK(server->broker.metrics().subscriptions_active == 0);
    CHECK(server->transport.connection_count() == 0);
    for (auto& c : clients) {
      REQUIRE(c->wait_ended());
      CHECK(c->close_code() == static_cast<int>(CloseCode::going_away));
    }
    // Stopped means stopped: nobody is accepted any more.
    WsClient late(server->port());
    CHECK_FALSE(late.wait_open(std::chrono::seconds(2)));
    server.reset();
  }
  SUBCASE("the broker's threads stopped first, then the transport is destroyed") {
    server->broker.stop();
    server->transport.stop();  // runs inline: no shard thread is left
    CHECK(server->broker.metrics().sessions_active == 0);
    server.reset();  // the broker's io_contexts go, and the connections with them
    for (auto& c : clients) CHECK(c->wait_ended());
  }
}

// A stop must end within its deadline whatever the queues hold: readers that
// stopped reading (full send queues, kernel buffers full, close frames that
// cannot go out) while a thread publishes as fast as it can, right through
// the stop. The transport cuts off a close handshake after close_timeout
// (2 s), so stop() may take that long, and no longer.
TEST_CASE("stop() under overload: stalled readers, full queues, a publisher flat out; every stop ends in time") {
  constexpr auto deadline = std::chrono::seconds(6);
  constexpr int stalled_count = 16;
  const std::string payload = R"({"pad":")" + std::string(1000, 'x') + R"("})";
  BrokerSettings s = with_threads(2);
  s.session.send_queue_bytes = 64 * 1024;
  s.session.slow_consumer_policy = SlowConsumerPolicy::drop_oldest;

  auto overload = [&](Broker& broker, std::uint16_t port, std::vector<std::unique_ptr<RawWebSocket>>& stalled,
                      std::atomic<bool>& publishing, std::thread& publisher) {
    for (auto& c : stalled) {
      c = std::make_unique<RawWebSocket>();
      REQUIRE(c->connect(port, 4096).find(" 101 ") != std::string::npos);
      c->send_text(subscribe(1, "t"));
    }
    REQUIRE(eventually([&] { return broker.metrics().subscriptions_active == stalled_count; }));
    publisher = std::thread([&] {
      while (publishing.load()) (void)broker.publish("t", payload);
    });
    // Every stalled queue is full once the policy drops.
    REQUIRE(eventually([&] { return broker.metrics().dropped > stalled_count; }));
  };

  SUBCASE("the broker's own threads") {
    Server server(s);
    std::vector<std::unique_ptr<RawWebSocket>> stalled(stalled_count);
    std::atomic<bool> publishing{true};
    std::thread publisher;
    overload(server.broker, server.port(), stalled, publishing, publisher);
    const auto start = std::chrono::steady_clock::now();
    server.transport.stop();
    server.broker.stop();
    const auto took = std::chrono::steady_clock::now() - start;
    publishing = false;
    publisher.join();
    CHECK(took < deadline);
    CHECK(server.broker.metrics().sessions_active == 0);
  }
  SUBCASE("the host's io_context: once both stopped, the host's run() returns by itself") {
    asio::io_context io;
    Broker broker(io, s);
    WebSocketTransport transport(broker, loopback());
    transport.start();
    // Held until the stop: from then on run() returns when nothing of
    // livecast's is left (a handler or a work count never released would hang it).
    auto guard = asio::make_work_guard(io);
    std::promise<void> returned;
    auto host_returned = returned.get_future();
    std::thread host([&] {
      io.run();
      returned.set_value();
    });
    std::vector<std::unique_ptr<RawWebSocket>> stalled(stalled_count);
    std::atomic<bool> publishing{true};
    std::thread publisher;
    overload(broker, transport.port(), stalled, publishing, publisher);
    asio::post(io, [&] {
      transport.stop();
      broker.stop();
      guard.reset();
    });
    const bool in_time = host_returned.wait_for(deadline) == std::future_status::ready;
    CHECK(in_time);
    if (!in_time) io.stop();  // so that the test ends and reports
    host.join();
    publishing = false;
    publisher.join();
    CHECK(broker.metrics().sessions_active == 0);
  }
}

TEST_CASE("start() throws std::system_error when the port is taken") {
  // A listener without SO_REUSEPORT owns the port: our listeners cannot join it.
  asio::io_context io;
  asio::ip::tcp::acceptor taken(io, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  Broker broker(with_threads(2));
  WebSocketSettings w = loopback();
  w.port = taken.local_endpoint().port();
  WebSocketTransport transport(broker, w);
  CHECK_THROWS_AS(transport.start(), std::system_error);
  CHECK(transport.connection_count() == 0);

  w.address = "not an address";
  WebSocketTransport unparsable(broker, w);
  CHECK_THROWS_AS(unparsable.start(), std::system_error);
}

TEST_CASE("a second livecast on a port another one listens on fails instead of sharing it") {
  // Both would set SO_REUSEPORT; without the probe the second would silently
  // take a share of the first one's connections.
  Broker first_broker(with_threads(2));
  first_broker.start();
  WebSocketTransport first(first_broker, loopback());
  first.start();
  Broker second_broker(with_threads(1));
  second_broker.start();
  WebSocketSettings w = loopback();
  w.port = first.port();
  WebSocketTransport second(second_broker, w);
  CHECK_THROWS_AS(second.start(), std::system_error);
  first.stop();
}

TEST_CASE("a small socket_send_buffer_bytes makes the slow-consumer policy act after little data") {
  // With the kernel's auto-tuned buffer a stuck client absorbs megabytes
  // first (see the test above); with 32 KiB the session's own queue is what
  // fills, after roughly queue + hand-off mark + kernel buffers.
  BrokerSettings s = with_threads(2);
  s.session.send_queue_bytes = 64 * 1024;
  s.session.slow_consumer_policy = SlowConsumerPolicy::disconnect;
  WebSocketSettings w = loopback();
  w.socket_send_buffer_bytes = 32 * 1024;
  Server server(s, w);

  RawWebSocket slow;
  WsClient fast(server.port());
  subscribe_slow_and_fast(server, slow, fast);

  const std::string payload = R"({"pad":")" + std::string(1000, 'x') + R"("})";
  constexpr int limit = 600;  // ~600 KiB: far below the megabytes of an auto-tuned buffer
  int published = 0;
  while (published < limit && server.broker.metrics().slow_consumer_closes == 0) {
    for (int k = 0; k < 16; ++k) REQUIRE_FALSE(server.broker.publish("t", payload));
    for (int k = 0; k < 16; ++k) REQUIRE(fast.next_json());  // paced by the fast reader
    published += 16;
  }
  MESSAGE("the slow client was closed after " << published << " publications of ~1 KiB");
  CHECK(published < limit);
  CHECK(eventually([&] { return server.broker.metrics().slow_consumer_closes == 1; }));
}

// websocketpp answers each ping with a pong of the same payload. A client
// that pings without reading made the server hold every pong: memory grew by
// one per ping, outside any budget.
TEST_CASE("pongs count: a client that pings without reading is closed as a slow consumer; a reader is not") {
  WebSocketSettings w = loopback();
  w.socket_send_buffer_bytes = 16 * 1024;
  Server server(with_threads(1), w);
  RawWebSocket pinger;
  REQUIRE(pinger.connect(server.port(), 4096).find(" 101 ") != std::string::npos);
  WsClient reader(server.port());
  REQUIRE(reader.wait_open());
  const std::string payload(125, 'p');  // the largest a control frame may carry
  constexpr int limit = 20000;          // 2.5 MB of pongs; 64 KiB held is the cut-off
  int sent = 0;
  try {
    while (sent < limit && server.broker.metrics().slow_consumer_closes == 0) {
      for (int k = 0; k < 100; ++k) pinger.send_frame(0x9, payload);
      sent += 100;
    }
  } catch (const std::system_error&) {
    // The server closed the connection while we were still sending.
  }
  MESSAGE("the pinging client was closed after " << sent << " pings");
  CHECK(eventually([&] { return server.broker.metrics().slow_consumer_closes == 1; }));
  CHECK(sent < limit);
  expect_ping_reply_next(reader, 1);
  CHECK(server.broker.metrics().sessions_active == 1);
}

TEST_CASE("max_connections: over all shards, one more is closed unanswered and counted; a freed place is taken") {
  WebSocketSettings w = loopback();
  w.max_connections = 2;
  Server server(with_threads(2), w);
  auto first = std::make_unique<WsClient>(server.port());
  WsClient second(server.port());
  REQUIRE(first->wait_open());
  REQUIRE(second.wait_open());
  REQUIRE(eventually([&] { return server.transport.connection_count() == 2; }));

  livecast_test::SilentConnection third(server.port());
  CHECK(third.closed_by_server());
  CHECK(server.transport.metrics().refused_too_many_connections == 1);
  CHECK(server.transport.metrics().refused() == 1);
  expect_ping_reply_next(second, 1);  // the others are served as before

  first.reset();  // its close handshake ends it on the server
  REQUIRE(eventually([&] { return server.transport.connection_count() == 1; }));
  REQUIRE(eventually([&] { return server.transport.metrics().connections_active == 1; }));
  WsClient again(server.port());
  REQUIRE(again.wait_open());
  expect_ping_reply_next(again, 1);
  const WebSocketTransportMetrics m = server.transport.metrics();
  CHECK(m.refused_too_many_connections == 1);
  CHECK(m.connections == 4);
  CHECK(m.connections_active == 2);
}

TEST_CASE("max_connections_per_address: a third from one address is closed, another address is served") {
  WebSocketSettings w = loopback();
  w.max_connections_per_address = 2;
  Server server(with_threads(2), w);
  auto first = std::make_unique<WsClient>(server.port());  // from 127.0.0.1
  REQUIRE(first->wait_open());
  RawWebSocket second("127.0.0.1");
  REQUIRE(second.connect(server.port()).find(" 101 ") != std::string::npos);

  livecast_test::SilentConnection third(server.port(), "127.0.0.1");
  CHECK(third.closed_by_server());
  CHECK(server.transport.metrics().refused_per_address == 1);

  // Loopback answers for all of 127.0.0.0/8 on Linux: another client.
  RawWebSocket elsewhere("127.0.0.2");
  CHECK(elsewhere.connect(server.port()).find(" 101 ") != std::string::npos);

  first.reset();  // its place goes back to 127.0.0.1
  REQUIRE(eventually([&] { return server.transport.metrics().connections_active == 2; }));
  RawWebSocket again("127.0.0.1");
  CHECK(again.connect(server.port()).find(" 101 ") != std::string::npos);
  const WebSocketTransportMetrics m = server.transport.metrics();
  CHECK(m.refused_per_address == 1);
  CHECK(m.refused() == 1);
}

TEST_CASE("max_pending_handshakes: beyond it new connections are closed; a handshake that times out frees its place") {
  WebSocketSettings w = loopback();
  w.max_pending_handshakes = 2;
  // Long enough that both silent connections are surely pending at once,
  // even on a loaded machine, before the timeout frees their places.
  w.handshake_timeout_ms = 3000;
  Server server(with_threads(2), w);
  WsClient open(server.port());  // an open connection is not pending
  REQUIRE(open.wait_open());
  // The client reads the 101 before the server's shard may have counted the
  // open: until then it still holds a place, and silent_2 would be refused.
  REQUIRE(eventually([&] { return server.transport.metrics().handshakes_pending == 0; }));

  livecast_test::SilentConnection silent_1(server.port()), silent_2(server.port());
  REQUIRE(eventually([&] { return server.transport.metrics().handshakes_pending == 2; }));
  livecast_test::SilentConnection refused(server.port());
  // Well before the others' handshake timeout: only the limit closes it this soon.
  CHECK(refused.closed_by_server(std::chrono::milliseconds(750)));
  CHECK(server.transport.metrics().refused_pending_handshakes == 1);

  CHECK(silent_1.closed_by_server(std::chrono::seconds(10)));  // by the handshake timeout
  CHECK(silent_2.closed_by_server(std::chrono::seconds(10)));
  REQUIRE(eventually([&] { return server.transport.metrics().handshakes_pending == 0; }));
  WsClient later(server.port());
  REQUIRE(later.wait_open());
  expect_ping_reply_next(later, 1);
  expect_ping_reply_next(open, 1);
  const WebSocketTransportMetrics m = server.transport.metrics();
  CHECK(m.refused_pending_handshakes == 1);
  CHECK(m.refused() == 1);
  CHECK(m.connections_active == 2);
}
