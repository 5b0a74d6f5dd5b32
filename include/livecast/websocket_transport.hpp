// The WebSocket transport: sessions over RFC 6455 on a TCP port (ws://, or
// wss:// with WebSocketSettings::tls), one
// listening endpoint per broker shard (SO_REUSEPORT), with pings, idle
// timeouts and an Origin allow-list. Non-WebSocket HTTP requests go to an
// optional HttpHandler (the dashboard demo serves its page this way).
// Built on websocketpp, which stays inside src/transport/websocket*.
#pragma once

#include <livecast/broker.hpp>
#include <livecast/config.hpp>
#include <livecast/tls.hpp>
#include <livecast/transport.hpp>

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

namespace detail {
struct WebSocketHandover;
}

struct WebSocketSettings {
  // Address to bind; "127.0.0.1" for loopback only, "::" for IPv6 and IPv4.
  std::string address = "0.0.0.0";
  // 0 picks a free port (see Transport::port()).
  std::uint16_t port = 8080;
  // false: no port of its own; an HttpTransport it is attached to
  // (HttpTransport::serve_websocket) hands it the upgrade requests for
  // `path` that arrive on that transport's port: one port for everything.
  bool listen = true;
  // WebSocket upgrades are accepted on this path only.
  std::string path = "/ws";
  // Socket.IO clients (`/socket.io/?EIO=4&transport=websocket`) are accepted
  // here when the broker speaks the socket.io protocol (socketio.hpp).
  std::string socketio_path = "/socket.io/";
  // Origins allowed to connect (e.g. "https://dash.example.com"); empty:
  // any. Others are refused with HTTP 403. Non-browser clients send none and
  // are always allowed. A `livecast_token` cookie counts as the token only on
  // a handshake whose Origin is on this list: any page can open a WebSocket
  // to this server, and the browser attaches the user's cookies to it. With
  // the list empty, clients must send `?token=` or `Authorization: Bearer`.
  std::vector<std::string> allowed_origins;
  // Answers plain HTTP requests; default: 404 for everything.
  HttpHandler http_handler;
  // Pending connections in the kernel's accept queue.
  int listen_backlog = 1024;
  // Kernel send buffer per connection (SO_SNDBUF), in bytes; 0 keeps the
  // kernel's auto-tuning (up to net.ipv4.tcp_wmem's maximum, 4 MiB on many
  // systems). Bytes in it are beyond the session's send_queue_bytes, so a
  // small value bounds what a stuck client can hold in the kernel.
  std::size_t socket_send_buffer_bytes = 0;
  // Milliseconds a client has to complete the opening handshake.
  std::uint32_t handshake_timeout_ms = 5000;
  // Connection limits, each over all shards, handed-over connections
  // (HttpTransport::serve_websocket) included. A new connection beyond one
  // is closed as soon as it is taken, before its handshake is read and with
  // nothing sent (the cheapest answer under a flood), and counted in
  // WebSocketTransportMetrics under the first limit it hits, in this order.
  // A connection counts from when it is taken until it ends, whatever ends it.
  //
  // Connections held (handshaking, open or closing).
  std::size_t max_connections = 10000;
  // Connections from one remote address: an IPv4 address, or an IPv6 /64
  // (what one IPv6 host is usually given). Clients behind one NAT or proxy
  // share it; raise it (up to max_connections, which turns it off) for
  // deployments where many users arrive from one address.
  std::size_t max_connections_per_address = 256;
  // Connections taken whose handshake has not completed: a client that
  // connects and sends nothing holds one of these for handshake_timeout_ms.
  // A handshake takes a round trip, so legitimate ones rarely pile up; this
  // bounds how many a slow or silent client can hold at once.
  std::size_t max_pending_handshakes = 1024;
  // TLS (wss://) on this transport's own port; none: plain TCP. With
  // listen = false the HttpTransport that hands connections over decides
  // (its HttpTransportSettings::tls), and this is not used. See tls.hpp.
  std::optional<TlsSettings> tls;
  // How long a shard lets frames gather before it writes them. 0 (the
  // default): at the end of the current turn of its event loop, which
  // already puts every frame queued meanwhile into one write per connection.
  // A millisecond or two trades that much latency for fewer, larger writes
  // when many publications per second go to the same connections.
  std::chrono::microseconds flush_delay{0};
};

// Counters since start (monotonic but the *_active and *_pending ones).
struct WebSocketTransportMetrics {
  std::uint64_t connections = 0;         // taken (accepted or handed over), refused ones included
  std::uint64_t connections_active = 0;  // held now: what max_connections bounds
  std::uint64_t handshakes_pending = 0;  // held, handshake not completed: what max_pending_handshakes bounds
  // Refusals, by the limit hit (WebSocketSettings).
  std::uint64_t refused_too_many_connections = 0;  // max_connections
  std::uint64_t refused_per_address = 0;           // max_connections_per_address
  std::uint64_t refused_pending_handshakes = 0;    // max_pending_handshakes
  TlsMetrics tls;  // with WebSocketSettings::tls

  std::uint64_t refused() const noexcept {
    return refused_too_many_connections + refused_per_address + refused_pending_handshakes;
  }
};

class WebSocketTransport final : public Transport {
 public:
  WebSocketTransport(Broker& broker, WebSocketSettings settings);
  ~WebSocketTransport() override;  // stops

  WebSocketTransport(const WebSocketTransport&) = delete;
  WebSocketTransport& operator=(const WebSocketTransport&) = delete;

  std::string_view name() const noexcept override { return "websocket"; }
  void start() override;
  void stop() override;
  std::uint16_t port() const noexcept override;

  // Connections currently open (handshake completed), over all shards.
  std::size_t connection_count() const noexcept;
  // Any thread.
  WebSocketTransportMetrics metrics() const;
  // metrics() as Prometheus metrics, transport="websocket". Any thread.
  void write_metrics(MetricsWriter& out) const override;
  // Loads WebSocketSettings::tls's certificate and key again now, for new
  // handshakes. On failure the previous pair stays in use and the answer says
  // why (it is also reported to on_error); without TLS, or when not started:
  // std::errc::operation_not_supported. Any thread.
  std::error_code reload_tls();

 private:
  friend struct detail::WebSocketHandover;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

LIVECAST_END_NAMESPACE
