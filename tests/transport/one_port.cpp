// One port for everything: an HttpTransport serving SSE, long-polling, the
// host's pages and, through serve_websocket, WebSocket upgrades handed to a
// WebSocketTransport that has no port of its own.
#include "../protocol/line_protocol.hpp"
#include "http_test_client.hpp"
#include "one_port_server.hpp"
#include "transport_server.hpp"
#include "ws_test_client.hpp"

#include <livecast/broker.hpp>
#include <livecast/http_transport.hpp>
#include <livecast/websocket_transport.hpp>

#include <doctest/doctest.h>

#include <string>

using namespace livecast;
using livecast_test::HttpClient;
using livecast_test::OnePortServer;

TEST_CASE("one port: a WebSocket, an SSE stream, a poll and a page, side by side") {
  OnePortServer server;
  CHECK(server.ws.port() == 0);  // it listens on nothing of its own
  server.broker.publish("t", R"({"n":1})");

  livecast_test::WsClient ws(server.port());
  REQUIRE(ws.wait_open());
  ws.send(R"({"op":"subscribe","id":1,"topic":"t"})");
  auto reply = ws.next_json();
  REQUIRE(reply);
  CHECK((*reply)["id"].GetInt() == 1);
  CHECK(server.ws.connection_count() == 1);

  HttpClient sse(server.port());
  sse.get("/sse?topics=t");
  auto head = sse.stream_head();
  REQUIRE(head);
  CHECK(head->status == 200);
  REQUIRE(sse.next_message());  // the subscribe reply
  REQUIRE(sse.next_message());  // the snapshot

  HttpClient page(server.port());
  page.get("/index.html");
  auto p = page.response();
  REQUIRE(p);
  CHECK(p->body == "page /index.html");

  server.broker.publish("t", R"({"n":2})");
  auto live_ws = ws.next_json();  // the snapshot first, then offset 2
  REQUIRE(live_ws);
  live_ws = ws.next_json();
  REQUIRE(live_ws);
  CHECK((*live_ws)["offset"].GetUint64() == 2);
  auto live_sse = sse.next_message();
  REQUIRE(live_sse);
  CHECK(live_sse->data == R"({"topic":"t","offset":2,"data":{"n":2}})");

  HttpClient poll(server.port());
  poll.get("/poll?topics=t&timeout=0");
  auto answer = poll.response();
  REQUIRE(answer);
  CHECK(answer->status == 200);
  CHECK(answer->header("content-type") == "application/json");

  CHECK(server.http.metrics().websocket_upgrades == 1);
  CHECK(server.http.metrics().sse_streams == 1);
}

TEST_CASE("one port: the WebSocket transport's own checks and subprotocols hold for handed-over upgrades") {
  BrokerSettings b = livecast_test::with_threads(1);
  b.protocols = {make_livecast_v1_protocol(), livecast_test::make_line_protocol()};
  OnePortServer server(b);
  livecast_test::WsOptions line;
  line.subprotocols = {"line.test"};
  livecast_test::WsClient client(server.port(), line);
  REQUIRE(client.wait_open());
  client.send("PING 3");
  auto pong = client.next();
  REQUIRE(pong);
  CHECK(*pong == "PONG 3");

  livecast_test::WsOptions wrong_path;
  wrong_path.resource = "/elsewhere";
  livecast_test::WsClient refused(server.port(), wrong_path);
  REQUIRE(refused.wait_ended());
  CHECK(refused.http_status() == 404);
}

TEST_CASE("one port: after the WebSocket transport stopped, upgrades are dropped and the rest is served") {
  OnePortServer server;
  server.ws.stop();
  livecast_test::WsClient ws(server.port());
  CHECK(ws.wait_ended());
  HttpClient page(server.port());
  page.get("/");
  auto p = page.response();
  REQUIRE(p);
  CHECK(p->status == 200);
}

TEST_CASE("one port: handed-over upgrades count against the WebSocket transport's limits") {
  WebSocketSettings w = OnePortServer::ws_settings();
  w.max_connections = 1;
  OnePortServer server(livecast_test::with_threads(2), w);
  livecast_test::WsClient first(server.port());
  REQUIRE(first.wait_open());
  livecast_test::WsClient second(server.port());
  CHECK_FALSE(second.wait_open());
  CHECK(second.ended());
  CHECK(server.ws.metrics().refused_too_many_connections == 1);
  CHECK(server.http.metrics().websocket_upgrades == 2);
  // The HTTP transport let go of both: they are the WebSocket transport's.
  CHECK(livecast_test::eventually([&] { return server.http.metrics().connections_active == 0; }));

  first.send(R"({"op":"ping","id":1})");
  auto reply = first.next();
  REQUIRE(reply);
  CHECK(reply->find("\"id\":1") != std::string::npos);
}
