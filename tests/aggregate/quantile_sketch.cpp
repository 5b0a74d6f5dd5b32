// QuantileSketch against exact quantiles: every answer within the stated
// relative accuracy of the exact value of its rank, on uniform, log-normal,
// bimodal and signed data; count, sum, min and max exact; the merge of two
// sketches equal to the sketch of the union; bounded memory; its text.
#include <livecast/quantile_sketch.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

using namespace livecast;

namespace {

// The exact "lower" quantile QuantileSketch promises to approximate.
double exact(std::vector<double> values, double q) {
  std::sort(values.begin(), values.end());
  return values[static_cast<std::size_t>(std::floor(q * static_cast<double>(values.size() - 1)))];
}

// The largest relative error over the quantiles a dashboard shows.
double worst_error(const QuantileSketch& sketch, const std::vector<double>& values) {
  double worst = 0;
  for (double q : {0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1.0}) {
    const double want = exact(values, q);
    const double got = *sketch.quantile(q);
    const double error = want == 0 ? std::fabs(got) : std::fabs(got - want) / std::fabs(want);
    CAPTURE(q);
    CAPTURE(want);
    CAPTURE(got);
    worst = std::max(worst, error);
  }
  return worst;
}

QuantileSketch sketch_of(const std::vector<double>& values, QuantileSketchSettings settings = {}) {
  QuantileSketch s(settings);
  for (double v : values) s.add(v);
  return s;
}

// Slack for floating-point rounding at bucket boundaries.
constexpr double rounding = 1e-9;

}  // namespace

TEST_CASE("quantiles within the relative accuracy on uniform, log-normal, bimodal and signed data") {
  std::mt19937_64 random(42);
  std::vector<std::vector<double>> sets(4);
  std::uniform_real_distribution<double> uniform(0.5, 1000.0);
  std::lognormal_distribution<double> lognormal(3.0, 1.5);
  std::normal_distribution<double> fast(20.0, 3.0), slow(800.0, 50.0);
  std::uniform_real_distribution<double> signed_values(-500.0, 500.0);
  for (int i = 0; i < 100000; ++i) {
    sets[0].push_back(uniform(random));
    sets[1].push_back(lognormal(random));
    sets[2].push_back(i % 10 == 0 ? std::max(1.0, slow(random)) : std::max(0.1, fast(random)));
    sets[3].push_back(signed_values(random));
  }
  for (double accuracy : {0.01, 0.02, 0.005}) {
    QuantileSketchSettings settings;
    settings.relative_accuracy = accuracy;
    for (const auto& values : sets) {
      const QuantileSketch s = sketch_of(values, settings);
      CAPTURE(accuracy);
      CHECK(worst_error(s, values) <= accuracy + rounding);
      CHECK_FALSE(s.collapsed());
    }
  }
}

TEST_CASE("count, sum, min and max are exact; zero and tiny values are zero; NaN is ignored") {
  QuantileSketch s;
  CHECK_FALSE(s.quantile(0.5));
  CHECK_FALSE(s.min());
  for (double v : {3.0, -2.0, 0.0, 1e-12, 7.5}) s.add(v);
  s.add(std::nan(""));
  s.add(4.0, 3);  // weighted
  CHECK(s.count() == 8);
  CHECK(s.sum() == doctest::Approx(3 - 2 + 0 + 1e-12 + 7.5 + 12));
  CHECK(*s.min() == -2.0);
  CHECK(*s.max() == 7.5);
  CHECK(*s.quantile(0) == -2.0);  // the exact extremes
  CHECK(*s.quantile(1) == 7.5);
  CHECK(*s.quantile(0.2) == 0.0);  // ranks 1 and 2 are the zeros
  CHECK(*s.quantile(0.5) == doctest::Approx(3.0).epsilon(0.01));  // rank 3 of -2 0 0 3 4 4 4 7.5
  CHECK(*s.quantile(0.6) == doctest::Approx(4.0).epsilon(0.01));
}

TEST_CASE("the merge of two sketches is the sketch of the union") {
  std::mt19937_64 random(7);
  std::lognormal_distribution<double> lognormal(2.0, 2.0);
  std::vector<double> a, b, all;
  for (int i = 0; i < 50000; ++i) {
    const double v = (i % 3 == 0 ? -1 : 1) * lognormal(random);
    (i % 2 ? a : b).push_back(v);
    all.push_back(v);
  }
  QuantileSketch merged = sketch_of(a);
  REQUIRE(merged.merge(sketch_of(b)));
  const QuantileSketch whole = sketch_of(all);
  CHECK(merged == whole);
  CHECK(merged.sum() == doctest::Approx(whole.sum()));
  for (double q : {0.5, 0.9, 0.95, 0.99}) CHECK(*merged.quantile(q) == *whole.quantile(q));

  QuantileSketchSettings other;
  other.relative_accuracy = 0.02;
  CHECK_FALSE(merged.merge(QuantileSketch(other)));  // different buckets: refused
  CHECK(merged == whole);
}

TEST_CASE("memory is bounded: past max_buckets the lowest fold, the high quantiles keep their bound") {
  // 1,000 buckets at 1% span a factor of about 5e8; the values span 1e20.
  QuantileSketchSettings settings;
  settings.max_buckets = 1000;
  QuantileSketch s(settings);
  std::vector<double> values;
  for (int e = -9; e <= 9; ++e)
    for (int k = 1; k <= 100; ++k) values.push_back(k * std::pow(10.0, e));
  for (double v : values) s.add(v);
  CHECK(s.collapsed());
  CHECK(s.bucket_count() <= 1000);
  for (double q : {0.9, 0.95, 0.99}) {
    const double want = exact(values, q);
    CHECK(std::fabs(*s.quantile(q) - want) / want <= 0.01 + rounding);
  }
  // A value far above everything: all earlier buckets fold into one.
  QuantileSketch far(settings);
  far.add(1.0);
  far.add(1e300);
  CHECK(far.bucket_count() <= 1000);
  CHECK(far.count() == 2);
  CHECK(*far.quantile(1) == 1e300);
}

TEST_CASE("the text of a sketch reads back as the same sketch, and nothing else does") {
  std::mt19937_64 random(3);
  std::normal_distribution<double> normal(0.0, 100.0);
  QuantileSketch s;
  for (int i = 0; i < 1000; ++i) s.add(normal(random));
  s.add(0.0);
  const std::string text = s.serialize();
  const auto back = QuantileSketch::parse(text);
  REQUIRE(back);
  CHECK(*back == s);
  CHECK(back->sum() == s.sum());
  CHECK(*back->quantile(0.99) == *s.quantile(0.99));

  const auto empty = QuantileSketch::parse(QuantileSketch().serialize());
  REQUIRE(empty);
  CHECK(empty->count() == 0);

  QuantileSketchSettings other;
  other.relative_accuracy = 0.05;
  CHECK_FALSE(QuantileSketch::parse(text, other));  // another accuracy
  CHECK_FALSE(QuantileSketch::parse(""));
  CHECK_FALSE(QuantileSketch::parse(text.substr(0, text.size() / 2)));
  CHECK_FALSE(QuantileSketch::parse(text + "1 "));
  std::string miscounted = text;
  miscounted.replace(miscounted.find(" 1001 "), 6, " 1002 ");
  CHECK_FALSE(QuantileSketch::parse(miscounted));
}
