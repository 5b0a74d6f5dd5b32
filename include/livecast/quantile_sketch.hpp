// QuantileSketch: the p50/p90/p95/p99 of a stream of values in bounded
// memory, with a stated relative error, and mergeable: the sketches of two
// streams merge into exactly the sketch of their union, so the windows of
// several threads, or of several instances sharing Redis, make one summary.
//
//   QuantileSketch latency;              // 1% relative error
//   latency.add(12.5);                   // from one thread at a time
//   latency.quantile(0.99);              // within 1% of a value of rank 0.99 * (count - 1)
//
// How: values fall into logarithmic buckets (DDSketch, Masson et al., VLDB
// 2019). Bucket i holds the values in (gamma^(i-1), gamma^i], gamma =
// (1 + a) / (1 - a) for the relative accuracy a, and answers with the one
// value within a of all of them. The answer to quantile(q) is therefore
// within a relative error a of the exact value of rank floor(q * (count - 1))
// (the "lower" quantile: an observed value, not an interpolation), for
// positive and negative values alike; zero (and anything closer to zero
// than min_value) is kept exactly as zero. count, sum, min and max are
// exact.
//
// Memory: one 8-byte counter per bucket between the smallest and largest
// value seen, at most max_buckets per sign (2048 by default: at 1% that is a
// range of 10^17, from nanoseconds to years). Beyond it the lowest buckets of
// that sign are folded into one, whose values lose their error bound; the
// high quantiles a dashboard shows keep theirs. collapsed() says so.
//
// Not thread-safe: one writer, or the caller's lock. Aggregator keeps one per
// thread and merges them.
#pragma once

#include <livecast/config.hpp>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

LIVECAST_BEGIN_NAMESPACE

struct QuantileSketchSettings {
  double relative_accuracy = 0.01;  // a: in (0, 1)
  std::size_t max_buckets = 2048;   // per sign
  double min_value = 1e-9;          // |x| below this counts as zero
};

class QuantileSketch {
 public:
  explicit QuantileSketch(QuantileSketchSettings settings = {});

  // Records `value` (`weight` times). NaN is ignored; infinities are
  // recorded as the largest finite value of their sign.
  void add(double value, std::uint64_t weight = 1);
  // Adds every value `other` holds. Both must have the same settings;
  // false (and nothing merged) when they do not.
  bool merge(const QuantileSketch& other);
  void clear();

  std::uint64_t count() const noexcept { return count_; }
  double sum() const noexcept { return sum_; }
  // Of the values added; none when count() == 0.
  std::optional<double> min() const noexcept;
  std::optional<double> max() const noexcept;
  // The value of rank floor(q * (count() - 1)) in sorted order, within the
  // relative accuracy (q is clamped to [0, 1]); none when empty.
  std::optional<double> quantile(double q) const;

  const QuantileSketchSettings& settings() const noexcept { return settings_; }
  // True when buckets were folded (see above).
  bool collapsed() const noexcept { return collapsed_; }
  // Buckets held now, both signs (memory is about 8 bytes each).
  std::size_t bucket_count() const noexcept { return positive_.counts.size() + negative_.counts.size(); }

  // A compact text of the sketch (settings, counts, buckets) and back, to
  // send a window's sketch to another instance; parse() refuses anything
  // else, or a text with other settings than `settings`.
  std::string serialize() const;
  static std::optional<QuantileSketch> parse(std::string_view text, QuantileSketchSettings settings = {});

  // Equal settings, counts, extremes and buckets (not the sum: a
  // floating-point total that depends on the order of additions).
  friend bool operator==(const QuantileSketch& a, const QuantileSketch& b);
  friend bool operator!=(const QuantileSketch& a, const QuantileSketch& b) { return !(a == b); }

 private:
  // Counts of contiguous bucket indexes [first, first + counts.size()).
  struct Store {
    int first = 0;
    std::deque<std::uint64_t> counts;
    std::uint64_t total = 0;
    void add(int index, std::uint64_t weight, std::size_t max_buckets, bool& collapsed);
    bool operator==(const Store& o) const { return first == o.first && counts == o.counts && total == o.total; }
  };

  int index_of(double magnitude) const;
  double value_of(int index) const;

  QuantileSketchSettings settings_;
  double gamma_;
  double log_gamma_;
  Store positive_, negative_;
  std::uint64_t zeros_ = 0;
  std::uint64_t count_ = 0;
  double sum_ = 0;
  double min_ = std::numeric_limits<double>::infinity();
  double max_ = -std::numeric_limits<double>::infinity();
  bool collapsed_ = false;
};

LIVECAST_END_NAMESPACE
