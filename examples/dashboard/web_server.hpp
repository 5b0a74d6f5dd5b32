// The plain-HTTP side of the demo, served beside the WebSocket endpoint by
// WebSocketTransport's HttpHandler: the embedded page and a metrics view.
#pragma once

#include <livecast/livecast.hpp>

#include <cstdint>

namespace dashboard {

// GET /                the dashboard page (any query, e.g. ?token=analyst-acme)
// GET /<asset>         the page's scripts and styles
// GET /config.json     where the page connects: {"websocket":"ws://<host>:<port>/ws",
//                      "sse":"http://<host>:<http port>/sse","poll":".../poll"}, the host
//                      taken from the request's Host header
// GET /metrics?token=  BrokerMetrics as JSON, for admin tokens only
// Everything else is 404. The broker must outlive the handler.
// The ports the page is told about; 0: the port the page was loaded from
// (for the WebSocket), or none (for SSE and long-polling).
struct WebEndpoints {
  std::uint16_t websocket_port = 0;
  std::uint16_t http_port = 0;
};

livecast::HttpHandler make_web_handler(livecast::Broker& broker, WebEndpoints endpoints = {});

}  // namespace dashboard
