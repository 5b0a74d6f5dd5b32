// Every transport carries any Protocol: the line-oriented test protocol
// (tests/protocol/line_protocol.hpp) over WebSocket, SSE and long-polling,
// beside livecast.v1 on the same broker. None of the transports knows it.
#include "../protocol/line_protocol.hpp"
#include "http_test_client.hpp"
#include "transport_server.hpp"
#include "ws_test_client.hpp"

#include <livecast/broker.hpp>
#include <livecast/http_transport.hpp>
#include <livecast/websocket_transport.hpp>

#include <doctest/doctest.h>

#include <string>
#include <vector>

using namespace livecast;
using livecast_test::Event;
using livecast_test::HttpClient;

namespace {

// livecast.v1 stays the default; the line protocol is there by name.
BrokerSettings two_protocols() {
  BrokerSettings s = livecast_test::with_threads(2);
  s.protocols = {make_livecast_v1_protocol(), livecast_test::make_line_protocol()};
  s.authorizer = Authorizer::subscribe_anything().allow(Action::publish, "pub.*");
  return s;
}

using WsServer = livecast_test::TransportServer<WebSocketTransport, WebSocketSettings>;
using HttpServer = livecast_test::TransportServer<HttpTransport, HttpTransportSettings>;

std::vector<std::string> words(const std::string& line) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= line.size()) {
    std::size_t end = line.find(' ', start);
    if (end == std::string::npos) end = line.size();
    out.push_back(line.substr(start, end - start));
    start = end + 1;
  }
  return out;
}


}  // namespace

TEST_CASE("the line protocol over a WebSocket: negotiated by subprotocol, replies and publications in its format") {
  WsServer server(two_protocols());
  server.broker.publish("t", R"({"n":1})");
  livecast_test::WsOptions options;
  options.subprotocols = {"line.test"};
  livecast_test::WsClient client(server.port(), options);
  REQUIRE(client.wait_open());
  CHECK(client.response_header("Sec-WebSocket-Protocol") == "line.test");

  client.send("SUB 7 t");
  auto reply = client.next();
  REQUIRE(reply);
  auto w = words(*reply);
  REQUIRE(w.size() == 6);
  CHECK(w[0] == "SUBSCRIBED");
  CHECK(w[1] == "7");
  CHECK(w[2] == "t");
  CHECK(w[4] == "1");
  CHECK(w[5] == "0");
  auto snapshot = client.next();
  REQUIRE(snapshot);
  CHECK(*snapshot == R"(MSG t 1 {"n":1})");

  server.broker.publish("t", R"({"n":2})");
  auto live = client.next();
  REQUIRE(live);
  CHECK(*live == R"(MSG t 2 {"n":2})");

  client.send("PING 8");
  auto pong = client.next();
  REQUIRE(pong);
  CHECK(*pong == "PONG 8");

  client.send("PUB 9 pub.x {\"a\":1}");
  auto published = client.next();
  REQUIRE(published);
  CHECK(*published == "PUBLISHED 9 pub.x 1");

  client.send("NOPE 10 t");
  auto error = client.next();
  REQUIRE(error);
  CHECK(error->rfind("ERROR 10 unknown_op ", 0) == 0);
}

TEST_CASE("the line protocol over SSE: chosen with protocol=, events carry its lines and the cursor as id") {
  HttpServer server(two_protocols());
  server.broker.publish("t", R"({"n":1})");
  HttpClient c(server.port());
  c.get("/sse?protocol=line.test&topics=t,u");
  auto head = c.stream_head();
  REQUIRE(head);
  CHECK(head->status == 200);

  auto reply = c.next_message();
  REQUIRE(reply);
  auto w = words(reply->data);
  REQUIRE(w.size() == 6);
  CHECK(w[0] == "SUBSCRIBED");
  CHECK(w[1] == "1");
  CHECK(w[2] == "t");
  const std::string epoch = w[3];
  CHECK(reply->id == "t:" + epoch + ":1");

  auto snapshot = c.next_message();
  REQUIRE(snapshot);
  CHECK(snapshot->data == R"(MSG t 1 {"n":1})");
  CHECK(snapshot->id == "t:" + epoch + ":1");

  auto second = c.next_message();
  REQUIRE(second);
  CHECK(second->data == "SUBSCRIBED 2 u " + epoch + " 0 0");
  CHECK(second->id == "t:" + epoch + ":1,u:" + epoch + ":0");

  server.broker.publish("u", R"({"n":9})");
  auto live = c.next_message();
  REQUIRE(live);
  CHECK(live->data == R"(MSG u 1 {"n":9})");
  CHECK(live->id == "t:" + epoch + ":1,u:" + epoch + ":1");
}

TEST_CASE("the line protocol over long-polling: its batch framing, the cursor, and a POSTed ping") {
  HttpServer server(two_protocols());
  server.broker.publish("t", R"({"n":1})");
  HttpClient c(server.port());
  c.get("/poll?protocol=line.test&topics=t");
  auto first = c.response();
  REQUIRE(first);
  CHECK(first->status == 200);
  CHECK(first->header("content-type") == "text/plain; charset=utf-8");
  // CURSOR line, the subscribe reply, the snapshot, and the tail's line end.
  auto lines = words(first->body);  // words of the whole body, for the epoch
  const std::size_t cursor_end = first->body.find('\n');
  REQUIRE(cursor_end != std::string::npos);
  const std::string cursor_line = first->body.substr(0, cursor_end);
  REQUIRE(cursor_line.rfind("CURSOR t:", 0) == 0);
  const std::string cursor = cursor_line.substr(7);
  const std::string epoch = cursor.substr(2, cursor.rfind(':') - 2);
  CHECK(first->body == "CURSOR " + cursor + "\nSUBSCRIBED 1 t " + epoch + " 1 0\nMSG t 1 {\"n\":1}\n");
  CHECK(cursor == "t:" + epoch + ":1");

  // With that cursor nothing is new: the poll waits for the next publication.
  c.get("/poll?protocol=line.test&topics=t&cursor=" + cursor);
  CHECK_FALSE(c.response(std::chrono::milliseconds(200)));
  server.broker.publish("t", R"({"n":2})");
  auto second = c.response();
  REQUIRE(second);
  CHECK(second->body == "CURSOR t:" + epoch + ":2\nMSG t 2 {\"n\":2}\n");

  c.post("/poll?protocol=line.test", "PING 5");
  auto pong = c.response();
  REQUIRE(pong);
  CHECK(pong->status == 200);
  CHECK(pong->body == "PONG 5\n");

  c.post("/poll?protocol=line.test", "SUB 6 t");
  auto refused = c.response();
  REQUIRE(refused);
  CHECK(refused->body.rfind("ERROR 6 bad_request ", 0) == 0);
}

TEST_CASE("an HTTP request naming a protocol the broker does not speak gets 400") {
  HttpServer server(two_protocols());
  HttpClient c(server.port());
  c.get("/poll?protocol=nope&topics=t");
  auto r = c.response();
  REQUIRE(r);
  CHECK(r->status == 400);
  CHECK(server.transport.metrics().refused_bad_parameters == 1);
}
