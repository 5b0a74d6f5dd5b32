// The publication schedule shared by livecast-bench-server and the naive
// websocketpp peer (the Node peers follow the same rules in peers/grid.js).
//
// Publications are due on a fixed grid, start + n * period; a late tick still
// stamps the time it was due, so clients measuring from "ts" see the server's
// lateness (no coordinated omission). double_rate() halves the period from the
// next due tick on, and "seq" keeps counting, so a load generator can step the
// offered load up (SIGUSR2 in the servers) without seeing false gaps.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace livecast_bench {

class PublicationGrid {
 public:
  using steady = std::chrono::steady_clock;

  // rate: publications per second per topic (> 0); payload: bytes of the
  // whole JSON object, padded with a "pad" string (at least ~40 bytes).
  PublicationGrid(double rate, std::size_t payload)
      : period_(period_of(rate)), anchor_steady_(steady::now()), anchor_system_(std::chrono::system_clock::now()),
        pad_(payload > 40 ? payload - 40 : 0, 'x') {}

  steady::time_point next_due() const { return anchor_steady_ + ticks_ * period_; }

  // The payload of the next due tick, then moves on to the one after.
  std::string take() {
    const auto due = next_due();
    const auto due_system =
        anchor_system_ + std::chrono::duration_cast<std::chrono::system_clock::duration>(due - anchor_steady_);
    const auto ts = std::chrono::duration_cast<std::chrono::microseconds>(due_system.time_since_epoch()).count();
    std::string payload = "{\"ts\":" + std::to_string(ts) + ",\"seq\":" + std::to_string(seq_) + ",\"pad\":\"" +
                          pad_ + "\"}";
    ++ticks_;
    ++seq_;
    return payload;
  }

  void double_rate() {
    const auto due = next_due();
    anchor_system_ += std::chrono::duration_cast<std::chrono::system_clock::duration>(due - anchor_steady_);
    anchor_steady_ = due;
    ticks_ = 0;
    period_ /= 2;
    rate_doublings_++;
  }
  unsigned rate_doublings() const { return rate_doublings_; }

 private:
  static steady::duration period_of(double rate) {
    return std::chrono::duration_cast<steady::duration>(std::chrono::duration<double>(1.0 / rate));
  }

  steady::duration period_;
  steady::time_point anchor_steady_;
  std::chrono::system_clock::time_point anchor_system_;
  std::uint64_t ticks_ = 0, seq_ = 0;
  unsigned rate_doublings_ = 0;
  std::string pad_;
};

}  // namespace livecast_bench
