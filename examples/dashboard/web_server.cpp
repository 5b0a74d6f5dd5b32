#include "web_server.hpp"

#include "demo_access.hpp"
#include "web_assets.hpp"

#include <cctype>
#include <cstddef>
#include <memory>
#include <string>

namespace dashboard {

namespace {

livecast::Json metrics_json(const livecast::BrokerMetrics& m) {
  livecast::Json errors = livecast::Json::object();
  for (std::size_t i = 1; i < m.errors_by_code.size(); ++i) {
    if (m.errors_by_code[i] == 0) continue;
    errors.set(livecast::to_wire_name(static_cast<livecast::Errc>(i)), m.errors_by_code[i]);
  }
  return livecast::Json::object({{"publications", m.publications},
                                 {"publish_errors", m.publish_errors},
                                 {"deliveries", m.deliveries},
                                 {"dropped", m.dropped},
                                 {"slow_consumer_closes", m.slow_consumer_closes},
                                 {"sessions_opened", m.sessions_opened},
                                 {"sessions_closed", m.sessions_closed},
                                 {"sessions_active", m.sessions_active},
                                 {"subscriptions_active", m.subscriptions_active},
                                 {"messages_received", m.messages_received},
                                 {"errors_sent", m.errors_sent},
                                 {"backend_errors", m.backend_errors},
                                 {"errors_by_code", errors}});
}

// A Host header is client-supplied text that ends up in a URL the page dials:
// accept only what a host[:port] can hold, anything else gets no URL and the
// page falls back to its own location.
bool plausible_host(const std::string& host) {
  if (host.empty() || host.size() > 255) return false;
  for (unsigned char c : host)
    if (!std::isalnum(c) && c != '.' && c != '-' && c != '_' && c != ':' && c != '[' && c != ']') return false;
  return true;
}

// The host part of a Host header ("example.com:8080", "[::1]:9000").
std::string host_without_port(const std::string& host) {
  if (!host.empty() && host.front() == '[') return host.substr(0, host.find(']') + 1);
  return host.substr(0, host.find(':'));
}

// Where the page connects: one URL for the WebSocket, SSE and long-polling
// (the HTTP transport's port); the fallbacks' own URLs only when they are on
// a second port (another origin, so that port answers with CORS headers).
livecast::Json client_config(const livecast::HttpRequest& request, const WebEndpoints& endpoints) {
  livecast::Json config = livecast::Json::object();
  const std::string& host = request.header("Host");
  if (!plausible_host(host)) return config;
  const std::string name = host_without_port(host);
  const std::string scheme = endpoints.tls ? "https://" : "http://";
  config.set("url", scheme + (endpoints.port ? name + ":" + std::to_string(endpoints.port) : host));
  if (endpoints.fallback_port) {
    const std::string base = scheme + name + ":" + std::to_string(endpoints.fallback_port);
    config.set("sse", base + "/sse");
    config.set("poll", base + "/poll");
  }
  return config;
}

// index.html with the Socket.IO bundle in place of the default one: the same
// page, its styles included, on socket.io-client. The dashboard page has one
// script tag; a page without it is served as it is.
std::string socketio_page(FindWebAsset page) {
  const WebAsset* index = page("/index.html");
  std::string html = index ? std::string(index->body) : std::string();
  const std::string from = "/dist/dashboard.js", to = "/dist/dashboard-socketio.js";
  if (auto at = html.find(from); at != std::string::npos) html.replace(at, from.size(), to);
  return html;
}

livecast::HttpResponse json_response(int status, std::string body) {
  livecast::HttpResponse response{status, "application/json", std::move(body), {}};
  response.headers.emplace_back("Cache-Control", "no-store");
  return response;
}

}  // namespace

livecast::HttpHandler make_web_handler(livecast::Broker& broker, const livecast::MetricsExporter& exporter,
                                      WebEndpoints endpoints, FindWebAsset page) {
  // Made once per handler rather than per request.
  auto socketio_index = std::make_shared<const std::string>(socketio_page(page));
  // /metrics, /healthz and /readyz first; the page and its JSON views behind.
  return exporter.handler([&broker, endpoints, page, socketio_index](const livecast::HttpRequest& request) {
    if (request.path == "/admin/metrics.json") {
      // Whatever authenticates sessions (demo tokens, or JWTs with --jwt-secret).
      const livecast::AuthResult who = broker.settings().authenticator(request);
      const auto& principal = who.principal;
      if (!principal || !principal->has_role("admin"))
        return json_response(403, R"({"error":{"code":"forbidden","message":"metrics need an admin token"}})");
      return json_response(200, metrics_json(broker.metrics()).dump());
    }

    if (request.path == "/config.json") return json_response(200, client_config(request, endpoints).dump());

    const bool index = request.path == "/" || request.path == "/index.html";
    const WebAsset* asset = page(index ? "/index.html" : request.path);
    if (!asset) return livecast::HttpResponse::not_found();
    livecast::HttpResponse response{200, std::string(asset->content_type), std::string(asset->body), {}};
    if (index && request.query_param("client") == "socketio") response.body = *socketio_index;
    // The page changes with every build of the binary; never serve a stale one.
    response.headers.emplace_back("Cache-Control", "no-cache");
    response.headers.emplace_back("X-Content-Type-Options", "nosniff");
    return response;
  });
}

}  // namespace dashboard
