// The transports' counters as Prometheus metrics (Transport::write_metrics),
// one family per meaning with a `transport` label, so that a dashboard sums
// or splits them alike for every transport. docs/operations.md lists them.
#include <livecast/http_transport.hpp>
#include <livecast/metrics.hpp>
#include <livecast/websocket_transport.hpp>

#include <cstdint>
#include <string_view>
#include <utility>

LIVECAST_BEGIN_NAMESPACE

namespace {

constexpr const char* refusals_help = "Connections or requests refused before they became sessions, by reason.";

void write_tls(const TlsMetrics& m, std::string_view transport, MetricsWriter& w) {
  w.counter("livecast_tls_handshake_failures_total", "TLS handshakes that failed or timed out.", m.handshakes_failed,
            {{"transport", transport}});
  w.counter("livecast_tls_reloads_total", "Certificate and key pairs loaded after start.", m.reloads,
            {{"transport", transport}});
  w.counter("livecast_tls_reload_failures_total", "Certificate and key pairs that did not load.", m.reload_failures,
            {{"transport", transport}});
}

// Both transports' connection counts, under one HELP per family.
void write_connections(std::uint64_t accepted, std::uint64_t active, std::string_view transport, MetricsWriter& w) {
  w.counter("livecast_connections_accepted_total", "Connections taken, refused ones included.", accepted,
            {{"transport", transport}});
  w.gauge("livecast_connections_active", "Connections open now.", static_cast<double>(active),
          {{"transport", transport}});
}

void write_refusals(std::initializer_list<std::pair<const char*, std::uint64_t>> refusals, std::string_view transport,
                    MetricsWriter& w) {
  for (const auto& [reason, n] : refusals)
    w.counter("livecast_handshake_refusals_total", refusals_help, n, {{"transport", transport}, {"reason", reason}});
}

}  // namespace

void WebSocketTransport::write_metrics(MetricsWriter& w) const {
  const WebSocketTransportMetrics m = metrics();
  const std::string_view t = name();
  write_connections(m.connections, m.connections_active, t, w);
  w.gauge("livecast_handshakes_pending", "Connections whose opening handshake has not completed.",
          static_cast<double>(m.handshakes_pending), {{"transport", t}});
  write_refusals({{"too_many_connections", m.refused_too_many_connections},
                  {"per_address", m.refused_per_address},
                  {"pending_handshakes", m.refused_pending_handshakes}},
                 t, w);
  write_tls(m.tls, t, w);
}

void HttpTransport::write_metrics(MetricsWriter& w) const {
  const HttpTransportMetrics m = metrics();
  const std::string_view t = name();
  write_connections(m.connections, m.connections_active, t, w);
  w.counter("livecast_http_requests_total", "Complete HTTP request heads read.", m.requests, {{"transport", t}});
  const char* answered_help = "HTTP requests answered, by what they were.";
  const std::pair<const char*, std::uint64_t> answered[] = {
      {"sse", m.sse_streams},         {"poll", m.polls},           {"post", m.posts},
      {"preflight", m.preflights},    {"handler", m.handler_requests}, {"websocket_upgrade", m.websocket_upgrades},
      {"publish", m.publish_requests}, {"engineio_handshake", m.engineio_sessions},
      {"engineio_poll", m.engineio_polls}, {"engineio_post", m.engineio_posts}};
  for (const auto& [kind, n] : answered)
    w.counter("livecast_http_exchanges_total", answered_help, n, {{"transport", t}, {"kind", kind}});
  w.counter("livecast_http_published_total", "Publications taken by POST /publish (a batch counts each).",
            m.publish_publications, {{"transport", t}});
  w.gauge("livecast_sse_streams_active", "SSE streams open now.", static_cast<double>(m.sse_active),
          {{"transport", t}});
  w.gauge("livecast_engineio_sessions_active", "Engine.IO polling sessions open now.",
          static_cast<double>(m.engineio_sessions_active), {{"transport", t}});
  w.counter("livecast_write_timeouts_total", "Connections closed because a write did not reach the kernel in time.",
            m.write_timeouts, {{"transport", t}});
  write_refusals({{"malformed", m.refused_malformed},
                  {"bad_parameters", m.refused_bad_parameters},
                  {"too_large", m.refused_too_large},
                  {"method", m.refused_method},
                  {"unauthorized", m.refused_unauthorized},
                  {"origin", m.refused_origin},
                  {"not_found", m.refused_not_found},
                  {"timeout", m.refused_timeout},
                  {"too_many_connections", m.refused_too_many_connections},
                  {"per_address", m.refused_per_address},
                  {"shutting_down", m.refused_shutting_down},
                  {"rate_limited", m.refused_rate_limited},
                  {"forbidden", m.refused_forbidden},
                  {"unavailable", m.refused_unavailable},
                  {"unknown_session", m.refused_unknown_session},
                  {"engineio", m.refused_engineio}},
                 t, w);
  w.counter("livecast_ignored_cookie_credentials_total",
            "Requests whose livecast_token cookie was not taken as their token (no allowed Origin).",
            m.ignored_cookie_credentials, {{"transport", t}});
  write_tls(m.tls, t, w);
}

LIVECAST_END_NAMESPACE
