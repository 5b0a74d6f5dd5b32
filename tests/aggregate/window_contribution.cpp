// An instance's part of an Aggregator window (src/aggregate/window_contribution.*),
// without a backend: the text round trip (odd metric names and empty
// sketches included), every way a part may be malformed refused (cut at
// every byte, flipped bytes, wrong lengths, wrong order, other sketch
// settings), and the merge of parts equal to the sketch of the union.
#include "window_contribution.hpp"

#include <doctest/doctest.h>

#include <random>
#include <string>
#include <vector>

using namespace livecast;

namespace {

QuantileSketch sketch_of(const std::vector<double>& values, QuantileSketchSettings settings = {}) {
  QuantileSketch s(settings);
  for (double v : values) s.add(v);
  return s;
}

MetricSketches example() {
  MetricSketches m;
  m.emplace("latency_ms", sketch_of({1, 2.5, 300, 1e6}));
  m.emplace("org:acme:amount", sketch_of({-20.5, 0, 19.99}));
  m.emplace("quiet", QuantileSketch());                         // a known metric with no event
  m.emplace(std::string("odd name\n 7 \0x", 13), sketch_of({42}));  // lengths, not separators, delimit
  return m;
}

}  // namespace

TEST_CASE("a part round-trips: every metric, its sketch, the empty ones too") {
  const MetricSketches in = example();
  const std::string text = encode_window_contribution(in);
  CHECK(text.rfind("lcw1 4\n", 0) == 0);
  const auto out = parse_window_contribution(text, {});
  REQUIRE(out);
  REQUIRE(out->size() == in.size());
  for (const auto& [metric, sketch] : in) {
    CAPTURE(metric);
    REQUIRE(out->count(metric) == 1);
    CHECK(out->at(metric) == sketch);
    CHECK(out->at(metric).sum() == sketch.sum());
  }
  CHECK(out->at("quiet").count() == 0);
  CHECK(parse_window_contribution(encode_window_contribution({}), {})->empty());
}

TEST_CASE("a malformed part is refused whole, never half-read") {
  const std::string good = encode_window_contribution(example());
  // Every prefix (a part cut short anywhere).
  for (std::size_t n = 0; n < good.size(); ++n) {
    CAPTURE(n);
    CHECK_FALSE(parse_window_contribution(good.substr(0, n), {}));
  }
  CHECK_FALSE(parse_window_contribution(good + "x", {}));        // bytes after the last metric
  CHECK_FALSE(parse_window_contribution("lcw2 0\n", {}));         // another version
  CHECK_FALSE(parse_window_contribution("lcw1 1\n", {}));         // a metric announced, none there
  CHECK_FALSE(parse_window_contribution("lcw1 -1\n", {}));
  CHECK_FALSE(parse_window_contribution("lcw1 99999999999999999999999\n", {}));
  CHECK_FALSE(parse_window_contribution("lcw1 1\n999999999 a 5 qs1 \n", {}));  // a name length past the end
  CHECK_FALSE(parse_window_contribution("lcw1 1\n1 a 3 qs1 \n", {}));          // a sketch length too short
  CHECK_FALSE(parse_window_contribution("lcw1 1\n1 a 5 qs1 \n", {}));          // not a sketch
  // Names out of order, or twice: not what encode writes.
  const std::string sketch = QuantileSketch().serialize();
  const std::string entry_b = "1 b " + std::to_string(sketch.size()) + " " + sketch + "\n";
  const std::string entry_a = "1 a " + std::to_string(sketch.size()) + " " + sketch + "\n";
  CHECK(parse_window_contribution("lcw1 2\n" + entry_a + entry_b, {}));
  CHECK_FALSE(parse_window_contribution("lcw1 2\n" + entry_b + entry_a, {}));
  CHECK_FALSE(parse_window_contribution("lcw1 2\n" + entry_a + entry_a, {}));
  // Sketches made with other settings cannot be merged: refused.
  QuantileSketchSettings coarse;
  coarse.relative_accuracy = 0.05;
  CHECK_FALSE(parse_window_contribution(good, coarse));
  // Random byte flips: refused or parsed, never a crash (ASan/UBSan builds check the rest).
  std::mt19937 random(7);
  std::size_t refused = 0;
  for (int i = 0; i < 2000; ++i) {
    std::string bad = good;
    bad[random() % bad.size()] = static_cast<char>(random() % 256);
    if (!parse_window_contribution(bad, {})) ++refused;
  }
  CHECK(refused > 0);
}

TEST_CASE("merging parts equals the sketch of the union; a metric held by some parts is still merged") {
  std::vector<double> a_latency, b_latency, all_latency;
  std::mt19937 random(11);
  std::lognormal_distribution<double> latency(3, 1);
  for (int i = 0; i < 5000; ++i) a_latency.push_back(latency(random));
  for (int i = 0; i < 3000; ++i) b_latency.push_back(latency(random) * 2);
  all_latency = a_latency;
  all_latency.insert(all_latency.end(), b_latency.begin(), b_latency.end());

  MetricSketches a, b;
  a.emplace("latency_ms", sketch_of(a_latency));
  a.emplace("only_a", sketch_of({1, 2, 3}));
  b.emplace("latency_ms", sketch_of(b_latency));
  const MergedWindow merged =
      merge_window_contributions({encode_window_contribution(a), "garbage", encode_window_contribution(b)}, {});
  CHECK(merged.parts == 2);
  CHECK(merged.malformed == 1);
  REQUIRE(merged.sketches.size() == 2);
  const QuantileSketch& m = merged.sketches.at("latency_ms");
  const QuantileSketch union_sketch = sketch_of(all_latency);
  CHECK(m == union_sketch);
  CHECK(m.count() == 8000);
  CHECK(m.sum() == doctest::Approx(union_sketch.sum()));
  for (double q : {0.5, 0.9, 0.95, 0.99}) CHECK(*m.quantile(q) == *union_sketch.quantile(q));
  CHECK(merged.sketches.at("only_a").count() == 3);

  const MergedWindow none = merge_window_contributions({"", "lcw1"}, {});
  CHECK(none.parts == 0);
  CHECK(none.malformed == 2);
  CHECK(none.sketches.empty());
}
