// A strict reader of the Prometheus text exposition format (0.0.4), written
// for the tests from the format's description: every rule livecast's output
// must keep is checked here, and each violation is reported as a line of
// text (the tests assert that there are none).
//
// Checked: metric and label names; HELP and TYPE at most once per family and
// before its samples; every sample under a TYPE; a family's lines in one
// group; counters named ..._total; label syntax and escapes (\\, \", \n);
// no label name twice in a sample; no series twice; values as Go parses
// them; histograms: _bucket lines with `le`, bounds ascending, counts
// cumulative, the last bucket le="+Inf" and equal to _count, a _sum.
#pragma once

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstddef>
#include <cstdlib>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace livecast_test {

struct PromSample {
  std::string name;  // as written: with _bucket, _sum or _count for histograms
  std::map<std::string, std::string> labels;
  double value = 0;
};

struct PromFamily {
  std::string name, type, help;
  bool has_help = false;
  std::vector<PromSample> samples;
};

struct PromExposition {
  std::map<std::string, PromFamily> families;
  std::vector<std::string> errors;

  // The value of the sample `name` whose labels include `labels`; the first
  // match; nothing when none.
  std::optional<double> value(const std::string& name, const std::map<std::string, std::string>& labels = {}) const {
    for (const auto& [family_name, f] : families)
      for (const PromSample& s : f.samples) {
        if (s.name != name) continue;
        bool match = true;
        for (const auto& [k, v] : labels) {
          auto it = s.labels.find(k);
          if (it == s.labels.end() || it->second != v) match = false;
        }
        if (match) return s.value;
      }
    return std::nullopt;
  }
  // The sum over every sample named `name` (all label sets).
  double total(const std::string& name) const {
    double sum = 0;
    for (const auto& [family_name, f] : families)
      for (const PromSample& s : f.samples)
        if (s.name == name) sum += s.value;
    return sum;
  }
};

namespace prom_detail {

inline bool name_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
inline bool name_char(char c) { return name_start(c) || (c >= '0' && c <= '9'); }

inline bool valid_metric_name(std::string_view n) {
  if (n.empty() || !(name_start(n[0]) || n[0] == ':')) return false;
  for (char c : n)
    if (!name_char(c) && c != ':') return false;
  return true;
}
inline bool valid_label_name(std::string_view n) {
  if (n.empty() || !name_start(n[0])) return false;
  for (char c : n)
    if (!name_char(c)) return false;
  return true;
}
inline bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// Go's ParseFloat spellings that Prometheus accepts.
inline std::optional<double> parse_value(const std::string& text) {
  if (text == "+Inf" || text == "Inf") return HUGE_VAL;
  if (text == "-Inf") return -HUGE_VAL;
  if (text == "NaN") return std::nan("");
  if (text.empty()) return std::nullopt;
  for (char c : text)
    if (!(std::isdigit(static_cast<unsigned char>(c)) || c == '.' || c == 'e' || c == 'E' || c == '-' || c == '+'))
      return std::nullopt;
  char* end = nullptr;
  double v = std::strtod(text.c_str(), &end);
  if (end != text.c_str() + text.size()) return std::nullopt;
  return v;
}

}  // namespace prom_detail

inline PromExposition parse_prometheus(const std::string& text) {
  using namespace prom_detail;
  PromExposition out;
  auto error = [&](std::size_t line_no, const std::string& what) {
    out.errors.push_back("line " + std::to_string(line_no) + ": " + what);
  };
  if (!text.empty() && text.back() != '\n') out.errors.push_back("the text does not end with a line feed");

  std::set<std::string> closed;  // families whose group ended
  std::string current;           // the family being written
  std::set<std::string> series;  // name + labels, to find duplicates
  auto enter = [&](std::size_t line_no, const std::string& family) {
    if (family == current) return;
    if (closed.count(family)) error(line_no, "family " + family + " is not in one group");
    if (!current.empty()) closed.insert(current);
    current = family;
  };

  std::size_t line_no = 0, pos = 0;
  while (pos < text.size()) {
    std::size_t eol = text.find('\n', pos);
    if (eol == std::string::npos) eol = text.size();
    const std::string line = text.substr(pos, eol - pos);
    pos = eol + 1;
    ++line_no;
    if (line.empty()) continue;
    if (line[0] == '#') {
      // "# HELP name text", "# TYPE name type"; other comments are free.
      const bool help = line.rfind("# HELP ", 0) == 0, type = line.rfind("# TYPE ", 0) == 0;
      if (!help && !type) continue;
      const std::string rest = line.substr(7);
      const std::size_t space = rest.find(' ');
      const std::string name = rest.substr(0, space);
      const std::string arg = space == std::string::npos ? std::string() : rest.substr(space + 1);
      if (!valid_metric_name(name)) {
        error(line_no, "invalid metric name '" + name + "'");
        continue;
      }
      enter(line_no, name);
      PromFamily& f = out.families[name];
      f.name = name;
      if (!f.samples.empty()) error(line_no, (help ? "HELP" : "TYPE") + std::string(" after samples of ") + name);
      if (help) {
        if (f.has_help) error(line_no, "second HELP for " + name);
        f.has_help = true;
        for (std::size_t i = 0; i < arg.size(); ++i)
          if (arg[i] == '\\' && (i + 1 >= arg.size() || (arg[i + 1] != '\\' && arg[i + 1] != 'n')))
            error(line_no, "bad escape in HELP of " + name);
          else if (arg[i] == '\\')
            ++i;
        f.help = arg;
      } else {
        if (!f.type.empty()) error(line_no, "second TYPE for " + name);
        static const std::set<std::string> types{"counter", "gauge", "histogram", "summary", "untyped"};
        if (!types.count(arg)) error(line_no, "unknown type '" + arg + "' for " + name);
        f.type = arg;
        if (arg == "counter" && !ends_with(name, "_total")) error(line_no, "counter " + name + " is not named _total");
      }
      continue;
    }

    // name{label="value",...} value [timestamp]
    std::size_t i = 0;
    while (i < line.size() && line[i] != '{' && line[i] != ' ') ++i;
    PromSample s;
    s.name = line.substr(0, i);
    if (!valid_metric_name(s.name)) {
      error(line_no, "invalid metric name '" + s.name + "'");
      continue;
    }
    std::string series_key = s.name + "{";
    if (i < line.size() && line[i] == '{') {
      ++i;
      bool ok = true;
      while (ok && i < line.size() && line[i] != '}') {
        std::size_t eq = line.find('=', i);
        if (eq == std::string::npos) {
          ok = false;
          break;
        }
        std::string label = line.substr(i, eq - i);
        if (!valid_label_name(label)) error(line_no, "invalid label name '" + label + "'");
        if (eq + 1 >= line.size() || line[eq + 1] != '"') {
          ok = false;
          break;
        }
        std::string value;
        std::size_t j = eq + 2;
        bool closed_quote = false;
        for (; j < line.size(); ++j) {
          char c = line[j];
          if (c == '"') {
            closed_quote = true;
            break;
          }
          if (c == '\\') {
            if (j + 1 >= line.size()) break;
            char e = line[++j];
            if (e == '\\')
              value += '\\';
            else if (e == '"')
              value += '"';
            else if (e == 'n')
              value += '\n';
            else
              error(line_no, "bad escape in a label value");
            continue;
          }
          value += c;
        }
        if (!closed_quote) {
          ok = false;
          break;
        }
        if (!s.labels.emplace(label, value).second) error(line_no, "label " + label + " twice");
        i = j + 1;
        if (i < line.size() && line[i] == ',') ++i;
      }
      if (!ok || i >= line.size()) {
        error(line_no, "malformed labels: " + line);
        continue;
      }
      ++i;  // '}'
    }
    for (const auto& [k, v] : s.labels) series_key += k + "=" + v + ",";
    if (!series.insert(series_key).second) error(line_no, "series twice: " + line);
    if (i >= line.size() || line[i] != ' ') {
      error(line_no, "no value: " + line);
      continue;
    }
    std::string rest = line.substr(i + 1);
    std::string value_text = rest.substr(0, rest.find(' '));
    auto value = parse_value(value_text);
    if (!value) {
      error(line_no, "bad value '" + value_text + "'");
      continue;
    }
    s.value = *value;

    // Which family: a histogram's lines carry a suffix.
    std::string family = s.name;
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
      if (!ends_with(s.name, suffix)) continue;
      std::string base = s.name.substr(0, s.name.size() - std::string_view(suffix).size());
      auto it = out.families.find(base);
      if (it != out.families.end() && it->second.type == "histogram") family = base;
    }
    auto it = out.families.find(family);
    if (it == out.families.end() || it->second.type.empty()) {
      error(line_no, "sample of " + s.name + " without a TYPE");
      continue;
    }
    enter(line_no, family);
    if (it->second.type == "histogram" && family == s.name) error(line_no, "histogram sample without suffix");
    it->second.samples.push_back(std::move(s));
  }

  // Histograms: per label set (without le), cumulative buckets ending in
  // +Inf, equal to _count, and a _sum.
  for (const auto& [name, f] : out.families) {
    if (f.type != "histogram") continue;
    struct Series {
      std::vector<std::pair<double, double>> buckets;  // le, count
      std::optional<double> count, sum;
    };
    std::map<std::map<std::string, std::string>, Series> by_labels;
    for (const PromSample& s : f.samples) {
      auto labels = s.labels;
      if (s.name == name + "_bucket") {
        auto le = labels.find("le");
        if (le == labels.end()) {
          out.errors.push_back(name + ": a bucket without le");
          continue;
        }
        auto bound = parse_value(le->second);
        if (!bound) out.errors.push_back(name + ": bad le '" + le->second + "'");
        labels.erase(le);
        by_labels[labels].buckets.emplace_back(bound.value_or(0), s.value);
      } else if (s.name == name + "_count") {
        by_labels[labels].count = s.value;
      } else if (s.name == name + "_sum") {
        by_labels[labels].sum = s.value;
      }
    }
    if (by_labels.empty()) out.errors.push_back(name + ": a histogram without samples");
    for (const auto& [labels, h] : by_labels) {
      if (h.buckets.empty() || !std::isinf(h.buckets.back().first))
        out.errors.push_back(name + ": the last bucket is not le=\"+Inf\"");
      for (std::size_t k = 1; k < h.buckets.size(); ++k) {
        if (!(h.buckets[k - 1].first < h.buckets[k].first)) out.errors.push_back(name + ": bounds not ascending");
        if (h.buckets[k - 1].second > h.buckets[k].second) out.errors.push_back(name + ": buckets not cumulative");
      }
      if (!h.count) out.errors.push_back(name + ": no _count");
      if (!h.sum) out.errors.push_back(name + ": no _sum");
      if (h.count && !h.buckets.empty() && h.buckets.back().second != *h.count)
        out.errors.push_back(name + ": le=\"+Inf\" is not _count");
    }
  }
  for (const auto& [name, f] : out.families)
    if (f.type.empty()) out.errors.push_back(name + ": HELP without TYPE");
  return out;
}

// The rows of a Markdown table whose first cell is a `livecast_...` name in
// backticks: name -> (type, labels cell). For docs/operations.md.
struct DocumentedMetric {
  std::string type, labels;
};
inline std::map<std::string, DocumentedMetric> documented_metrics(const std::string& markdown) {
  std::map<std::string, DocumentedMetric> rows;
  std::size_t pos = 0;
  while (pos < markdown.size()) {
    std::size_t eol = markdown.find('\n', pos);
    if (eol == std::string::npos) eol = markdown.size();
    std::string line = markdown.substr(pos, eol - pos);
    pos = eol + 1;
    if (line.rfind("| `livecast_", 0) != 0) continue;
    std::vector<std::string> cells;
    std::size_t start = 1;
    while (start < line.size()) {
      std::size_t bar = line.find('|', start);
      if (bar == std::string::npos) break;
      std::string cell = line.substr(start, bar - start);
      while (!cell.empty() && cell.front() == ' ') cell.erase(0, 1);
      while (!cell.empty() && cell.back() == ' ') cell.pop_back();
      cells.push_back(cell);
      start = bar + 1;
    }
    if (cells.size() < 3) continue;
    std::string name = cells[0];
    name.erase(std::remove(name.begin(), name.end(), '`'), name.end());
    rows[name] = DocumentedMetric{cells[1], cells[2]};
  }
  return rows;
}

}  // namespace livecast_test
