// The HTTP transport: one port for everything a browser asks of livecast.
// It serves the HTTP fallbacks for clients that cannot keep a WebSocket open
// (proxies that strip upgrades, some corporate networks): Server-Sent Events
// for the downstream, and stateless long-polling, which needs no sticky
// sessions when several instances share a backend. Both carry any Protocol
// the broker speaks (livecast.v1 unless the request says `protocol=`); the
// wire rules are in docs/protocol.md, "HTTP fallbacks". With
// serve_websocket() it also hands WebSocket upgrades to a WebSocketTransport,
// and every other request goes to the host's HttpHandler (a page, /metrics),
// and with HttpTransportSettings::publish_path it takes publications from
// services in any language (POST, JSON, answered with offsets),
// so a proxy in front needs one upstream:
//
//   livecast::WebSocketSettings ws_settings;
//   ws_settings.listen = false;                   // no port of its own
//   livecast::WebSocketTransport ws(broker, ws_settings);
//   livecast::HttpTransportSettings http_settings;
//   http_settings.port = 8080;
//   livecast::HttpTransport http(broker, http_settings);
//   http.serve_websocket(ws);                     // upgrades on ws_settings.path
//   ws.start(); http.start();
//
// Like WebSocketTransport: one listening socket per broker shard on one port
// (SO_REUSEPORT), and every connection lives on its shard's thread.
#pragma once

#include <livecast/broker.hpp>
#include <livecast/config.hpp>
#include <livecast/tls.hpp>
#include <livecast/transport.hpp>
#include <livecast/websocket_transport.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

LIVECAST_BEGIN_NAMESPACE

struct HttpTransportSettings {
  // Address to bind; "127.0.0.1" for loopback only, "::" for IPv6 and IPv4.
  std::string address = "0.0.0.0";
  // 0 picks a free port (see Transport::port()).
  std::uint16_t port = 8081;
  // GET opens an SSE stream here.
  std::string sse_path = "/sse";
  // GET long-polls, POST runs one client message (publish, ping) here.
  std::string poll_path = "/poll";
  // Engine.IO's polling transport for Socket.IO clients, when the broker
  // speaks the socket.io protocol (socketio.hpp).
  std::string socketio_path = "/socket.io/";
  // POST publishes here, for services in any language: a small REST API of
  // its own (docs/operations.md, "Publishing over HTTP"), not a Protocol.
  // The request is authenticated like any client's (the Authenticator: e.g.
  // a service's token as `Authorization: Bearer`), counts against
  // max_session_requests_per_second, and each topic needs the Authorizer's
  // Action::publish. Body {"topic":T,"data":<JSON>} or an array of them;
  // answer {"offsets":[...]}. The default Authorizer lets no one publish,
  // so a host turns it on by allowing Action::publish to some principal.
  // Empty: no publishing over HTTP (the path goes to http_handler then).
  std::string publish_path = "/publish";
  // Publications in one POST to publish_path; more: 413. Each is checked
  // (topic, size, Authorizer) before any is published, and the body's size
  // is bounded by max_body_bytes too.
  std::size_t max_publish_batch = 100;
  // Origins allowed (e.g. "https://dash.example.com"); empty: any. An allowed
  // Origin is reflected in Access-Control-Allow-Origin (with credentials when
  // the list is not empty); others get 403. Requests without Origin pass.
  // A `livecast_token` cookie counts as the token only on a request whose
  // Origin is on this list: with the list empty, or without an Origin, clients
  // must send `?token=` or `Authorization: Bearer` (see docs/protocol.md).
  // Upgrades handed to a WebSocketTransport follow its own list.
  std::vector<std::string> allowed_origins;
  // Answers GET and HEAD on every other path; default: 404.
  HttpHandler http_handler;
  // Pending connections in the kernel's accept queue.
  int listen_backlog = 1024;
  // Kernel send buffer per connection (SO_SNDBUF), in bytes; 0 keeps the
  // kernel's auto-tuning. As for WebSocketSettings: bytes there are beyond
  // the session's send_queue_bytes, so a small value bounds a stuck SSE reader.
  std::size_t socket_send_buffer_bytes = 0;
  // Open connections over all shards; beyond it, new ones get 503 and are closed.
  // Engine.IO polling sessions, which outlive their requests, are bounded by
  // the same number on their own (a handshake beyond it gets 503).
  std::size_t max_connections = 10000;
  // Open connections from one remote address (an IPv4 address, or an IPv6
  // /64) over all shards; beyond it, new ones from there get 503 and are
  // closed. Clients behind one NAT or proxy share it; raise it (up to
  // max_connections, which turns it off) where many users share an address.
  // A connection handed to the WebSocket transport leaves this count for
  // WebSocketSettings::max_connections_per_address.
  std::size_t max_connections_per_address = 256;
  // Request limits: line (414 beyond), all header lines (431), header
  // fields (431), body (413).
  std::size_t max_request_line_bytes = 8 * 1024;
  std::size_t max_header_bytes = 16 * 1024;
  std::size_t max_header_fields = 100;
  std::size_t max_body_bytes = 64 * 1024;
  // Time a client has to send a request's head and body, counted from when
  // the server starts waiting for it (a new connection, or the end of the
  // previous response on a kept-alive one); then the connection is closed.
  std::chrono::milliseconds request_timeout{10000};
  // Time one write may take to reach the kernel. A client that stopped
  // reading (its receive buffer and our send buffer full) is cut off after
  // it: connection closed, session closed, counted in write_timeouts. It
  // applies to every write, and matters most for SSE streams, which
  // otherwise hold their connection for as long as the client stays
  // connected: the session's slow-consumer policy bounds the bytes a stuck
  // stream holds, this bounds the time. Allow the largest write (64 KiB of
  // events, a poll answer of max_poll_response_bytes) at the slowest
  // client's rate; 30 s is about 2 KiB/s for a stream. 0: no limit.
  std::chrono::milliseconds write_timeout{30000};
  // An SSE comment line at this interval keeps proxies from closing a quiet
  // stream and finds dead peers.
  std::chrono::milliseconds sse_heartbeat{15000};
  // How long a GET poll waits for news when the client names no `timeout`...
  std::chrono::milliseconds poll_timeout{25000};
  // ...and the most and the least a client may ask for with `timeout=<ms>`
  // (a poll with news answers at once whatever it asked). The least keeps a
  // client from turning polling into a loop of sessions that each answer
  // "nothing" at once: `timeout=0` waits this long.
  std::chrono::milliseconds max_poll_timeout{55000};
  std::chrono::milliseconds min_poll_timeout{1000};
  // SSE streams, GET polls and POSTs one client may start per second, in
  // bursts up to twice this; beyond it 429 with Retry-After (counted in
  // refused_rate_limited). A client is its principal's id, or its remote
  // address (IPv4, or IPv6 /64) when anonymous. Each such request is a new
  // session that reads every topic it names from the backend, so this
  // bounds what one client costs; the session's own message limit
  // (SessionSettings::max_messages_per_second) cannot, as a request is one
  // message. A browser polling busy topics makes a few requests a second;
  // raise it where many anonymous users share an address. 0: no limit.
  unsigned max_session_requests_per_second = 50;
  // After the first news, a poll waits this long for more before answering,
  // so that a burst costs one round trip, not one per publication.
  std::chrono::milliseconds poll_coalescing{10};
  // A poll answers at once when its messages reach this many bytes; the
  // next poll continues from the cursor.
  std::size_t max_poll_response_bytes = 256 * 1024;
  // TLS (https://, and wss:// for the upgrades handed to serve_websocket's
  // transport); none: plain TCP. See tls.hpp. A connection refused for a
  // connection limit is closed before its TLS handshake, unanswered.
  std::optional<TlsSettings> tls;
};

// Counters since start (all monotonic but the *_active ones).
struct HttpTransportMetrics {
  std::uint64_t connections = 0;         // accepted
  std::uint64_t connections_active = 0;
  std::uint64_t requests = 0;            // complete request heads
  std::uint64_t sse_streams = 0;         // SSE streams opened
  std::uint64_t sse_active = 0;
  std::uint64_t polls = 0;               // GET polls answered
  std::uint64_t posts = 0;               // POST messages answered
  std::uint64_t publish_requests = 0;    // POSTs to publish_path answered 200 (all published)
  std::uint64_t publish_publications = 0;  // publications they (and partly failed ones) published
  std::uint64_t preflights = 0;          // OPTIONS answered
  std::uint64_t handler_requests = 0;    // given to http_handler
  std::uint64_t websocket_upgrades = 0;  // handed to the WebSocket transport (serve_websocket)
  std::uint64_t write_timeouts = 0;      // connections cut off by write_timeout (not refusals)
  // Engine.IO polling at socketio_path: sessions opened by a handshake, open
  // now, GETs answered with packets, POSTs of packets answered "ok".
  std::uint64_t engineio_sessions = 0;
  std::uint64_t engineio_sessions_active = 0;
  std::uint64_t engineio_polls = 0;
  std::uint64_t engineio_posts = 0;
  // Refusals, by reason.
  std::uint64_t refused_malformed = 0;          // 400, 501, 505: unparsable request
  std::uint64_t refused_bad_parameters = 0;     // 400: topics, cursor, timeout or body
  std::uint64_t refused_too_large = 0;          // 413, 414, 431
  std::uint64_t refused_method = 0;             // 405
  std::uint64_t refused_unauthorized = 0;       // 401 (and 500 when the Authenticator threw)
  std::uint64_t refused_origin = 0;             // 403
  std::uint64_t refused_not_found = 0;          // 404 (default handler)
  std::uint64_t refused_timeout = 0;            // request not received in time
  std::uint64_t refused_too_many_connections = 0;  // 503: max_connections
  std::uint64_t refused_per_address = 0;        // 503: max_connections_per_address
  std::uint64_t refused_shutting_down = 0;      // 503 while stopping
  std::uint64_t refused_rate_limited = 0;       // 429: max_session_requests_per_second
  std::uint64_t refused_forbidden = 0;          // 403: the Authorizer refused a publication's topic (500: it threw)
  std::uint64_t refused_unavailable = 0;        // 503: the backend failed publications of a POST
  std::uint64_t refused_unknown_session = 0;    // 400: Engine.IO request for a sid that is not (or no longer) open
  std::uint64_t refused_engineio = 0;           // 400: other Engine.IO refusals (version, transport, method,
                                                // overlapping GET, binary body)
  // SSE, poll and POST requests whose `livecast_token` cookie was not taken as
  // their token, for want of an Origin on a non-empty allowed_origins
  // (HandshakeRequest::cookie_credentials_allowed); the Authenticator then
  // usually refuses them (refused_unauthorized). Not a refusal by itself.
  std::uint64_t ignored_cookie_credentials = 0;
  TlsMetrics tls;  // with HttpTransportSettings::tls

  std::uint64_t refused() const noexcept {
    return refused_malformed + refused_bad_parameters + refused_too_large + refused_method + refused_unauthorized +
           refused_origin + refused_not_found + refused_timeout + refused_too_many_connections +
           refused_per_address + refused_shutting_down + refused_rate_limited + refused_forbidden +
           refused_unavailable + refused_unknown_session + refused_engineio;
  }
};

class HttpTransport final : public Transport {
 public:
  HttpTransport(Broker& broker, HttpTransportSettings settings);
  ~HttpTransport() override;  // stops

  HttpTransport(const HttpTransport&) = delete;
  HttpTransport& operator=(const HttpTransport&) = delete;

  std::string_view name() const noexcept override { return "http"; }
  // Upgrade requests (any path) go to `websocket`, which checks them as on its
  // own port; call before start(). Both transports must share this broker,
  // and `websocket` must be started first and stopped after this one.
  void serve_websocket(WebSocketTransport& websocket);
  void start() override;
  // Ends SSE streams with an `event: close` of code 1001, answers waiting
  // polls with what they have, and closes every connection.
  void stop() override;
  std::uint16_t port() const noexcept override;

  // Any thread.
  HttpTransportMetrics metrics() const;
  // metrics() as Prometheus metrics, transport="http". Any thread.
  void write_metrics(MetricsWriter& out) const override;
  // As WebSocketTransport::reload_tls(), for HttpTransportSettings::tls.
  std::error_code reload_tls();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

LIVECAST_END_NAMESPACE
