// One instance's part of one Aggregator window, as it travels to the other
// instances through Backend::merge_window, and the merge of every part.
// Sans-I/O: text in, sketches out.
//
// A part holds every metric the instance knows, with its QuantileSketch of
// the window; a metric with no event in it is there too (an empty sketch),
// so that the merged summary names it with count 0, as a single instance does.
//
// Text format, version 1. Lengths come first, so a metric name may hold any
// byte (spaces and newlines included):
//   "lcw1 " <metrics> "\n"
//   per metric, in name order:
//     <name bytes> " " <name> " " <sketch bytes> " " <QuantileSketch::serialize()> "\n"
// The parser takes only exactly that: another version, a length past the end,
// names out of order or twice, a sketch that QuantileSketch::parse refuses
// (sketch settings other than the reader's included), or bytes after the
// last metric refuse the whole part. Another instance's text is input from
// the network: it never crashes the reader, it is counted and skipped.
#pragma once

#include <livecast/config.hpp>
#include <livecast/quantile_sketch.hpp>

#include <cstddef>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

LIVECAST_BEGIN_NAMESPACE

// Sketches by metric name. Ordered, to be searched by string_view: record()
// looks a metric up without building a std::string.
using MetricSketches = std::map<std::string, QuantileSketch, std::less<>>;

std::string encode_window_contribution(const MetricSketches& sketches);
std::optional<MetricSketches> parse_window_contribution(std::string_view text, const QuantileSketchSettings& settings);

struct MergedWindow {
  MetricSketches sketches;     // per metric, the merge of every part that holds it
  std::size_t parts = 0;       // parts merged
  std::size_t malformed = 0;   // parts refused by the parser (skipped)
};

// Merges every part that parses; a metric held by only some parts is the
// merge of those.
MergedWindow merge_window_contributions(const std::vector<std::string>& parts, const QuantileSketchSettings& settings);

LIVECAST_END_NAMESPACE
