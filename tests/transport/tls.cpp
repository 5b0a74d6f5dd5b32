// TLS on both transports over loopback, with a certificate authority made
// inside the test (tls_test_ca.hpp): wss:// on the WebSocket port, https://
// (SSE, a poll) and wss:// on the HTTP transport's one port; clients that
// must fail (an untrusted CA, TLS 1.1, silence); and the certificate
// reloaded while a client stays connected.
#include "tls_test_ca.hpp"
#include "tls_test_client.hpp"
#include "transport_server.hpp"
#include "ws_test_client.hpp"

#include <livecast/broker.hpp>
#include <livecast/http_transport.hpp>
#include <livecast/tls.hpp>
#include <livecast/websocket_transport.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <system_error>
#include <vector>

using namespace livecast;
using namespace std::chrono_literals;
using livecast_test::TestCa;
using livecast_test::TlsClient;

namespace {

// A CA, and a server certificate of it written where TlsSettings point.
struct TlsFiles {
  explicit TlsFiles(long serial = 1001) { install(ca.issue(serial)); }

  void install(const livecast_test::TestCertificate& pair) {
    livecast_test::write_file(cert_file(), pair.cert_pem);
    livecast_test::write_file(key_file(), pair.key_pem);
  }
  std::string cert_file() const { return dir.file("cert.pem"); }
  std::string key_file() const { return dir.file("key.pem"); }
  TlsSettings settings(std::chrono::milliseconds reload_check_interval = 0ms) const {
    TlsSettings s;
    s.cert_file = cert_file();
    s.key_file = key_file();
    s.reload_check_interval = reload_check_interval;
    return s;
  }

  TestCa ca;
  livecast_test::TempDir dir;
};

std::string subscribe(const std::string& topic) { return R"({"op":"subscribe","id":1,"topic":")" + topic + R"("})"; }

// Errors the broker reported to on_error.
struct ErrorLog {
  BrokerSettings broker_settings() {
    BrokerSettings b = livecast_test::with_threads(2);
    b.on_error = [this](const std::string& what, std::error_code) {
      std::lock_guard<std::mutex> lock(mutex);
      errors.push_back(what);
    };
    return b;
  }
  std::size_t count() {
    std::lock_guard<std::mutex> lock(mutex);
    return errors.size();
  }
  std::mutex mutex;
  std::vector<std::string> errors;
};

struct WssServer {
  WssServer(const TlsFiles& files, BrokerSettings b = livecast_test::with_threads(2),
            std::chrono::milliseconds reload_check_interval = 0ms, std::uint32_t handshake_timeout_ms = 5000)
      : broker(std::move(b)), transport(broker, settings(files, reload_check_interval, handshake_timeout_ms)) {
    broker.start();
    transport.start();
  }
  static WebSocketSettings settings(const TlsFiles& files, std::chrono::milliseconds interval, std::uint32_t timeout) {
    WebSocketSettings s = livecast_test::loopback_settings<WebSocketSettings>();
    s.tls = files.settings(interval);
    s.handshake_timeout_ms = timeout;
    return s;
  }
  std::uint16_t port() const { return transport.port(); }

  Broker broker;
  WebSocketTransport transport;
};

// A WebSocket client over TLS, subscribed to `topic`.
void open_subscribed(TlsClient& client, const std::string& topic) {
  REQUIRE_FALSE(client.handshake());
  REQUIRE(client.websocket_handshake() == "HTTP/1.1 101 Switching Protocols");
  client.send_text(subscribe(topic));
  auto reply = client.next_text();
  REQUIRE(reply);
  CHECK(reply->find("\"ok\"") != std::string::npos);
}

}  // namespace

TEST_CASE("wss://: the handshake, ALPN http/1.1, a subscribe and live publications") {
  TlsFiles files(1001);
  WssServer server(files);
  asio::ssl::context context = livecast_test::client_context(files.ca.cert_pem());
  TlsClient client(server.port(), context);
  open_subscribed(client, "t");
  CHECK(client.alpn() == "http/1.1");
  CHECK(client.peer_serial() == 1001);
  for (int i = 0; i < 50; ++i) server.broker.publish("t", R"({"n":)" + std::to_string(i) + "}");
  for (int i = 0; i < 50; ++i) {
    auto p = client.next_text();
    REQUIRE(p);
    CHECK(p->find(R"("n":)" + std::to_string(i) + "}") != std::string::npos);
  }
  CHECK(server.transport.metrics().tls.handshakes_failed == 0);

  SUBCASE("a plain-TCP client on the TLS port gets nothing and is cut off") {
    CHECK(livecast_test::http_response_head(server.port(), "GET /ws HTTP/1.1\r\nHost: x\r\n\r\n").empty());
    CHECK(livecast_test::eventually([&] { return server.transport.metrics().tls.handshakes_failed == 1; }));
  }
}

TEST_CASE("https:// and wss:// on one port: SSE, a poll, and an upgrade handed over with its TLS session") {
  TlsFiles files(2002);
  Broker broker(livecast_test::with_threads(2));
  WebSocketSettings ws_settings;
  ws_settings.listen = false;
  WebSocketTransport ws(broker, ws_settings);
  HttpTransportSettings http_settings = livecast_test::loopback_settings<HttpTransportSettings>();
  http_settings.tls = files.settings();
  HttpTransport http(broker, http_settings);
  broker.start();
  http.serve_websocket(ws);
  ws.start();
  http.start();
  broker.publish("t", R"({"n":0})");
  asio::ssl::context context = livecast_test::client_context(files.ca.cert_pem());

  TlsClient sse(http.port(), context);
  REQUIRE_FALSE(sse.handshake());
  CHECK(sse.alpn() == "http/1.1");
  CHECK(sse.peer_serial() == 2002);
  REQUIRE(sse.write("GET /sse?topics=t HTTP/1.1\r\nHost: localhost\r\n\r\n"));
  REQUIRE(sse.read_until(R"({"n":0})"));  // the snapshot
  CHECK(sse.received().rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
  CHECK(sse.received().find("text/event-stream") != std::string::npos);

  TlsClient poll(http.port(), context);
  REQUIRE_FALSE(poll.handshake());
  REQUIRE(poll.write("GET /poll?topics=t HTTP/1.1\r\nHost: localhost\r\n\r\n"));
  REQUIRE(poll.read_until(R"({"n":0})"));
  CHECK(poll.received().rfind("HTTP/1.1 200 OK\r\n", 0) == 0);

  TlsClient wss(http.port(), context);
  open_subscribed(wss, "t");
  CHECK(wss.next_text());  // the snapshot

  broker.publish("t", R"({"n":1})");
  CHECK(sse.read_until(R"({"n":1})"));
  auto live = wss.next_text();
  REQUIRE(live);
  CHECK(live->find(R"({"n":1})") != std::string::npos);
  CHECK(http.metrics().websocket_upgrades == 1);
  CHECK(http.metrics().tls.handshakes_failed == 0);
  http.stop();
  ws.stop();
}

TEST_CASE("https://: an upgrade pipelined behind a request is handed over while a read is in flight") {
  TlsFiles files;
  Broker broker(livecast_test::with_threads(1));
  WebSocketSettings ws_settings;
  ws_settings.listen = false;
  WebSocketTransport ws(broker, ws_settings);
  HttpTransportSettings http_settings = livecast_test::loopback_settings<HttpTransportSettings>();
  http_settings.tls = files.settings();
  http_settings.http_handler = [](const HttpRequest&) { return HttpResponse{200, "text/plain", "page", {}}; };
  HttpTransport http(broker, http_settings);
  broker.start();
  http.serve_websocket(ws);
  ws.start();
  http.start();
  asio::ssl::context context = livecast_test::client_context(files.ca.cert_pem());
  TlsClient client(http.port(), context);
  REQUIRE_FALSE(client.handshake());
  // Both in one write: the page's answer goes out first, and the connection
  // reads again meanwhile; the upgrade is then taken with that read pending.
  REQUIRE(client.write("GET /page HTTP/1.1\r\nHost: localhost\r\n\r\n"
                       "GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                       "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"));
  REQUIRE(client.read_until("HTTP/1.1 101 Switching Protocols\r\n"));
  CHECK(client.received().rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
  const std::size_t upgrade = client.received().find("HTTP/1.1 101");
  REQUIRE(client.read_until("\r\n\r\n", livecast_test::wait_limit, upgrade));  // the 101's whole head
  client.received().erase(0, client.received().find("\r\n\r\n", upgrade) + 4);
  client.send_text(subscribe("t"));
  auto reply = client.next_text();
  REQUIRE(reply);
  CHECK(reply->find("\"ok\"") != std::string::npos);
  broker.publish("t", R"({"n":7})");
  auto live = client.next_text();
  REQUIRE(live);
  CHECK(live->find(R"({"n":7})") != std::string::npos);
  http.stop();
  ws.stop();
}

TEST_CASE("a client that does not trust the CA fails its handshake; the server counts it and keeps serving") {
  TlsFiles files;
  WssServer server(files);
  asio::ssl::context untrusting = livecast_test::client_context("");
  TlsClient stranger(server.port(), untrusting);
  const std::error_code ec = stranger.handshake();
  CHECK(ec);
  CHECK(livecast_test::eventually([&] { return server.transport.metrics().tls.handshakes_failed == 1; }));
  asio::ssl::context trusting = livecast_test::client_context(files.ca.cert_pem());
  TlsClient friendly(server.port(), trusting);
  open_subscribed(friendly, "t");
}

TEST_CASE("TLS 1.1 is refused by the server; the same client at TLS 1.2 gets in") {
  TlsFiles files;
  WssServer server(files);
  for (bool over_http : {false, true}) {
    CAPTURE(over_http);
    HttpTransportSettings h = livecast_test::loopback_settings<HttpTransportSettings>();
    h.tls = files.settings();
    HttpTransport http(server.broker, h);
    if (over_http) http.start();
    const std::uint16_t port = over_http ? http.port() : server.port();
    auto failed = [&] {
      return over_http ? http.metrics().tls.handshakes_failed : server.transport.metrics().tls.handshakes_failed;
    };
    asio::ssl::context old = livecast_test::client_context(files.ca.cert_pem(), TLS1_VERSION, TLS1_1_VERSION);
    TlsClient refused(port, old);
    CHECK(refused.handshake());
    CHECK(livecast_test::eventually([&] { return failed() == 1; }));  // the server saw it and said no

    asio::ssl::context capable = livecast_test::client_context(files.ca.cert_pem(), TLS1_VERSION, TLS1_2_VERSION);
    TlsClient accepted(port, capable);
    CHECK_FALSE(accepted.handshake());
    CHECK(accepted.protocol_version() == "TLSv1.2");
    CHECK(failed() == 1);
  }
}

TEST_CASE("a connection that never sends its ClientHello is cut off by the handshake time limit") {
  TlsFiles files;
  SUBCASE("the WebSocket port: handshake_timeout_ms, and under max_pending_handshakes meanwhile") {
    WssServer server(files, livecast_test::with_threads(1), 0ms, 300);
    livecast_test::SilentConnection silent(server.port());
    CHECK(livecast_test::eventually([&] { return server.transport.metrics().handshakes_pending == 1; }));
    const auto started = std::chrono::steady_clock::now();
    CHECK(silent.closed_by_server(3s));
    CHECK(std::chrono::steady_clock::now() - started < 2s);
    CHECK(livecast_test::eventually([&] { return server.transport.metrics().handshakes_pending == 0; }));
    // Counted when the aborted handshake's completion runs, which may come
    // after the connection left the pending count (seen under ASan in CI).
    CHECK(livecast_test::eventually([&] { return server.transport.metrics().tls.handshakes_failed == 1; }));
  }
  SUBCASE("the HTTP port: request_timeout") {
    Broker broker(livecast_test::with_threads(1));
    HttpTransportSettings h = livecast_test::loopback_settings<HttpTransportSettings>();
    h.tls = files.settings();
    h.request_timeout = 300ms;
    HttpTransport http(broker, h);
    broker.start();
    http.start();
    livecast_test::SilentConnection silent(http.port());
    CHECK(silent.closed_by_server(3s));
    CHECK(livecast_test::eventually([&] { return http.metrics().connections_active == 0; }));
    CHECK(livecast_test::eventually([&] { return http.metrics().tls.handshakes_failed == 1; }));
  }
}

TEST_CASE("certificate reload: open connections keep their session, new ones see the new certificate") {
  TlsFiles files(1);
  ErrorLog log;
  // The files are looked at at most every 50 ms (when a connection arrives).
  WssServer server(files, log.broker_settings(), 50ms);
  asio::ssl::context context = livecast_test::client_context(files.ca.cert_pem());

  TlsClient early(server.port(), context);
  open_subscribed(early, "t");
  CHECK(early.peer_serial() == 1);

  // An explicit reload.
  files.install(files.ca.issue(2));
  CHECK_FALSE(server.transport.reload_tls());
  server.broker.publish("t", R"({"after":2})");
  auto delivered = early.next_text();
  REQUIRE(delivered);
  CHECK(delivered->find(R"({"after":2})") != std::string::npos);
  TlsClient second(server.port(), context);
  REQUIRE_FALSE(second.handshake());
  CHECK(second.peer_serial() == 2);

  // A change seen on its own, at the next connection once 50 ms passed.
  files.install(files.ca.issue(3));
  CHECK(livecast_test::eventually([&] {
    TlsClient probe(server.port(), context);
    return !probe.handshake() && probe.peer_serial() == 3;
  }));

  // A broken pair (this key is not the certificate's) keeps serial 3, and is
  // reported and counted.
  const auto four = files.ca.issue(4);
  const auto five = files.ca.issue(5);
  livecast_test::write_file(files.cert_file(), four.cert_pem);
  livecast_test::write_file(files.key_file(), five.key_pem);
  CHECK(server.transport.reload_tls());
  CHECK(server.transport.metrics().tls.reload_failures >= 1);
  CHECK(log.count() >= 1);
  TlsClient after_broken(server.port(), context);
  REQUIRE_FALSE(after_broken.handshake());
  CHECK(after_broken.peer_serial() == 3);

  server.broker.publish("t", R"({"after":"broken"})");
  delivered = early.next_text();
  REQUIRE(delivered);
  CHECK(delivered->find(R"({"after":"broken"})") != std::string::npos);
  CHECK(server.transport.metrics().tls.reloads >= 2);
}

TEST_CASE("start() throws when the certificate or key does not load, before binding") {
  TlsFiles files;
  Broker broker(livecast_test::with_threads(1));
  broker.start();
  WebSocketSettings s = livecast_test::loopback_settings<WebSocketSettings>();
  s.tls = files.settings();
  s.tls->key_file = files.dir.file("missing.pem");
  WebSocketTransport transport(broker, s);
  CHECK_THROWS_AS(transport.start(), std::system_error);
  CHECK(transport.port() == 0);
  CHECK(transport.reload_tls() == std::errc::operation_not_supported);
}
