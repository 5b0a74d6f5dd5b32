// How a transport listens: one acceptor per broker shard on one port, with
// SO_REUSEPORT so the kernel spreads connections over the shards. Shared by
// the WebSocket and HTTP transports; each brings its own per-shard server
// type with listen(endpoint), local_port() and stop(), all run on the shard.
#pragma once

#include <livecast/session_host.hpp>
#include <livecast/config.hpp>

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>

#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <vector>

LIVECAST_BEGIN_NAMESPACE
namespace detail {

// SO_REUSEPORT as an Asio socket option, so every shard can bind the port.
class ReusePort {
 public:
  template <class Protocol>
  int level(const Protocol&) const noexcept { return SOL_SOCKET; }
  template <class Protocol>
  int name(const Protocol&) const noexcept { return SO_REUSEPORT; }
  template <class Protocol>
  const void* data(const Protocol&) const noexcept { return &value_; }
  template <class Protocol>
  std::size_t size(const Protocol&) const noexcept { return sizeof value_; }

 private:
  int value_ = 1;
};

// Stops each shard's server on its shard's thread.
template <class ShardServer>
void stop_every_shard(SessionHost& host, const std::vector<std::shared_ptr<ShardServer>>& shards) {
  for (std::size_t i = 0; i < shards.size(); ++i) host.execute_on_shard(i, [&] { shards[i]->stop(); });
}

// Binds, listens and starts one ShardServer per shard, each on its shard's
// thread; `make(shard)` constructs one. Returns them and sets `port` to the
// port bound (the one picked by the kernel when it was 0). Throws
// std::system_error when the port is taken, with nothing left listening.
template <class ShardServer, class Make>
std::vector<std::shared_ptr<ShardServer>> listen_on_every_shard(SessionHost& host, const asio::ip::address& address,
                                                                 std::uint16_t& port, Make make) {
  if (port != 0) {
    // SO_REUSEPORT would let this instance silently share a port another
    // process already listens on. A probe bound without it fails instead.
    asio::io_context probe_context;
    asio::ip::tcp::acceptor probe(probe_context);
    const asio::ip::tcp::endpoint where(address, port);
    probe.open(where.protocol());
    probe.set_option(asio::socket_base::reuse_address(true));
    probe.bind(where);  // throws std::system_error (address_in_use)
  }
  std::vector<std::shared_ptr<ShardServer>> started;
  try {
    // Shard 0 binds first so that with port 0 the others bind the port it got.
    for (std::size_t i = 0; i < host.shard_count(); ++i) {
      std::exception_ptr failure;
      host.execute_on_shard(i, [&] {
        try {
          started.push_back(make(i));
          started.back()->listen(asio::ip::tcp::endpoint(address, port));
          if (i == 0) port = started.back()->local_port();
        } catch (...) {
          failure = std::current_exception();
        }
      });
      if (failure) std::rethrow_exception(failure);
    }
  } catch (...) {
    stop_every_shard(host, started);
    throw;
  }
  return started;
}

}  // namespace detail
LIVECAST_END_NAMESPACE
