// A broker running its own threads and one transport on a free loopback
// port: the server side of the WebSocket and HTTP transport tests.
#pragma once

#include <livecast/broker.hpp>

#include <cstddef>
#include <cstdint>
#include <utility>

namespace livecast_test {

inline livecast::BrokerSettings with_threads(std::size_t n) {
  livecast::BrokerSettings s;
  s.threads = n;
  return s;
}

// Transport settings (WebSocketSettings, HttpTransportSettings) bound to
// 127.0.0.1 on a port the kernel picks.
template <class Settings>
Settings loopback_settings() {
  Settings s;
  s.address = "127.0.0.1";
  s.port = 0;
  return s;
}

template <class Transport, class Settings>
struct TransportServer {
  explicit TransportServer(livecast::BrokerSettings b = with_threads(2), Settings t = loopback_settings<Settings>())
      : broker(std::move(b)), transport(broker, std::move(t)) {
    broker.start();
    transport.start();
  }
  std::uint16_t port() const { return transport.port(); }

  livecast::Broker broker;
  Transport transport;
};

}  // namespace livecast_test
