// Metrics for scrapers and probes for load balancers: the broker's,
// transports' and backend's counters in the Prometheus text exposition
// format (version 0.0.4), and the health endpoints.
//
//   livecast::MetricsExporter exporter(broker);
//   exporter.add(ws);                                   // each transport
//   settings.http_handler = exporter.handler(serve_page); // GET /metrics, /healthz, /readyz
//   std::string text = exporter.text();                 // or serve it yourself
//
// Lifetimes. The exporter holds references to the broker, the transports and
// the verifier it was given, and the handler holds a reference to the
// exporter: the broker and every added object must outlive the exporter, and
// the exporter must outlive every transport serving its handler (stop them
// first).
//
// Threads. add() before the handler serves (it is not synchronised with
// text()); text(), write() and the handler from any thread, at once.
// docs/operations.md lists every metric.
#pragma once

#include <livecast/config.hpp>
#include <livecast/transport.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

LIVECAST_BEGIN_NAMESPACE

class Broker;
class JwtVerifier;

// Writes one exposition: families (a name with its HELP and TYPE, written
// once) and their samples, grouped by family whatever order they were added
// in, label values escaped. Counters must be named `..._total`; use base
// units (seconds, bytes) in names. A name or label name that Prometheus
// would refuse, or a family added again with another type, is the caller's
// bug: std::invalid_argument.
class MetricsWriter {
 public:
  struct Label {
    std::string_view name;
    std::string_view value;  // any bytes; escaped as the format asks
  };
  using Labels = std::initializer_list<Label>;

  void counter(std::string_view name, std::string_view help, std::uint64_t value, Labels labels = {});
  void gauge(std::string_view name, std::string_view help, double value, Labels labels = {});
  // `bounds`: upper bounds, ascending; `counts`: observations per bucket
  // (not cumulative), one more than bounds (the last: above every bound).
  // Written as _bucket (cumulative, le="+Inf" last), _sum and _count.
  void histogram(std::string_view name, std::string_view help, const std::vector<double>& bounds,
                 const std::vector<std::uint64_t>& counts, double sum, Labels labels = {});

  // The exposition so far.
  std::string text() const;

 private:
  struct Family {
    std::string name, help, type, samples;
  };
  Family& family(std::string_view name, std::string_view help, const char* type);
  void sample(Family& f, std::string_view suffix, Labels labels, std::string_view extra_label_name,
              std::string_view extra_label_value, const std::string& value);

  std::vector<Family> families_;
  std::unordered_map<std::string, std::size_t> index_;
};

// The paths the exporter's handler answers, and how.
struct MetricsEndpoints {
  std::string metrics_path = "/metrics";  // the exposition
  std::string health_path = "/healthz";   // 200 "ok" while the process serves
  std::string ready_path = "/readyz";     // 200 when Broker::readiness() says ready, else 503
  // Sent with a 503 from ready_path as Retry-After (seconds).
  std::chrono::seconds retry_after{5};
};

// The content type of the Prometheus text format.
inline constexpr const char* prometheus_content_type = "text/plain; version=0.0.4; charset=utf-8";

class MetricsExporter {
 public:
  explicit MetricsExporter(const Broker& broker, MetricsEndpoints endpoints = {});
  // Its handlers point to it: not copied, not moved.
  MetricsExporter(const MetricsExporter&) = delete;
  MetricsExporter& operator=(const MetricsExporter&) = delete;

  // Each transport's counters, labelled with its name (Transport::write_metrics).
  void add(const Transport& transport);
  // The built-in JWT verifier's counters (livecast_jwt_*), when the host uses one.
  void add(const JwtVerifier& verifier);
  // The host's own metrics, written after livecast's. Must not block.
  void add(std::function<void(MetricsWriter&)> source);

  // Everything, as the Prometheus text format.
  std::string text() const;
  void write(MetricsWriter& out) const;

  // Answers GET (or HEAD) on the three paths of MetricsEndpoints and hands
  // every other request to `fallback` (none: 404). For
  // WebSocketSettings::http_handler or HttpTransportSettings::http_handler.
  HttpHandler handler(HttpHandler fallback = {}) const;
  // One request, as handler() answers it; nothing for a path not its own.
  std::optional<HttpResponse> serve(const HttpRequest& request) const;

 private:
  const Broker& broker_;
  MetricsEndpoints endpoints_;
  std::vector<const Transport*> transports_;
  std::vector<const JwtVerifier*> verifiers_;
  std::vector<std::function<void(MetricsWriter&)>> sources_;
};

LIVECAST_END_NAMESPACE
