// Drives a PublicationGrid on an io_context for the C++ benchmark servers
// (livecast-bench-server and the naive websocketpp peer): one `publish` call
// per due tick, SIGUSR2 doubling the rate (livecast-loadgen --step-signal),
// and with `paused` no publication until the first SIGUSR2.
#pragma once

#include "publication_grid.hpp"

#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>

#include <csignal>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <system_error>
#include <utility>

namespace livecast_bench {

class GridPublisher {
 public:
  // rate 0: never publishes. `publish` gets each tick's payload, on `io`.
  GridPublisher(asio::io_context& io, double rate, std::size_t payload, bool paused,
                std::function<void(const std::string&)> publish)
      : rate_(rate), payload_(payload), paused_(paused && rate > 0), publish_(std::move(publish)), timer_(io),
        faster_(io, SIGUSR2) {
    if (rate_ > 0 && !paused_) {
      grid_ = std::make_unique<PublicationGrid>(rate_, payload_);
      tick();
    }
    wait_faster();
  }

  GridPublisher(const GridPublisher&) = delete;
  GridPublisher& operator=(const GridPublisher&) = delete;

  // No more publications or signal handling: lets io.run() return. A tick
  // or a SIGUSR2 whose completion is already queued when stop() cancels
  // runs with success, so each handler checks `stopped_` before re-arming.
  void stop() {
    stopped_ = true;
    timer_.cancel();
    faster_.cancel();
  }

 private:
  void tick() {
    publish_(grid_->take());
    schedule();
  }

  void schedule() {
    if (stopped_) return;  // stop() from inside `publish`
    timer_.expires_at(grid_->next_due());
    timer_.async_wait([this](std::error_code ec) {
      if (!ec && !stopped_) tick();
    });
  }

  void wait_faster() {
    faster_.async_wait([this](std::error_code ec, int) {
      if (ec || stopped_) return;
      if (paused_) {
        // The grid starts now, not at start-up, so no backlog is due.
        paused_ = false;
        grid_ = std::make_unique<PublicationGrid>(rate_, payload_);
        tick();
      } else if (grid_) {
        grid_->double_rate();
        schedule();  // replaces the wait for the old, later due time
      }
      wait_faster();
    });
  }

  double rate_;
  std::size_t payload_;
  bool paused_;
  bool stopped_ = false;
  std::function<void(const std::string&)> publish_;
  std::unique_ptr<PublicationGrid> grid_;
  asio::steady_timer timer_;
  asio::signal_set faster_;
};

}  // namespace livecast_bench
