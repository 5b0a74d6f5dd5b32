// MetricsExporter: BrokerMetrics, the backend's health and every added
// transport, verifier and host source written as one Prometheus exposition,
// and the three endpoints. The names and types here are the table of
// docs/operations.md ("Metrics"); tests/ops checks that they agree.
#include <livecast/broker.hpp>
#include <livecast/jwt.hpp>
#include <livecast/metrics.hpp>

#include <string>
#include <utility>

LIVECAST_BEGIN_NAMESPACE

namespace {

void write_broker(const BrokerMetrics& m, SlowConsumerPolicy policy, MetricsWriter& w) {
  w.counter("livecast_publications_total", "Publications accepted by Broker::publish.", m.publications);
  w.counter("livecast_publish_errors_total", "Publications refused by Broker::publish or failed in the backend.",
            m.publish_errors);
  w.counter("livecast_deliveries_total", "Publication frames queued to sessions.", m.deliveries);
  w.counter("livecast_dropped_publications_total",
            "Publications dropped for slow consumers, by the sessions' slow-consumer policy.", m.dropped,
            {{"policy", to_string(policy)}});
  w.counter("livecast_publications_coalesced_total",
            "Queued publications replaced by a newer one of the same key (TopicDelivery::coalesce_by).",
            m.publications_coalesced);
  w.counter("livecast_publications_shed_total",
            "Publications a shard that fell behind dropped before fanning them out (more of a topic waited than a "
            "send queue holds).",
            m.publications_shed);
  w.counter("livecast_publications_unchanged_total",
            "Publications not sent for being the same as the topic's last (TopicDelivery::only_changes).",
            m.publications_unchanged);
  w.counter("livecast_slow_consumer_closes_total", "Sessions closed because their send queue overflowed.",
            m.slow_consumer_closes);
  w.counter("livecast_sessions_opened_total", "Sessions opened.", m.sessions_opened);
  w.counter("livecast_sessions_closed_total", "Sessions closed.", m.sessions_closed);
  w.gauge("livecast_sessions_active", "Sessions open now.", static_cast<double>(m.sessions_active));
  w.gauge("livecast_subscriptions_active", "Subscriptions held by sessions now.",
          static_cast<double>(m.subscriptions_active));
  w.gauge("livecast_topics_active", "Topics with at least one subscription on this instance now.",
          static_cast<double>(m.topics_active));
  w.gauge("livecast_send_queue_bytes", "Bytes in sessions' send queues or being written now.",
          static_cast<double>(m.send_queue_bytes));
  w.counter("livecast_messages_received_total", "Client messages handed to the broker.", m.messages_received);
  for (std::size_t i = 1; i < m.errors_by_code.size(); ++i)
    w.counter("livecast_error_replies_total", "Error replies sent to clients, by error code.", m.errors_by_code[i],
              {{"code", to_wire_name(static_cast<Errc>(i))}});
  w.counter("livecast_backend_errors_total", "Backend connection losses and failures reported to the broker.",
            m.backend_errors);
  w.counter("livecast_history_losses_total", "Topics whose live subscribers were told their history was lost.",
            m.history_losses);
  w.counter("livecast_callback_errors_total", "Host hooks that threw.", m.callback_errors);
  w.counter("livecast_recoveries_total", "Subscribes that asked to recover from a position, by outcome.",
            m.recoveries_recovered, {{"outcome", "recovered"}});
  w.counter("livecast_recoveries_total", "Subscribes that asked to recover from a position, by outcome.",
            m.recoveries_not_recovered, {{"outcome", "not_recovered"}});
  w.counter("livecast_replayed_publications_total", "Publications sent by recoveries.", m.publications_replayed);
  w.counter("livecast_replayed_bytes_total", "Payload bytes of the publications sent by recoveries.",
            m.bytes_replayed);
  w.counter("livecast_recent_history_reads_total", "Subscribes answered with recent history.",
            m.recent_history_reads);
  w.counter("livecast_recent_publications_sent_total",
            "Publications sent to subscribes that asked for recent history, before the live ones.",
            m.recent_publications_sent);
  w.counter("livecast_subscribe_reads_total", "Backend reads started for subscribes.", m.subscribe_reads);
  w.counter("livecast_subscribe_reads_waited_total", "Backend reads for subscribes that waited for a turn.",
            m.subscribe_reads_waited);
  w.counter("livecast_subscribe_reads_refused_total",
            "Subscribes refused as rate_limited: over max_reads_waiting_per_client.", m.subscribe_reads_refused);
  w.gauge("livecast_subscribe_reads_in_flight", "Backend reads for subscribes running now.",
          static_cast<double>(m.subscribe_reads_in_flight));
  w.gauge("livecast_subscribe_reads_waiting", "Backend reads for subscribes waiting for a turn now.",
          static_cast<double>(m.subscribe_reads_waiting));
  w.gauge("livecast_draining", "1 from Broker::drain on, else 0.", static_cast<double>(m.draining));
  w.counter("livecast_drain_closes_total", "Sessions closed by a drain, by how.", m.drain_closes,
            {{"kind", "reconnect_after"}});
  w.counter("livecast_drain_closes_total", "Sessions closed by a drain, by how.", m.drain_forced_closes,
            {{"kind", "forced"}});
  w.counter("livecast_rebalance_closes_total",
            "Sessions closed with 4012 to move them to other instances (RebalanceSettings).", m.rebalance_closes);
  const LatencyHistogram& h = m.delivery_latency;
  w.histogram("livecast_delivery_latency_seconds",
              "From a publication reaching this instance's broker to its frame being taken for the socket.",
              std::vector<double>(h.bounds.begin(), h.bounds.end()),
              std::vector<std::uint64_t>(h.counts.begin(), h.counts.end()), h.sum);
}

void write_backend_health(const BackendHealth& health, MetricsWriter& w) {
  w.gauge("livecast_backend_up", "1 while the backend can take publications and answer reads, else 0.",
          health.available ? 1 : 0);
  w.gauge("livecast_backend_unavailable_seconds", "How long the backend has been unavailable (0 while up).",
          std::chrono::duration<double>(health.unavailable_for).count());
  if (health.round_trip)
    w.gauge("livecast_backend_round_trip_seconds", "The latest measured round trip to the backend's server.",
            std::chrono::duration<double>(*health.round_trip).count());
}

void write_jwt(const JwtMetrics& m, MetricsWriter& w) {
  w.counter("livecast_jwt_accepted_total", "Tokens the JWT verifier accepted.", m.accepted);
  const char* help = "Tokens the JWT verifier refused, by the first check they failed.";
  const std::pair<const char*, std::uint64_t> refusals[] = {
      {"missing", m.missing},         {"oversized", m.oversized},     {"malformed", m.malformed},
      {"algorithm", m.algorithm},     {"unknown_kid", m.unknown_kid}, {"signature", m.signature},
      {"expired", m.expired},         {"not_yet_valid", m.not_yet_valid}, {"audience", m.audience},
      {"issuer", m.issuer},           {"claims", m.claims}};
  for (const auto& [reason, n] : refusals) w.counter("livecast_jwt_refusals_total", help, n, {{"reason", reason}});
  w.counter("livecast_jwt_jwks_loads_total", "JWKS file versions put in use.", m.jwks_loads);
  w.counter("livecast_jwt_jwks_errors_total", "JWKS file versions refused (the keys before stayed).", m.jwks_errors);
  w.gauge("livecast_jwt_keys", "Keys the JWT verifier holds now.", static_cast<double>(m.keys));
}

HttpResponse text_response(int status, std::string body) {
  return HttpResponse{status, "text/plain; charset=utf-8", std::move(body), {{"Cache-Control", "no-store"}}};
}

}  // namespace

MetricsExporter::MetricsExporter(const Broker& broker, MetricsEndpoints endpoints)
    : broker_(broker), endpoints_(std::move(endpoints)) {}

void MetricsExporter::add(const Transport& transport) { transports_.push_back(&transport); }
void MetricsExporter::add(const JwtVerifier& verifier) { verifiers_.push_back(&verifier); }
void MetricsExporter::add(std::function<void(MetricsWriter&)> source) {
  if (source) sources_.push_back(std::move(source));
}

void MetricsExporter::write(MetricsWriter& out) const {
  write_broker(broker_.metrics(), broker_.settings().session.slow_consumer_policy, out);
  const Backend& backend = broker_.backend();
  write_backend_health(backend.health(), out);
  backend.write_metrics(out);
  for (const Transport* t : transports_) t->write_metrics(out);
  for (const JwtVerifier* v : verifiers_) write_jwt(v->metrics(), out);
  for (const auto& source : sources_) source(out);
}

std::string MetricsExporter::text() const {
  MetricsWriter writer;
  write(writer);
  return writer.text();
}

std::optional<HttpResponse> MetricsExporter::serve(const HttpRequest& request) const {
  if (request.path == endpoints_.metrics_path) {
    HttpResponse r = text_response(200, text());
    r.content_type = prometheus_content_type;
    return r;
  }
  if (request.path == endpoints_.health_path) return text_response(200, "ok\n");
  if (request.path == endpoints_.ready_path) {
    const Readiness readiness = broker_.readiness();
    if (readiness.ready) return text_response(200, "ready\n");
    HttpResponse r = text_response(503, "not ready: " + readiness.reason + "\n");
    r.headers.emplace_back("Retry-After", std::to_string(endpoints_.retry_after.count()));
    return r;
  }
  return std::nullopt;
}

HttpHandler MetricsExporter::handler(HttpHandler fallback) const {
  return [this, fallback = std::move(fallback)](const HttpRequest& request) {
    if (std::optional<HttpResponse> r = serve(request)) return std::move(*r);
    return fallback ? fallback(request) : HttpResponse::not_found();
  };
}

LIVECAST_END_NAMESPACE
