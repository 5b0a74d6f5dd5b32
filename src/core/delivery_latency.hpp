// One shard's delivery-latency histogram (BrokerMetrics::delivery_latency):
// from Frame::published_at, stamped when a publication reaches the broker,
// to the moment the transport takes the frame for its socket.
//
// Threads: observe() on the shard's thread (one writer; the atomics let
// metrics() read from any thread); add_to() anywhere. Each shard has its
// own, in its own cache lines (Broker::Impl::Shard is aligned).
#pragma once

#include <livecast/broker.hpp>
#include <livecast/config.hpp>
#include <livecast/publication.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <vector>

LIVECAST_BEGIN_NAMESPACE
namespace detail {

class DeliveryLatency {
 public:
  static constexpr std::size_t bucket_count = LatencyHistogram::bound_count + 1;

  // The frames out[from..] were just taken for one write. One clock read for
  // all of them, and none when none is a stamped publication.
  void observe(const std::vector<FramePtr>& out, std::size_t from) noexcept {
    using Clock = std::chrono::steady_clock;
    Clock::time_point now{};
    std::array<std::uint64_t, bucket_count> counts{};
    std::uint64_t sum_ns = 0;
    bool any = false;
    for (std::size_t i = from; i < out.size(); ++i) {
      const Clock::time_point stamped = out[i]->published_at;
      if (stamped == Clock::time_point{}) continue;
      if (!any) now = Clock::now();
      any = true;
      const auto ns = now > stamped ? std::chrono::duration_cast<std::chrono::nanoseconds>(now - stamped).count() : 0;
      const auto value = static_cast<std::uint64_t>(ns);
      std::size_t b = 0;
      while (b < bounds_ns.size() && value > bounds_ns[b]) ++b;
      ++counts[b];
      sum_ns += value;
    }
    if (!any) return;
    for (std::size_t b = 0; b < bucket_count; ++b)
      if (counts[b]) buckets_[b].fetch_add(counts[b], std::memory_order_relaxed);
    sum_ns_.fetch_add(sum_ns, std::memory_order_relaxed);
  }

  // Adds this shard's observations to `h`.
  void add_to(LatencyHistogram& h) const noexcept {
    for (std::size_t b = 0; b < bucket_count; ++b) {
      const std::uint64_t n = buckets_[b].load(std::memory_order_relaxed);
      h.counts[b] += n;
      h.count += n;
    }
    h.sum += static_cast<double>(sum_ns_.load(std::memory_order_relaxed)) * 1e-9;
  }

 private:
  // LatencyHistogram::bounds in nanoseconds: integer compares per frame.
  static constexpr std::array<std::uint64_t, LatencyHistogram::bound_count> bounds_ns{
      500'000,     1'000'000,   2'500'000,   5'000'000,     10'000'000,    25'000'000,    50'000'000,
      100'000'000, 250'000'000, 500'000'000, 1'000'000'000, 2'500'000'000, 5'000'000'000, 10'000'000'000};

  std::array<std::atomic<std::uint64_t>, bucket_count> buckets_{};
  std::atomic<std::uint64_t> sum_ns_{0};
};

}  // namespace detail
LIVECAST_END_NAMESPACE
