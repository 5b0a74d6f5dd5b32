// The round trip to Redis that RedisBackend::health() reports: a PING on the
// command connection as soon as it is up and then once a second, one at a
// time. A PING queues behind the commands before it, so the figure is what a
// command waits now, not the network alone: what an operator wants to see.
//
// Threads: start(), stop(), connected() and lost() on the backend's thread;
// latest() from any thread.
#pragma once

#include "redis_cluster.hpp"

#include <livecast/config.hpp>

#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>

LIVECAST_BEGIN_NAMESPACE

class RedisRoundTrip {
 public:
  static constexpr std::chrono::seconds period{1};

  RedisRoundTrip(asio::io_context& io, RedisCommands& commands) : commands_(commands), timer_(io) {}

  void start() { schedule(); }
  void stop() {
    stopped_ = true;
    timer_.cancel();
  }
  // The command connection came up: measure at once rather than a second later.
  void connected() { ping(); }
  // It went down: the last figure no longer says anything.
  void lost() { latest_us_.store(-1, std::memory_order_relaxed); }

  std::optional<std::chrono::microseconds> latest() const {
    const std::int64_t us = latest_us_.load(std::memory_order_relaxed);
    if (us < 0) return std::nullopt;
    return std::chrono::microseconds(us);
  }

 private:
  void schedule() {
    timer_.expires_after(period);
    timer_.async_wait([this](std::error_code ec) {
      if (ec || stopped_) return;
      ping();
      schedule();
    });
  }

  void ping() {
    if (outstanding_ || stopped_ || !commands_.connected()) return;
    outstanding_ = true;
    const auto sent = std::chrono::steady_clock::now();
    commands_.execute({"PING"}, [this, sent](std::error_code ec, RedisReply) {
      outstanding_ = false;
      if (ec) return;
      const auto us = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - sent);
      latest_us_.store(us.count(), std::memory_order_relaxed);
    });
  }

  RedisCommands& commands_;
  asio::steady_timer timer_;
  bool outstanding_ = false;
  bool stopped_ = false;
  std::atomic<std::int64_t> latest_us_{-1};
};

LIVECAST_END_NAMESPACE
