// How a transport listens, and starts and stops: one acceptor per broker
// shard on one port, with SO_REUSEPORT so the kernel spreads connections over
// the shards. Shared by the WebSocket and HTTP transports, so that binding,
// accepting with retry and the start/stop life cycle exist once.
//
// A transport brings its per-shard server type, which owns a ShardAcceptor
// and has listen(endpoint), local_port() and stop(), all run on its shard.
#pragma once

#include <livecast/config.hpp>
#include <livecast/session_host.hpp>

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>

#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <system_error>
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

// One shard's listening socket and its accept loop. Accept errors (out of
// descriptors and the like) are retried after a pause instead of spinning.
// On the shard's thread only.
class ShardAcceptor {
 public:
  using OnSocket = std::function<void(asio::ip::tcp::socket)>;

  explicit ShardAcceptor(asio::io_context& context) : acceptor_(context), retry_(context) {}

  // Binds, listens and accepts until close(), handing each connected socket
  // to `on_socket`. Throws std::system_error when it cannot bind.
  void listen(const asio::ip::tcp::endpoint& where, int backlog, OnSocket on_socket) {
    acceptor_.open(where.protocol());
    acceptor_.set_option(asio::socket_base::reuse_address(true));
    acceptor_.set_option(ReusePort());
    acceptor_.bind(where);
    acceptor_.listen(backlog);
    acceptor_.non_blocking(true);  // for the accepts in a row below; async_accept is unaffected
    state_ = std::make_shared<State>(State{std::move(on_socket), true});
    accept();
  }

  std::uint16_t local_port() const { return acceptor_.local_endpoint().port(); }
  bool listening() const noexcept { return state_ && state_->open; }

  void close() {
    if (state_) state_->open = false;
    std::error_code ignored;
    acceptor_.close(ignored);
    retry_.cancel();
  }

 private:
  // What pending handlers need; they hold it weakly so that a closed or
  // destroyed acceptor is never reached.
  struct State {
    OnSocket on_socket;
    bool open;
  };

  void accept() {
    acceptor_.async_accept([this, weak = std::weak_ptr<State>(state_)](const std::error_code& ec,
                                                                         asio::ip::tcp::socket socket) {
      auto state = weak.lock();
      if (!state || !state->open || ec == asio::error::operation_aborted) return;
      if (ec) {
        retry_.expires_after(retry_pause);
        retry_.async_wait([this, weak](const std::error_code& e) {
          auto s = weak.lock();
          if (s && s->open && !e) accept();
        });
        return;
      }
      // The handler may close this acceptor (or destroy its owner); keep
      // the state and look again before accepting more.
      state->on_socket(std::move(socket));
      // Then whatever else waits, at once: async_accept's completion is
      // queued behind every handler the shard has, so one connection per
      // turn of a shard busy publishing left hundreds of accepted clients
      // waiting seconds for their 101 (a reconnect storm, a ramp while
      // publishing). An error here ends the batch; the async path below
      // meets it again and retries.
      for (int n = 1; n < max_accepts_in_a_row && state->open; ++n) {
        std::error_code e;
        asio::ip::tcp::socket next(acceptor_.get_executor());
        acceptor_.accept(next, e);
        if (e) break;  // would_block: nothing more waiting
        state->on_socket(std::move(next));
      }
      if (state->open) accept();
    });
  }

  static constexpr std::chrono::milliseconds retry_pause{100};
  // Bounds one turn's accepts, so that a flood of connections cannot keep
  // the shard from its other work either.
  static constexpr int max_accepts_in_a_row = 64;

  asio::ip::tcp::acceptor acceptor_;
  asio::steady_timer retry_;
  std::shared_ptr<State> state_;
};

// A transport's per-shard servers and its life cycle: start() binds every
// shard (shard 0 first, so with port 0 the others bind the port it got) and
// throws std::system_error with nothing left listening when the port is
// taken; stop() stops each server on its own shard's thread. Any thread.
// Both are logged (transport.started, transport.stopped), as `transport`.
template <class ShardServer>
class TransportShards {
 public:
  TransportShards(SessionHost& host, const char* transport) : host_(host), transport_(transport) {}

  using Make = std::function<std::shared_ptr<ShardServer>(std::size_t shard)>;

  // `listen`: bind a port; false: servers that only take connections handed
  // to them (see WebSocketSettings::listen).
  void start(const std::string& address, std::uint16_t port, bool listen, const Make& make) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!shards_.empty()) return;
    const asio::ip::address ip = asio::ip::make_address(address);
    if (listen && port != 0) refuse_taken_port(ip, port);
    std::vector<std::shared_ptr<ShardServer>> started;
    try {
      for (std::size_t i = 0; i < host_.shard_count(); ++i) {
        std::exception_ptr failure;
        host_.execute_on_shard(i, [&] {
          try {
            started.push_back(make(i));
            if (!listen) return;
            started.back()->listen(asio::ip::tcp::endpoint(ip, port));
            if (i == 0) port = started.back()->local_port();
          } catch (...) {
            failure = std::current_exception();
          }
        });
        if (failure) std::rethrow_exception(failure);
      }
    } catch (...) {
      stop_each(started);
      throw;
    }
    shards_ = std::move(started);
    port_.store(listen ? port : 0);
    host_.log(LogLevel::info, "transport.started",
              {{"transport", transport_},
               {"address", listen ? address : std::string("-")},
               {"port", listen ? std::to_string(port) : std::string("-")}});
  }

  void stop() {
    std::vector<std::shared_ptr<ShardServer>> shards;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      shards.swap(shards_);
    }
    if (shards.empty()) return;
    stop_each(shards);
    host_.log(LogLevel::info, "transport.stopped", {{"transport", transport_}});
  }

  std::uint16_t port() const noexcept { return port_.load(); }

  // The running servers (empty when stopped); calls f(server) under the lock.
  template <class F>
  void for_each(F&& f) const {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& shard : shards_) f(*shard);
  }
  // The server of `shard`, or null when stopped.
  std::shared_ptr<ShardServer> shard(std::size_t index) const {
    std::lock_guard<std::mutex> lock(mutex_);
    return index < shards_.size() ? shards_[index] : nullptr;
  }

 private:
  // SO_REUSEPORT would let this instance silently share a port another
  // process already listens on. A probe bound without it fails instead.
  static void refuse_taken_port(const asio::ip::address& ip, std::uint16_t port) {
    asio::io_context probe_context;
    asio::ip::tcp::acceptor probe(probe_context);
    const asio::ip::tcp::endpoint where(ip, port);
    probe.open(where.protocol());
    probe.set_option(asio::socket_base::reuse_address(true));
    probe.bind(where);  // throws std::system_error (address_in_use)
  }

  void stop_each(const std::vector<std::shared_ptr<ShardServer>>& shards) {
    for (std::size_t i = 0; i < shards.size(); ++i) host_.execute_on_shard(i, [&] { shards[i]->stop(); });
  }

  SessionHost& host_;
  const char* transport_;  // a literal: "http", "websocket"
  mutable std::mutex mutex_;
  std::vector<std::shared_ptr<ShardServer>> shards_;  // index = broker shard; empty when stopped
  std::atomic<std::uint16_t> port_{0};
};

}  // namespace detail
LIVECAST_END_NAMESPACE
