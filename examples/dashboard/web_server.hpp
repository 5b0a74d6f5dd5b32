// The plain-HTTP side of the demo, served beside the WebSocket endpoint by
// WebSocketTransport's HttpHandler: the embedded page and a metrics view.
#pragma once

#include <livecast/livecast.hpp>

namespace dashboard {

// GET /                the dashboard page (any query, e.g. ?token=analyst-acme)
// GET /<asset>         the page's scripts and styles
// GET /metrics?token=  BrokerMetrics as JSON, for admin tokens only
// Everything else is 404. The broker must outlive the handler.
livecast::HttpHandler make_web_handler(livecast::Broker& broker);

}  // namespace dashboard
