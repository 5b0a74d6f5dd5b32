// Engine.IO v4 polling on the HTTP transport (src/transport/engineio_polling.*):
// its wire rules alone (sid routing, payload), then Socket.IO sessions over
// loopback with the broker's socket.io protocol, driven by plain HTTP
// requests as socket.io-client makes them. Every wait is for bytes or an
// event, bounded by a timeout.
#include "eventually.hpp"
#include "http_test_client.hpp"
#include "transport_server.hpp"

#include "engineio_polling.hpp"

#include <livecast/broker.hpp>
#include <livecast/http_transport.hpp>
#include <livecast/socketio.hpp>

#include <doctest/doctest.h>

#include <rapidjson/document.h>

#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

using namespace livecast;
using namespace std::chrono_literals;
using livecast_test::HttpClient;
using livecast_test::Response;

namespace {

using livecast_test::eventually;
using livecast_test::wait_limit;
const std::string path = "/socket.io/?EIO=4&transport=polling";

rapidjson::Document parse(const std::string& text) {
  rapidjson::Document d;
  d.Parse(text.c_str(), text.size());
  REQUIRE_FALSE(d.HasParseError());
  return d;
}

std::vector<std::string> packets_of(const std::string& body) {
  std::vector<std::string> out;
  std::size_t from = 0;
  while (true) {
    const std::size_t at = body.find('\x1e', from);
    out.push_back(body.substr(from, at == std::string::npos ? std::string::npos : at - from));
    if (at == std::string::npos) break;
    from = at + 1;
  }
  return out;
}

SessionSettings timings(std::chrono::milliseconds ping_interval, std::chrono::milliseconds idle_timeout) {
  SessionSettings s;
  s.ping_interval = ping_interval;
  s.idle_timeout = idle_timeout;
  return s;
}

// A broker speaking livecast.v1 and socket.io, whose Authenticator accepts
// the token "good" (as alice, joined to "room") and refuses any other.
struct SioServer {
  explicit SioServer(SessionSettings session = timings(3s, 6s), std::size_t threads = 2,
                     HttpTransportSettings http = livecast_test::loopback_settings<HttpTransportSettings>())
      : broker(settings(std::move(session), threads)), transport(broker, std::move(http)) {
    broker.start();
    transport.start();
  }
  static BrokerSettings settings(SessionSettings session, std::size_t threads) {
    BrokerSettings s;
    s.threads = threads;
    s.session = std::move(session);
    s.protocols = {make_livecast_v1_protocol(), make_socketio_protocol()};
    s.authenticator = [](const HandshakeRequest& r) {
      if (r.token() != "good") return AuthResult::refuse("bad token");
      Principal p;
      p.id = "alice";
      return AuthResult::accept(std::move(p));
    };
    s.server_joins = [](const Principal&) { return std::vector<std::string>{"room"}; };
    s.on_client_event = [](const ClientEvent& e) {
      return ClientEventReply::acknowledge("[\"hi " + std::string(e.name) + "\"]");
    };
    return s;
  }
  std::uint16_t port() const { return transport.port(); }
  HttpTransportMetrics metrics() const { return transport.metrics(); }

  Broker broker;
  HttpTransport transport;
};

Response request(HttpClient& c, const std::string& method, const std::string& target, const std::string& body = {},
                 const std::string& headers = {}) {
  if (method == "POST")
    c.post(target, body, headers);
  else
    c.send(method + " " + target + " HTTP/1.1\r\nHost: test\r\n" + headers + "\r\n");
  auto r = c.response();
  REQUIRE(r);
  return *r;
}

// The handshake: the open packet's JSON.
rapidjson::Document open_packet(HttpClient& c) {
  Response r = request(c, "GET", path);
  REQUIRE(r.status == 200);
  CHECK(r.header("content-type") == "text/plain; charset=UTF-8");
  REQUIRE(r.body.size() > 1);
  REQUIRE(r.body[0] == '0');
  return parse(r.body.substr(1));
}

std::string handshake(HttpClient& c) {
  auto open = open_packet(c);
  REQUIRE(open.HasMember("sid"));
  return open["sid"].GetString();
}

std::vector<std::string> poll(HttpClient& c, const std::string& sid) {
  Response r = request(c, "GET", path + "&sid=" + sid);
  REQUIRE(r.status == 200);
  CHECK(r.header("content-type") == "text/plain; charset=UTF-8");
  return packets_of(r.body);
}

void post(HttpClient& c, const std::string& sid, const std::string& body) {
  Response r = request(c, "POST", path + "&sid=" + sid, body);
  REQUIRE(r.status == 200);
  CHECK(r.header("content-type") == "text/html");
  CHECK(r.body == "ok");
}

// Polls until a packet `wanted` accepts arrives, answering heartbeats on the way.
std::optional<std::string> poll_until(HttpClient& c, const std::string& sid,
                                      const std::function<bool(const std::string&)>& wanted) {
  const auto deadline = std::chrono::steady_clock::now() + wait_limit;
  while (std::chrono::steady_clock::now() < deadline) {
    for (const std::string& p : poll(c, sid)) {
      if (wanted(p)) return p;
      if (p == "2") post(c, sid, "3");
    }
  }
  return std::nullopt;
}

bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

// Connects the session with the good token; returns its Socket.IO sid.
std::string connect(HttpClient& c, const std::string& sid) {
  post(c, sid, R"(40{"token":"good"})");
  auto connected = poll_until(c, sid, [](const std::string& p) { return starts_with(p, "40"); });
  REQUIRE(connected);
  auto reply = parse(connected->substr(2));
  REQUIRE(reply.HasMember("sid"));
  return reply["sid"].GetString();
}

bool is_refusal(const Response& r, int code) {
  if (r.status != 400 || r.header("content-type") != "application/json") return false;
  auto d = parse(r.body);
  return d.HasMember("code") && d["code"].GetInt() == code && d.HasMember("message");
}

}  // namespace

// --- the wire rules ---

TEST_CASE("a sid names its shard, which routes the requests for it") {
  std::set<std::string> seen;
  for (std::size_t shard : {0u, 1u, 63u, 64u, 4095u}) {
    const std::string sid = detail::make_engineio_sid(shard);
    CHECK(detail::engineio_sid_shard(sid) == shard);
    seen.insert(sid.substr(sid.find('.')));
  }
  CHECK(seen.size() == 5);
}

TEST_CASE("a payload splits on its separator, empty packets dropped") {
  using V = std::vector<std::string_view>;
  CHECK(detail::split_engineio_payload("", "\x1e") == V{});
  CHECK(detail::split_engineio_payload("3", "\x1e") == V{"3"});
  CHECK(detail::split_engineio_payload("40{}\x1e" "42[\"a\"]", "\x1e") == V{"40{}", "42[\"a\"]"});
  CHECK(detail::split_engineio_payload("\x1e" "3\x1e\x1e" "2\x1e", "\x1e") == V{"3", "2"});
  CHECK(detail::split_engineio_payload("a\x1e" "b", "") == V{"a\x1e" "b"});
}

// --- over loopback ---

TEST_CASE("the handshake answers the open packet: sid, no upgrades, the timings, the payload limit") {
  SioServer server(timings(500ms, 2s));
  HttpClient c(server.port());
  auto open = open_packet(c);
  REQUIRE(open["sid"].IsString());
  CHECK(detail::engineio_sid_shard(open["sid"].GetString()) < 2);
  REQUIRE(open["upgrades"].IsArray());
  CHECK(open["upgrades"].Size() == 0);
  CHECK(open["pingInterval"].GetInt() == 500);
  CHECK(open["pingTimeout"].GetInt() == 1500);
  CHECK(open["maxPayload"].GetInt() == 64 * 1024);
  CHECK(server.metrics().engineio_sessions == 1);
  CHECK(server.metrics().engineio_sessions_active == 1);
  CHECK(server.broker.session_count() == 1);

  // A pingTimeout of at least a second, whatever the settings.
  SioServer tight(timings(500ms, 600ms));
  HttpClient t(tight.port());
  CHECK(open_packet(t)["pingTimeout"].GetInt() == 1000);
}

TEST_CASE("a good token connects: 40 with the session's sid; publications on its rooms arrive as 42") {
  SioServer server;
  HttpClient c(server.port());
  const std::string sid = handshake(c);
  const std::string socket_sid = connect(c, sid);
  CHECK_FALSE(socket_sid.empty());
  CHECK(socket_sid != sid);  // Socket.IO's sid is not Engine.IO's

  server.broker.publish("room", R"({"v":1})");
  auto publication = poll_until(c, sid, [](const std::string& p) { return starts_with(p, "42"); });
  REQUIRE(publication);
  CHECK(*publication == R"(42["room",{"v":1}])");
  CHECK(server.metrics().engineio_posts >= 1);
  CHECK(server.metrics().engineio_polls >= 2);
}

TEST_CASE("a refused token gets 44 with the reason, alone; the sid is then unknown") {
  SioServer server;
  HttpClient c(server.port());
  const std::string sid = handshake(c);
  post(c, sid, R"(40{"token":"bad"})");
  // The refusal comes alone (the close packet behind it in one payload could
  // be read by socket.io-client as a lost transport); the session is over.
  std::vector<std::string> packets = poll(c, sid);
  REQUIRE(packets.size() == 1);
  CHECK(packets[0] == R"(44{"message":"bad token"})");
  CHECK(is_refusal(request(c, "GET", path + "&sid=" + sid), 1));
  CHECK(is_refusal(request(c, "POST", path + "&sid=" + sid, "3"), 1));
  CHECK(eventually([&] { return server.broker.session_count() == 0; }));
  CHECK(server.metrics().engineio_sessions_active == 0);
  CHECK(server.metrics().refused_unknown_session == 2);
}

TEST_CASE("two packets in one POST are handled in order") {
  SioServer server;
  HttpClient c(server.port());
  const std::string sid = handshake(c);
  post(c, sid, "40{\"token\":\"good\"}\x1e" "421[\"hello\",1]");
  std::vector<std::string> packets;
  while (packets.size() < 2) {
    for (auto& p : poll(c, sid))
      if (p != "2") packets.push_back(p);
  }
  CHECK(starts_with(packets[0], "40{\"sid\":"));
  CHECK(packets[1] == R"(431["hi hello"])");
}

TEST_CASE("a second GET while one waits is refused, and the session closes") {
  SioServer server;
  HttpClient setup(server.port());
  const std::string sid = handshake(setup);
  HttpClient a(server.port()), b(server.port());
  a.get(path + "&sid=" + sid);
  b.get(path + "&sid=" + sid);
  auto ra = a.response();
  auto rb = b.response();
  REQUIRE(ra);
  REQUIRE(rb);
  // Whichever came second is refused; the one waiting gets the close packet.
  const Response& refused = is_refusal(*ra, 3) ? *ra : *rb;
  const Response& closed = is_refusal(*ra, 3) ? *rb : *ra;
  CHECK(is_refusal(refused, 3));
  CHECK(closed.status == 200);
  CHECK(packets_of(closed.body).back() == "1");
  CHECK(eventually([&] { return server.broker.session_count() == 0; }));
  CHECK(server.metrics().refused_engineio == 1);
}

TEST_CASE("Engine.IO's refusals: unknown sid, version, transport, handshake method, binary body") {
  SioServer server;
  HttpClient c(server.port());
  CHECK(is_refusal(request(c, "GET", path + "&sid=nonsense"), 1));
  CHECK(is_refusal(request(c, "GET", path + "&sid=0.AAAAAAAAAAAAAAAAAAAA"), 1));  // well formed, not open
  CHECK(is_refusal(request(c, "GET", path + "&sid=9.AAAAAAAAAAAAAAAAAAAA"), 1));  // no such shard
  CHECK(is_refusal(request(c, "GET", "/socket.io/?EIO=3&transport=polling"), 5));
  CHECK(is_refusal(request(c, "GET", "/socket.io/?transport=polling"), 5));
  CHECK(is_refusal(request(c, "GET", "/socket.io/?EIO=4&transport=carrier-pigeon"), 0));
  CHECK(is_refusal(request(c, "GET", "/socket.io/?EIO=4&transport=websocket"), 3));  // no upgrade
  CHECK(is_refusal(request(c, "POST", path, "40"), 2));
  const std::string sid = handshake(c);
  c.send("POST " + path + "&sid=" + sid +
         " HTTP/1.1\r\nHost: test\r\nContent-Type: application/octet-stream\r\nContent-Length: 2\r\n\r\n40");
  auto binary = c.response();
  REQUIRE(binary);
  CHECK(is_refusal(*binary, 3));
  CHECK(server.metrics().refused_unknown_session == 3);
  CHECK(server.metrics().refused_engineio == 6);
  // The preflight of a cross-origin POST.
  Response preflight = request(c, "OPTIONS", path, {}, "Origin: https://app.example\r\n");
  CHECK(preflight.status == 204);
  CHECK(preflight.header("access-control-allow-methods") == "GET, POST");
}

TEST_CASE("a POST larger than twice maxPayload gets 413 and closes the session") {
  SessionSettings s = timings(3s, 6s);
  s.max_message_bytes = 100;
  SioServer server(s);
  HttpClient c(server.port());
  const std::string sid = handshake(c);
  Response r = request(c, "POST", path + "&sid=" + sid, std::string(201, '3'));
  CHECK(r.status == 413);
  CHECK(server.metrics().refused_too_large == 1);
  CHECK(poll(c, sid) == std::vector<std::string>{"1"});
  CHECK(eventually([&] { return server.broker.session_count() == 0; }));
}

TEST_CASE("sessions are bounded by max_connections, as they outlive their connections") {
  HttpTransportSettings http = livecast_test::loopback_settings<HttpTransportSettings>();
  http.max_connections = 3;
  SioServer server(timings(3s, 6s), 2, http);
  HttpClient c(server.port());
  for (int i = 0; i < 3; ++i) handshake(c);
  Response refused = request(c, "GET", path);
  CHECK(refused.status == 503);
  CHECK(server.metrics().refused_too_many_connections == 1);
  CHECK(server.broker.session_count() == 3);
}

TEST_CASE("a session of another shard is served through its shard") {
  SioServer server;
  // Connections land on shards as the kernel spreads them; a handshake's sid
  // says which shard its connection is on.
  std::vector<std::unique_ptr<HttpClient>> clients;
  std::vector<std::string> sids;
  std::optional<std::size_t> on[2];
  for (int i = 0; i < 64 && !(on[0] && on[1]); ++i) {
    clients.push_back(std::make_unique<HttpClient>(server.port()));
    sids.push_back(handshake(*clients.back()));
    const std::size_t shard = detail::engineio_sid_shard(sids.back());
    REQUIRE(shard < 2);
    if (!on[shard]) on[shard] = clients.size() - 1;
  }
  REQUIRE(on[0]);
  REQUIRE(on[1]);
  // Shard 0's session, driven from shard 1's connection.
  HttpClient& other = *clients[*on[1]];
  const std::string sid = sids[*on[0]];
  connect(other, sid);
  server.broker.publish("room", R"({"v":2})");
  auto publication = poll_until(other, sid, [](const std::string& p) { return starts_with(p, "42"); });
  REQUIRE(publication);
  CHECK(*publication == R"(42["room",{"v":2}])");
}

TEST_CASE("the heartbeat arrives when nothing else does, and its answer keeps the session") {
  SioServer server(timings(200ms, 400ms));  // pingTimeout: 1 s
  HttpClient c(server.port());
  const std::string sid = handshake(c);
  for (int i = 0; i < 8; ++i) {  // 1.6 s: past pingInterval + pingTimeout
    CHECK(poll(c, sid) == std::vector<std::string>{"2"});
    post(c, sid, "3");
  }
  CHECK(server.broker.session_count() == 1);
}

TEST_CASE("a client that stops polling is closed after pingInterval + pingTimeout") {
  SioServer server(timings(200ms, 400ms));
  HttpClient c(server.port());
  const std::string sid = handshake(c);
  CHECK(server.broker.session_count() == 1);
  const auto started = std::chrono::steady_clock::now();
  REQUIRE(eventually([&] { return server.broker.session_count() == 0; }));
  CHECK(std::chrono::steady_clock::now() - started >= 1s);
  CHECK(server.metrics().engineio_sessions_active == 0);
  CHECK(is_refusal(request(c, "GET", path + "&sid=" + sid), 1));
}

TEST_CASE("a client that polls but answers no heartbeat is closed too") {
  SioServer server(timings(200ms, 400ms));
  HttpClient c(server.port());
  const std::string sid = handshake(c);
  const auto deadline = std::chrono::steady_clock::now() + wait_limit;
  std::vector<std::string> last;
  while (std::chrono::steady_clock::now() < deadline) {
    Response r = request(c, "GET", path + "&sid=" + sid);
    if (r.status != 200) break;
    last = packets_of(r.body);
    if (last.back() == "1") break;
  }
  CHECK(last.back() == "1");
  CHECK(eventually([&] { return server.broker.session_count() == 0; }));
}

TEST_CASE("a GET whose connection closes before its answer ends the session") {
  SioServer server;
  HttpClient c(server.port());
  const std::string sid = handshake(c);
  {
    HttpClient gone(server.port());
    gone.get(path + "&sid=" + sid);
  }  // closed with the GET waiting (or about to)
  CHECK(eventually([&] { return server.broker.session_count() == 0; }));
  CHECK(is_refusal(request(c, "GET", path + "&sid=" + sid), 1));
}

TEST_CASE("stopping the transport answers the waiting GET with the close packet and ends every session") {
  SioServer server;
  HttpClient c(server.port());
  const std::string sid = handshake(c);
  connect(c, sid);
  HttpClient idle(server.port());
  handshake(idle);
  CHECK(server.broker.session_count() == 2);
  c.get(path + "&sid=" + sid);
  auto stopped = std::async(std::launch::async, [&] { server.transport.stop(); });
  REQUIRE(stopped.wait_for(wait_limit) == std::future_status::ready);
  CHECK(server.broker.session_count() == 0);
  CHECK(server.metrics().engineio_sessions_active == 0);
  // The GET was waiting (answered "1") or came after the stop (refused).
  auto r = c.response();
  if (r && r->status == 200) CHECK(packets_of(r->body).back() == "1");
}

TEST_CASE("draining: handshakes get 503 with Retry-After, and open sessions are closed with the close packet") {
  SioServer server;
  HttpClient c(server.port());
  const std::string sid = handshake(c);
  connect(c, sid);
  DrainSettings drain;
  drain.duration = 200ms;
  drain.reconnect_delay_max = 100ms;
  drain.retry_after = 7s;
  server.broker.drain(drain);
  HttpClient late(server.port());
  Response refused = request(late, "GET", path);
  CHECK(refused.status == 503);
  CHECK(refused.header("retry-after") == "7");
  // reconnect_after: no Socket.IO DISCONNECT, so the client reconnects.
  auto closed = poll_until(c, sid, [](const std::string& p) { return p == "1"; });
  REQUIRE(closed);
  CHECK(eventually([&] { return server.broker.session_count() == 0; }));
}

TEST_CASE("without the socket.io protocol the path is not special") {
  livecast_test::TransportServer<HttpTransport, HttpTransportSettings> server;
  HttpClient c(server.port());
  Response r = request(c, "GET", path);
  CHECK(r.status == 404);
}
