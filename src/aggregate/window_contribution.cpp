// Window contributions: see window_contribution.hpp.
#include "window_contribution.hpp"

#include <charconv>
#include <utility>

LIVECAST_BEGIN_NAMESPACE

namespace {

constexpr std::string_view version = "lcw1 ";

void append_length(std::string& out, std::size_t n) {
  char digits[24];
  const auto r = std::to_chars(digits, digits + sizeof digits, n);
  out.append(digits, r.ptr);
  out.push_back(' ');
}

// A cursor over untrusted text: every read checks what is left.
class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}

  // Digits, then `end`.
  bool length(std::size_t& n, char end) {
    const auto [stop, ec] = std::from_chars(in_.data(), in_.data() + in_.size(), n);
    if (ec != std::errc() || stop == in_.data()) return false;
    in_.remove_prefix(static_cast<std::size_t>(stop - in_.data()));
    return expect(end);
  }
  // `n` bytes, then `end`.
  bool bytes(std::size_t n, std::string_view& out, char end) {
    if (n >= in_.size()) return false;  // the bytes and `end`
    out = in_.substr(0, n);
    in_.remove_prefix(n);
    return expect(end);
  }
  bool literal(std::string_view text) {
    if (in_.substr(0, text.size()) != text) return false;
    in_.remove_prefix(text.size());
    return true;
  }
  bool at_end() const noexcept { return in_.empty(); }

 private:
  bool expect(char c) {
    if (in_.empty() || in_.front() != c) return false;
    in_.remove_prefix(1);
    return true;
  }
  std::string_view in_;
};

}  // namespace

std::string encode_window_contribution(const MetricSketches& sketches) {
  std::string out(version);
  out += std::to_string(sketches.size());
  out.push_back('\n');
  for (const auto& [metric, sketch] : sketches) {
    const std::string text = sketch.serialize();
    append_length(out, metric.size());
    out += metric;
    out.push_back(' ');
    append_length(out, text.size());
    out += text;
    out.push_back('\n');
  }
  return out;
}

std::optional<MetricSketches> parse_window_contribution(std::string_view text, const QuantileSketchSettings& settings) {
  Reader r(text);
  std::size_t metrics = 0;
  if (!r.literal(version) || !r.length(metrics, '\n')) return std::nullopt;
  MetricSketches out;
  for (std::size_t i = 0; i < metrics; ++i) {
    std::size_t name_size = 0, sketch_size = 0;
    std::string_view name, sketch_text;
    if (!r.length(name_size, ' ') || !r.bytes(name_size, name, ' ') || !r.length(sketch_size, ' ') ||
        !r.bytes(sketch_size, sketch_text, '\n'))
      return std::nullopt;
    // In order and once each: what encode writes, and no metric twice.
    if (!out.empty() && !(out.rbegin()->first < name)) return std::nullopt;
    auto sketch = QuantileSketch::parse(sketch_text, settings);
    if (!sketch) return std::nullopt;
    out.emplace_hint(out.end(), std::string(name), std::move(*sketch));
  }
  if (!r.at_end()) return std::nullopt;
  return out;
}

MergedWindow merge_window_contributions(const std::vector<std::string>& parts, const QuantileSketchSettings& settings) {
  MergedWindow merged;
  for (const std::string& part : parts) {
    auto sketches = parse_window_contribution(part, settings);
    if (!sketches) {
      ++merged.malformed;
      continue;
    }
    ++merged.parts;
    for (auto& [metric, sketch] : *sketches) {
      auto it = merged.sketches.find(metric);
      if (it == merged.sketches.end())
        merged.sketches.emplace(metric, std::move(sketch));
      else
        it->second.merge(sketch);  // same settings: parse checked them
    }
  }
  return merged;
}

LIVECAST_END_NAMESPACE
