// QuantileSketch: see include/livecast/quantile_sketch.hpp.
#include <livecast/quantile_sketch.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>

LIVECAST_BEGIN_NAMESPACE

namespace {

bool same_settings(const QuantileSketchSettings& a, const QuantileSketchSettings& b) noexcept {
  return a.relative_accuracy == b.relative_accuracy && a.max_buckets == b.max_buckets && a.min_value == b.min_value;
}

QuantileSketchSettings checked(QuantileSketchSettings s) {
  if (!(s.relative_accuracy > 0 && s.relative_accuracy < 1)) s.relative_accuracy = 0.01;
  if (s.max_buckets < 2) s.max_buckets = 2;
  if (!(s.min_value > 0)) s.min_value = 1e-9;
  return s;
}

class TextWriter {
 public:
  void number(double v) {
    char digits[32];
    const auto r = std::to_chars(digits, digits + sizeof digits, v);
    out_.append(digits, r.ptr);
    out_.push_back(' ');
  }
  void integer(long long v) {
    char digits[24];
    const auto r = std::to_chars(digits, digits + sizeof digits, v);
    out_.append(digits, r.ptr);
    out_.push_back(' ');
  }
  void word(std::string_view w) {
    out_.append(w);
    out_.push_back(' ');
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

class TextReader {
 public:
  explicit TextReader(std::string_view in) : in_(in) {}
  template <class T>
  bool number(T& v) {
    const auto [end, ec] = std::from_chars(in_.data(), in_.data() + in_.size(), v);
    if (ec != std::errc() || end == in_.data()) return false;
    in_.remove_prefix(static_cast<std::size_t>(end - in_.data()));
    return space();
  }
  bool word(std::string_view w) {
    if (in_.substr(0, w.size()) != w) return false;
    in_.remove_prefix(w.size());
    return space();
  }
  bool at_end() const noexcept { return in_.empty(); }

 private:
  bool space() {
    if (in_.empty() || in_.front() != ' ') return false;
    in_.remove_prefix(1);
    return true;
  }
  std::string_view in_;
};

}  // namespace

QuantileSketch::QuantileSketch(QuantileSketchSettings settings)
    : settings_(checked(settings)),
      gamma_((1 + settings_.relative_accuracy) / (1 - settings_.relative_accuracy)),
      log_gamma_(std::log(gamma_)) {}

int QuantileSketch::index_of(double magnitude) const {
  const double i = std::ceil(std::log(magnitude) / log_gamma_);
  // Finite magnitudes (at most DBL_MAX, at least min_value) keep i within
  // a few hundred thousand for any accuracy above 1e-4.
  return static_cast<int>(std::clamp(i, -1e8, 1e8));
}

// Within the relative accuracy of every magnitude in (gamma^(i-1), gamma^i].
double QuantileSketch::value_of(int index) const { return 2 * std::pow(gamma_, index) / (gamma_ + 1); }

void QuantileSketch::Store::add(int index, std::uint64_t weight, std::size_t max_buckets, bool& collapsed) {
  total += weight;
  if (counts.empty()) {
    first = index;
    counts.push_back(weight);
    return;
  }
  const long long last = first + static_cast<long long>(counts.size()) - 1;
  const long long high = std::max<long long>(last, index);
  long long low = std::min<long long>(first, index);
  // The range would grow past max_buckets: the lowest buckets fold into
  // the lowest one kept.
  if (high - low + 1 > static_cast<long long>(max_buckets)) {
    collapsed = true;
    low = high - static_cast<long long>(max_buckets) + 1;
    std::uint64_t folded = 0;
    while (!counts.empty() && first < low) {
      folded += counts.front();
      counts.pop_front();
      ++first;
    }
    if (counts.empty()) {  // every bucket was below: they all fold into `low`
      first = static_cast<int>(low);
      counts.push_back(0);
    }
    while (first > low) {
      counts.push_front(0);
      --first;
    }
    counts.front() += folded;
    if (index < low) index = static_cast<int>(low);
  }
  while (index < first) {
    counts.push_front(0);
    --first;
  }
  while (index >= first + static_cast<long long>(counts.size())) counts.push_back(0);
  counts[static_cast<std::size_t>(index - first)] += weight;
}

void QuantileSketch::add(double value, std::uint64_t weight) {
  if (std::isnan(value) || weight == 0) return;
  if (std::isinf(value)) value = value > 0 ? std::numeric_limits<double>::max() : std::numeric_limits<double>::lowest();
  count_ += weight;
  sum_ += value * static_cast<double>(weight);
  min_ = std::min(min_, value);
  max_ = std::max(max_, value);
  const double magnitude = std::fabs(value);
  if (magnitude < settings_.min_value) {
    zeros_ += weight;
    return;
  }
  (value > 0 ? positive_ : negative_).add(index_of(magnitude), weight, settings_.max_buckets, collapsed_);
}

bool QuantileSketch::merge(const QuantileSketch& other) {
  if (!same_settings(settings_, other.settings_)) return false;
  if (other.count_ == 0) return true;
  count_ += other.count_;
  sum_ += other.sum_;
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
  zeros_ += other.zeros_;
  collapsed_ = collapsed_ || other.collapsed_;
  for (auto [mine, theirs] : {std::pair<Store*, const Store*>{&positive_, &other.positive_},
                              std::pair<Store*, const Store*>{&negative_, &other.negative_}}) {
    for (std::size_t i = 0; i < theirs->counts.size(); ++i)
      if (theirs->counts[i] != 0)
        mine->add(theirs->first + static_cast<int>(i), theirs->counts[i], settings_.max_buckets, collapsed_);
  }
  return true;
}

void QuantileSketch::clear() { *this = QuantileSketch(settings_); }

std::optional<double> QuantileSketch::min() const noexcept {
  return count_ ? std::optional<double>(min_) : std::nullopt;
}
std::optional<double> QuantileSketch::max() const noexcept {
  return count_ ? std::optional<double>(max_) : std::nullopt;
}

std::optional<double> QuantileSketch::quantile(double q) const {
  if (count_ == 0) return std::nullopt;
  if (std::isnan(q)) q = 0;
  q = std::clamp(q, 0.0, 1.0);
  const auto rank = static_cast<std::uint64_t>(std::floor(q * static_cast<double>(count_ - 1)));
  // The extremes are known exactly.
  if (rank == 0) return min_;
  if (rank == count_ - 1) return max_;
  // Sorted: negatives from the largest magnitude down, zeros, positives up.
  std::uint64_t seen = 0;
  double answer = max_;
  bool found = false;
  for (std::size_t i = negative_.counts.size(); i-- > 0 && !found;) {
    seen += negative_.counts[i];
    if (seen > rank) {
      answer = -value_of(negative_.first + static_cast<int>(i));
      found = true;
    }
  }
  if (!found) {
    seen += zeros_;
    if (seen > rank) {
      answer = 0;
      found = true;
    }
  }
  for (std::size_t i = 0; i < positive_.counts.size() && !found; ++i) {
    seen += positive_.counts[i];
    if (seen > rank) {
      answer = value_of(positive_.first + static_cast<int>(i));
      found = true;
    }
  }
  // The exact extremes are better answers than their buckets'.
  return std::clamp(answer, min_, max_);
}

std::string QuantileSketch::serialize() const {
  TextWriter w;
  w.word("qs1");
  w.number(settings_.relative_accuracy);
  w.integer(static_cast<long long>(settings_.max_buckets));
  w.number(settings_.min_value);
  w.integer(static_cast<long long>(count_));
  w.number(sum_);
  w.number(min_);
  w.number(max_);
  w.integer(static_cast<long long>(zeros_));
  w.integer(collapsed_ ? 1 : 0);
  for (const Store* s : {&positive_, &negative_}) {
    w.integer(s->first);
    w.integer(static_cast<long long>(s->counts.size()));
    for (std::uint64_t c : s->counts) w.integer(static_cast<long long>(c));
  }
  return w.take();
}

std::optional<QuantileSketch> QuantileSketch::parse(std::string_view text, QuantileSketchSettings settings) {
  QuantileSketch sketch(settings);
  TextReader r(text);
  QuantileSketchSettings theirs;
  std::size_t max_buckets = 0;
  std::uint64_t collapsed = 0;
  if (!r.word("qs1") || !r.number(theirs.relative_accuracy) || !r.number(max_buckets) || !r.number(theirs.min_value))
    return std::nullopt;
  theirs.max_buckets = max_buckets;
  if (!same_settings(theirs, sketch.settings_)) return std::nullopt;
  if (!r.number(sketch.count_) || !r.number(sketch.sum_) || !r.number(sketch.min_) || !r.number(sketch.max_) ||
      !r.number(sketch.zeros_) || !r.number(collapsed) || collapsed > 1)
    return std::nullopt;
  sketch.collapsed_ = collapsed == 1;
  std::uint64_t total = sketch.zeros_;
  for (Store* s : {&sketch.positive_, &sketch.negative_}) {
    std::size_t n = 0;
    if (!r.number(s->first) || !r.number(n) || n > sketch.settings_.max_buckets) return std::nullopt;
    for (std::size_t i = 0; i < n; ++i) {
      std::uint64_t c = 0;
      if (!r.number(c)) return std::nullopt;
      s->counts.push_back(c);
      s->total += c;
    }
    total += s->total;
  }
  if (!r.at_end() || total != sketch.count_) return std::nullopt;
  return sketch;
}

bool operator==(const QuantileSketch& a, const QuantileSketch& b) {
  return same_settings(a.settings_, b.settings_) && a.count_ == b.count_ && a.zeros_ == b.zeros_ &&
         a.min_ == b.min_ && a.max_ == b.max_ && a.positive_ == b.positive_ && a.negative_ == b.negative_ &&
         a.collapsed_ == b.collapsed_;
}

LIVECAST_END_NAMESPACE
