// A broker with every transport on one loopback port, as the dashboard demo
// serves them: an HttpTransport (SSE, long-polling, the host's pages) that
// hands WebSocket upgrades to a WebSocketTransport with no port of its own.
#pragma once

#include "transport_server.hpp"

#include <livecast/broker.hpp>
#include <livecast/http_transport.hpp>
#include <livecast/websocket_transport.hpp>

#include <cstdint>
#include <string>
#include <utility>

namespace livecast_test {

struct OnePortServer {
  explicit OnePortServer(livecast::BrokerSettings b = with_threads(2),
                         livecast::WebSocketSettings w = ws_settings())
      : broker(std::move(b)), ws(broker, std::move(w)), http(broker, http_settings()) {
    broker.start();
    http.serve_websocket(ws);
    ws.start();
    http.start();
  }
  ~OnePortServer() {
    http.stop();
    ws.stop();
  }
  static livecast::WebSocketSettings ws_settings() {
    livecast::WebSocketSettings s;
    s.listen = false;
    return s;
  }
  // Pages answer "page <path>".
  static livecast::HttpTransportSettings http_settings() {
    livecast::HttpTransportSettings s = loopback_settings<livecast::HttpTransportSettings>();
    s.http_handler = [](const livecast::HttpRequest& r) {
      return livecast::HttpResponse{200, "text/plain", "page " + r.path, {}};
    };
    return s;
  }
  std::uint16_t port() const { return http.port(); }

  livecast::Broker broker;
  livecast::WebSocketTransport ws;
  livecast::HttpTransport http;
};

}  // namespace livecast_test
