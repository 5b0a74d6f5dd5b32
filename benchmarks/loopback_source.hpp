// Where the load tools' client sockets come from: source addresses rotate
// over 127.0.0.1-127.0.0.250, so tens of thousands of connections to one
// server port never run out of ephemeral ports (each source address has its
// own range).
#pragma once

#include <asio/ip/address_v4.hpp>
#include <asio/ip/tcp.hpp>

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstddef>
#include <system_error>

namespace livecast_bench {

inline constexpr unsigned loopback_sources = 250;

// Opens `socket` and binds it to source address 127.0.0.(1 + index % 250).
// The port is left to connect(), which knows the destination: a port picked
// at bind() time must be unique per source address alone, and the kernel's
// search for one slows down as tens of thousands are taken.
inline std::error_code open_on_loopback_source(asio::ip::tcp::socket& socket, std::size_t index) {
  std::error_code ec;
  socket.open(asio::ip::tcp::v4(), ec);
  if (ec) return ec;
  int on = 1;
  ::setsockopt(socket.native_handle(), IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &on, sizeof on);
  const asio::ip::address_v4 source(0x7F000001u + static_cast<unsigned>(index % loopback_sources));
  socket.bind(asio::ip::tcp::endpoint(source, 0), ec);
  return ec;
}

}  // namespace livecast_bench
