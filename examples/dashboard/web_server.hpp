// The plain-HTTP side of the demo, served by the HttpTransport's HttpHandler
// on the one port that also carries the WebSocket, SSE and long-polling:
// the embedded page and a metrics view.
#pragma once

#include "web_assets.hpp"

#include <livecast/livecast.hpp>

#include <cstdint>

namespace dashboard {

// GET /                the dashboard page (any query, e.g. ?token=analyst-acme), on the livecast
//                      JS client; with ?client=socketio, the same page on socket.io-client
// GET /<asset>         the page's scripts and styles
// GET /config.json     where the page connects: {"url":"http://<host>:<port>"}, one URL
//                      for the WebSocket (/ws), SSE (/sse) and long-polling (/poll), the
//                      host taken from the request's Host header; with the fallbacks on a
//                      port of their own, also "sse" and "poll"
// GET /admin/metrics.json?token=  BrokerMetrics as JSON, for admin tokens only (the page's panel)
// GET /metrics         every counter in Prometheus' text format, for scrapers
// GET /healthz         200 while the process serves (liveness)
// GET /readyz          200 while it takes new clients, else 503 (readiness: draining, stopped,
//                      Redis down for longer than its grace)
// Everything else is 404. The broker and the exporter must outlive the handler.
// `page` finds the page's files: the dashboard's by default, another
// example's own (examples/react-dashboard) with the same endpoints.
// The ports the page is told about.
struct WebEndpoints {
  std::uint16_t port = 0;           // everything; 0: the port the page was loaded from
  std::uint16_t fallback_port = 0;  // SSE and long-polling on a second port; 0: on `port`
  bool tls = false;                 // both ports speak TLS (https://, wss://)
};

livecast::HttpHandler make_web_handler(livecast::Broker& broker, const livecast::MetricsExporter& exporter,
                                      WebEndpoints endpoints = {}, FindWebAsset page = find_web_asset);

}  // namespace dashboard
