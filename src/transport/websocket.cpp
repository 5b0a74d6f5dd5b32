// The WebSocket transport: one endpoint per broker shard, all listening on
// one port with SO_REUSEPORT so the kernel spreads connections over the
// shards. Everything a shard's endpoint and connections do runs on that
// shard's thread, so nothing here takes a lock but the connection limits'
// count per address, once when a connection starts and once when it ends.
//
// websocketpp reads the opening handshake (through its iostream transport;
// the sockets are ours) and answers it; once a connection is open its
// connection object goes, and what stays is a LeanConnection (a few hundred
// bytes): frames are read by WebSocketFrameReader, RFC 6455's rules over
// websocketpp's framing definitions, and written by the shard's writer.
// That keeps websocketpp's Asio transport out of every connection, lets one
// shard-wide buffer serve every read, lets a publication's frame go to the
// socket as it is (its header built per write, its payload shared by every
// subscriber, all frames queued on a connection in one gathered write), and
// leaves an idle connection with no parser state beyond a few integers.
//
// The parts, each on a shard's thread:
//   websocket_config.hpp        how websocketpp is configured, and our state in its connection objects
//   websocket_connection.hpp    LeanConnection: what a connection keeps from the accept to the end
//   websocket_shard.*           a shard's endpoint, acceptor, connections, reads and handshakes
//   websocket_open.cpp          an open connection: frames in, messages, the close handshake, the end
//   websocket_frame_reader.*    client frames, sans-I/O
//   websocket_admission.*       connection limits and the handshake's checks
//   websocket_writer.*          gathered writes and flushing queued frames
//   websocket_housekeeping.*    time limits: handshakes, pings, idle, closes
// This file is the public WebSocketTransport over them.
#include <livecast/websocket_transport.hpp>

#include <livecast/session_host.hpp>

#include "websocket_admission.hpp"
#include "websocket_handover.hpp"
#include "websocket_shard.hpp"
#include "tls_context.hpp"

#include <websocketpp/common/network.hpp>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

LIVECAST_BEGIN_NAMESPACE

struct WebSocketTransport::Impl {
  Impl(Broker& b, WebSocketSettings s)
      : host(b.session_host()), settings(std::make_shared<const WebSocketSettings>(std::move(s))), shards(host, "websocket") {}

  SessionHost& host;
  std::shared_ptr<const WebSocketSettings> settings;
  std::shared_ptr<detail::ws::ConnectionLimits> limits = std::make_shared<detail::ws::ConnectionLimits>();
  std::shared_ptr<detail::TlsContext> tls;  // from start() on, with settings->tls on our own port
  detail::TransportShards<detail::ws::ShardServer> shards;
};

WebSocketTransport::WebSocketTransport(Broker& broker, WebSocketSettings settings)
    : impl_(std::make_unique<Impl>(broker, std::move(settings))) {}

WebSocketTransport::~WebSocketTransport() { stop(); }

void WebSocketTransport::start() {
  // websocketpp detects the byte order lazily in a function-local static it
  // writes without synchronisation (a data race between shards, and with any
  // websocketpp client in the process); settle it before any shard runs.
  (void)websocketpp::lib::net::_htonll(0);
  Impl& d = *impl_;
  // The certificate and key load before anything binds: a bad pair throws here.
  if (d.settings->tls && d.settings->listen && !d.tls) {
    SessionHost& host = d.host;
    d.tls = std::make_shared<detail::TlsContext>(
        *d.settings->tls, [&host](const std::string& what, std::error_code ec) { host.report_error(what, ec); });
  }
  d.shards.start(d.settings->address, d.settings->port, d.settings->listen, [&](std::size_t shard) {
    auto server = std::make_shared<detail::ws::ShardServer>(d.host, shard, d.settings, d.limits, d.tls);
    server->start();
    return server;
  });
}

void WebSocketTransport::stop() { impl_->shards.stop(); }

std::uint16_t WebSocketTransport::port() const noexcept { return impl_->shards.port(); }

std::size_t WebSocketTransport::connection_count() const noexcept {
  std::size_t n = 0;
  impl_->shards.for_each([&](const detail::ws::ShardServer& shard) { n += shard.open_connections(); });
  return n;
}

WebSocketTransportMetrics WebSocketTransport::metrics() const {
  const detail::ws::ConnectionLimits& l = *impl_->limits;
  auto get = [](const std::atomic<std::uint64_t>& a) { return a.load(std::memory_order_relaxed); };
  WebSocketTransportMetrics m;
  m.connections = get(l.taken);
  m.connections_active = l.held.load();
  m.handshakes_pending = l.handshaking.load();
  m.refused_too_many_connections = get(l.refused_too_many_connections);
  m.refused_per_address = get(l.refused_per_address);
  m.refused_pending_handshakes = get(l.refused_pending_handshakes);
  if (impl_->tls) m.tls = impl_->tls->metrics();
  return m;
}

std::error_code WebSocketTransport::reload_tls() {
  if (!impl_->tls) return std::make_error_code(std::errc::operation_not_supported);
  return impl_->tls->reload();
}

void detail::WebSocketHandover::adopt(WebSocketTransport& transport, std::size_t shard, ByteStream stream,
                                      std::string_view received, std::shared_ptr<EngineIoUpgradeSource> upgrade_from) {
  if (auto server = transport.impl_->shards.shard(shard))
    server->adopt(std::move(stream), received, /*start_tls=*/false, std::move(upgrade_from));
}

LIVECAST_END_NAMESPACE
