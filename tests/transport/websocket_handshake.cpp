// The WebSocket port's opening handshake under malformed requests, over real
// loopback sockets: each one gets its HTTP status at once (not after the
// handshake timeout), the connection ends, nothing malformed reaches the
// host's HttpHandler or leaves in a response, and the server stays live.
#include "transport_server.hpp"
#include "ws_test_client.hpp"

#include <livecast/broker.hpp>
#include <livecast/websocket_transport.hpp>

#include <doctest/doctest.h>

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/write.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <string>
#include <system_error>

using namespace livecast;
using namespace std::chrono_literals;
using livecast_test::RawWebSocket;

namespace {

using Server = livecast_test::TransportServer<WebSocketTransport, WebSocketSettings>;

WebSocketSettings loopback() {
  WebSocketSettings s = livecast_test::loopback_settings<WebSocketSettings>();
  s.handshake_timeout_ms = 5000;  // "at once" below is well under this
  return s;
}

// What the server did with one request sent as it is.
struct Answer {
  std::string response;  // everything received until the end of the stream
  bool closed = false;   // the server ended the connection
  std::chrono::milliseconds took{};  // until the end of the stream

  std::string status_line() const { return response.substr(0, response.find("\r\n")); }
  std::string head() const { return response.substr(0, response.find("\r\n\r\n") + 4); }
};

Answer send_as_is(std::uint16_t port, const std::string& bytes, std::chrono::milliseconds limit = 3s) {
  asio::io_context io;
  asio::ip::tcp::socket socket(io);
  socket.connect({asio::ip::make_address("127.0.0.1"), port});
  const auto started = std::chrono::steady_clock::now();
  asio::write(socket, asio::buffer(bytes));
  Answer answer;
  const auto deadline = started + limit;
  std::array<char, 4096> scratch;
  while (true) {
    std::size_t n = 0;
    auto result = livecast_test::read_before(io, socket, deadline, [&](auto handler) {
      socket.async_read_some(asio::buffer(scratch), [&, handler](std::error_code ec, std::size_t got) {
        n = got;
        handler(ec, got);
      });
    });
    if (!result) break;  // nothing more within the limit
    answer.response.append(scratch.data(), n);
    if (*result) {
      answer.closed = *result != asio::error::operation_aborted;
      break;
    }
  }
  answer.took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
  return answer;
}

const std::string good_upgrade_headers =
    "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Version: 13\r\n";

// The port still completes a real handshake.
void expect_live(std::uint16_t port) {
  RawWebSocket client;
  CHECK(client.connect(port) == "HTTP/1.1 101 Switching Protocols\r");
}

void expect_refused_at_once(const Answer& a, const std::string& status_line) {
  CHECK(a.status_line() == status_line);
  CHECK(a.closed);
  CHECK(a.took < 1500ms);
}

}  // namespace

TEST_CASE("bytes that cannot begin an HTTP request get 400 at once, not after the handshake timeout") {
  Server server(livecast_test::with_threads(1), loopback());
  SUBCASE("a TLS ClientHello on the plain port") {
    const std::string hello("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11);
    expect_refused_at_once(send_as_is(server.port(), hello), "HTTP/1.1 400 Bad Request");
  }
  SUBCASE("binary noise") {
    expect_refused_at_once(send_as_is(server.port(), std::string("\x00\xff\x13\x37", 4)), "HTTP/1.1 400 Bad Request");
  }
  SUBCASE("words, but not a request line") {
    expect_refused_at_once(send_as_is(server.port(), "this is not http at all"), "HTTP/1.1 400 Bad Request");
  }
  SUBCASE("a request line whose version is not HTTP") {
    expect_refused_at_once(send_as_is(server.port(), "GET /ws XTTP/1.1"), "HTTP/1.1 400 Bad Request");
  }
  expect_live(server.port());
}

TEST_CASE("a bare LF is not a line end in the opening handshake: 400") {
  Server server(livecast_test::with_threads(1), loopback());
  SUBCASE("every line ended by LF alone") {
    std::string request = "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\n" + good_upgrade_headers + "\r\n";
    std::string bare;
    for (char c : request)
      if (c != '\r') bare.push_back(c);
    expect_refused_at_once(send_as_is(server.port(), bare), "HTTP/1.1 400 Bad Request");
  }
  SUBCASE("one LF alone inside a header line") {
    expect_refused_at_once(
        send_as_is(server.port(), "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\nX-Smuggled: 1\r\n" + good_upgrade_headers + "\r\n"),
        "HTTP/1.1 400 Bad Request");
  }
  expect_live(server.port());
}

TEST_CASE("an opening handshake or plain request without Host gets 400") {
  std::atomic<int> handler_calls{0};
  WebSocketSettings settings = loopback();
  settings.http_handler = [&](const HttpRequest&) {
    ++handler_calls;
    return HttpResponse{200, "text/plain", "page", {}};
  };
  Server server(livecast_test::with_threads(1), settings);
  expect_refused_at_once(send_as_is(server.port(), "GET /ws HTTP/1.1\r\n" + good_upgrade_headers + "\r\n"),
                         "HTTP/1.1 400 Bad Request");
  expect_refused_at_once(send_as_is(server.port(), "GET /ws HTTP/1.1\r\nHost:\r\n" + good_upgrade_headers + "\r\n"),
                         "HTTP/1.1 400 Bad Request");
  expect_refused_at_once(send_as_is(server.port(), "GET / HTTP/1.0\r\n\r\n"), "HTTP/1.1 400 Bad Request");
  CHECK(handler_calls == 0);
  expect_live(server.port());
}

TEST_CASE("a request header with a control character or an invalid name gets 400 and never reaches the handler") {
  std::atomic<int> handler_calls{0};
  WebSocketSettings settings = loopback();
  settings.http_handler = [&](const HttpRequest&) {
    ++handler_calls;
    return HttpResponse{200, "text/plain", "page", {}};
  };
  Server server(livecast_test::with_threads(1), settings);
  for (const std::string& field : {std::string("X-A: a\rb"), std::string("X-A: a\x01z"), std::string("Bad Name: v"),
                                   std::string("X-\x7f: v"), std::string(": no name")}) {
    CAPTURE(field);
    expect_refused_at_once(send_as_is(server.port(), "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n" + field + "\r\n\r\n"),
                           "HTTP/1.1 400 Bad Request");
  }
  CHECK(handler_calls == 0);
  expect_live(server.port());
}

TEST_CASE("an HttpHandler's header with a line break or an invalid name is never emitted, and nothing throws") {
  WebSocketSettings settings = loopback();
  settings.http_handler = [](const HttpRequest& r) {
    HttpResponse response{200, "text/plain", "page", {}};
    if (r.path == "/split") response.headers = {{"X-Ok", "1"}, {"X-Evil", "a\r\nSet-Cookie: stolen=1"}};
    if (r.path == "/split-type") response.content_type = "text/plain\r\nSet-Cookie: stolen=1";
    if (r.path == "/bad-name") response.headers = {{"Bad Name", "v"}, {"X-Ok", "1"}, {"X:Colon", "v"}};
    return response;
  };
  Server server(livecast_test::with_threads(1), settings);
  auto get = [&](const std::string& path) {
    return send_as_is(server.port(), "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
  };
  const Answer split = get("/split");
  CHECK(split.status_line() == "HTTP/1.1 200 OK");
  CHECK(split.head().find("X-Ok: 1\r\n") != std::string::npos);
  CHECK(split.head().find("Set-Cookie") == std::string::npos);
  CHECK(split.head().find("X-Evil") == std::string::npos);

  const Answer split_type = get("/split-type");
  CHECK(split_type.status_line() == "HTTP/1.1 200 OK");
  CHECK(split_type.head().find("Set-Cookie") == std::string::npos);

  const Answer bad_name = get("/bad-name");
  CHECK(bad_name.status_line() == "HTTP/1.1 200 OK");
  CHECK(bad_name.head().find("X-Ok: 1\r\n") != std::string::npos);
  CHECK(bad_name.head().find("Bad Name") == std::string::npos);
  CHECK(bad_name.head().find("X:Colon") == std::string::npos);
  CHECK(bad_name.response.substr(bad_name.response.size() - 4) == "page");
  expect_live(server.port());
}

TEST_CASE("frames sent right behind the opening handshake are read after it") {
  Server server(livecast_test::with_threads(1), loopback());
  // A ping frame (masked, empty) in the same write as the request.
  const std::string request = "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\n" + good_upgrade_headers + "\r\n" +
                              std::string("\x89\x80\x01\x02\x03\x04", 6);
  const Answer a = send_as_is(server.port(), request, 1s);
  CHECK(a.status_line() == "HTTP/1.1 101 Switching Protocols");
  const std::string after_head = a.response.substr(a.head().size());
  REQUIRE(after_head.size() >= 2);
  CHECK(static_cast<unsigned char>(after_head[0]) == 0x8A);  // the pong
}
