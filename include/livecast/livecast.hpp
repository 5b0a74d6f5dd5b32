// livecast: an embeddable real-time broadcast library. Include this header
// for everything; each concept also has a header of its own:
//
//   Broker             broker.hpp              construct, start, publish from any thread, metrics, presence
//   Topic              topic.hpp               one topic: latest value, history, presence
//   Session            session.hpp             one client: principal, subscriptions, counters, close
//   SessionHooks       session_control.hpp     host control: session listings, open/close/subscribe hooks
//   SlowConsumerPolicy slow_consumer_policy.hpp what gives when a client reads too slowly
//   Transport          transport.hpp           how sessions arrive
//   WebSocketTransport websocket_transport.hpp
//   HttpTransport      http_transport.hpp      SSE and long-polling fallbacks
//   TlsSettings        tls.hpp                 wss:// and https://: certificate, key, reloading
//   Protocol           protocol.hpp            wire formats: livecast.v1 (docs/protocol.md) and yours
//   Backend            backend.hpp             fan-out, offsets, history, latest value
//   InProcessBackend   in_process_backend.hpp  the embedded default
//   Authenticator      handshake.hpp           handshake -> Principal
//   JwtVerifier        jwt.hpp                 the built-in Authenticator: HS256/RS256/ES256 JWTs, JWKS
//   MetricsExporter    metrics.hpp             Prometheus /metrics, /healthz and /readyz
//   Authorizer         authorizer.hpp          who may subscribe / publish where
//   Json               json.hpp                a small builder for payloads
//   LogSink            log.hpp                 structured events for the operator (BrokerSettings::log)
//   Aggregator         aggregator.hpp          record(metric, value); 1s/5s/1m summaries published
//   QuantileSketch     quantile_sketch.hpp     p50..p99 of a stream in bounded memory, mergeable
//
// Writing a transport of your own: session_host.hpp (what a transport sees
// of the broker), not included here. docs/architecture.md maps the rest.
//
// With livecast::redis (find_package(livecast COMPONENTS redis)), included
// on their own because they need hiredis at link time:
//   RedisBackend      redis_backend.hpp       several instances share one Redis
//   RedisStreamSource redis_stream_source.hpp publications fed from a Redis Stream (consumer group)
#pragma once

#include <livecast/aggregator.hpp>
#include <livecast/authorizer.hpp>
#include <livecast/backend.hpp>
#include <livecast/broker.hpp>
#include <livecast/client_event.hpp>
#include <livecast/config.hpp>
#include <livecast/error.hpp>
#include <livecast/handshake.hpp>
#include <livecast/http_transport.hpp>
#include <livecast/in_process_backend.hpp>
#include <livecast/json.hpp>
#include <livecast/log.hpp>
#include <livecast/jwt.hpp>
#include <livecast/metrics.hpp>
#include <livecast/principal.hpp>
#include <livecast/protocol.hpp>
#include <livecast/publication.hpp>
#include <livecast/quantile_sketch.hpp>
#include <livecast/session.hpp>
#include <livecast/session_control.hpp>
#include <livecast/slow_consumer_policy.hpp>
#include <livecast/socketio.hpp>
#include <livecast/tls.hpp>
#include <livecast/topic.hpp>
#include <livecast/transport.hpp>
#include <livecast/websocket_transport.hpp>
