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
    std::array<std::uint64_t, bucket_count> counts{};
    Clock::duration sum{0};
    Clock::time_point now{};
    // A frame stamped at or after edges[b] took at most bounds[b]: time
    // points compared, no conversion per frame.
    std::array<Clock::time_point, LatencyHistogram::bound_count> edges;
    bool any = false;
    for (std::size_t i = from; i < out.size(); ++i) {
      const Clock::time_point stamped = out[i]->published_at;
      if (stamped == Clock::time_point{}) continue;
      if (!any) {
        any = true;
        now = Clock::now();
        for (std::size_t b = 0; b < edges.size(); ++b) edges[b] = now - bounds[b];
      }
      std::size_t b = 0;
      while (b < edges.size() && stamped < edges[b]) ++b;
      ++counts[b];
      if (now > stamped) sum += now - stamped;
    }
    if (!any) return;
    // One writer (this shard's thread): a load and a store, no locked add.
    for (std::size_t b = 0; b < bucket_count; ++b)
      if (counts[b]) add(buckets_[b], counts[b]);
    add(sum_ns_, static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(sum).count()));
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
  static void add(std::atomic<std::uint64_t>& a, std::uint64_t n) noexcept {
    a.store(a.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }

  // LatencyHistogram::bounds as the clock's durations.
  static constexpr std::array<std::chrono::steady_clock::duration, LatencyHistogram::bound_count> bounds{
      std::chrono::microseconds(500), std::chrono::milliseconds(1),   std::chrono::microseconds(2500),
      std::chrono::milliseconds(5),   std::chrono::milliseconds(10),  std::chrono::milliseconds(25),
      std::chrono::milliseconds(50),  std::chrono::milliseconds(100), std::chrono::milliseconds(250),
      std::chrono::milliseconds(500), std::chrono::seconds(1),        std::chrono::milliseconds(2500),
      std::chrono::seconds(5),        std::chrono::seconds(10)};

  std::array<std::atomic<std::uint64_t>, bucket_count> buckets_{};
  std::atomic<std::uint64_t> sum_ns_{0};
};

}  // namespace detail
LIVECAST_END_NAMESPACE
