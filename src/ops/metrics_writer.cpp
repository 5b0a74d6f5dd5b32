// MetricsWriter: the Prometheus text exposition format, version 0.0.4.
// Families are kept apart while they are written, because the format wants
// all samples of a family in one group under its HELP and TYPE, while
// writers (one per transport) each add a sample to many families.
#include <livecast/metrics.hpp>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

LIVECAST_BEGIN_NAMESPACE

namespace {

bool name_start(char c) noexcept { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool name_char(char c) noexcept { return name_start(c) || (c >= '0' && c <= '9'); }

// [a-zA-Z_:][a-zA-Z0-9_:]*
bool valid_metric_name(std::string_view name) noexcept {
  if (name.empty() || !(name_start(name[0]) || name[0] == ':')) return false;
  for (char c : name)
    if (!name_char(c) && c != ':') return false;
  return true;
}

// [a-zA-Z_][a-zA-Z0-9_]*, and names starting with __ are Prometheus' own.
bool valid_label_name(std::string_view name) noexcept {
  if (name.empty() || !name_start(name[0]) || name.substr(0, 2) == "__") return false;
  for (char c : name)
    if (!name_char(c)) return false;
  return true;
}

bool ends_with(std::string_view s, std::string_view suffix) noexcept {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// HELP text escapes backslash and line feed; label values also the quote.
void append_escaped(std::string& out, std::string_view text, bool quote) {
  for (char c : text) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '\n')
      out += "\\n";
    else if (quote && c == '"')
      out += "\\\"";
    else
      out += c;
  }
}

// The shortest text that reads back as the same double, spelled as Go's
// strconv does for Prometheus: plain decimals for exponents from -4 to 20
// ("0.0005", "10", "15000000"), else an exponent; +Inf, -Inf, NaN. Bucket
// bounds are label values, so the spelling must not vary.
std::string format_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (v == 0) return "0";
  char buffer[64];
  int digits = 1;
  for (; digits < 17; ++digits) {
    std::snprintf(buffer, sizeof buffer, "%.*e", digits - 1, v);
    if (std::strtod(buffer, nullptr) == v) break;
  }
  std::snprintf(buffer, sizeof buffer, "%.*e", digits - 1, v);
  const int exponent = std::atoi(std::strchr(buffer, 'e') + 1);
  if (exponent >= -4 && exponent < 21) {
    const int decimals = digits - 1 - exponent > 0 ? digits - 1 - exponent : 0;
    std::snprintf(buffer, sizeof buffer, "%.*f", decimals, v);
  }
  return buffer;
}

}  // namespace

MetricsWriter::Family& MetricsWriter::family(std::string_view name, std::string_view help, const char* type) {
  if (!valid_metric_name(name))
    throw std::invalid_argument("livecast: invalid metric name '" + std::string(name) + "'");
  auto it = index_.find(std::string(name));
  if (it != index_.end()) {
    Family& f = families_[it->second];
    if (f.type != type)
      throw std::invalid_argument("livecast: metric '" + std::string(name) + "' written as " + f.type + " and " + type);
    return f;
  }
  index_.emplace(std::string(name), families_.size());
  families_.push_back(Family{std::string(name), std::string(help), type, {}});
  return families_.back();
}

void MetricsWriter::sample(Family& f, std::string_view suffix, Labels labels, std::string_view extra_label_name,
                           std::string_view extra_label_value, const std::string& value) {
  // Checked before anything is written, so that a refused sample leaves no half line.
  for (const Label& l : labels)
    if (!valid_label_name(l.name))
      throw std::invalid_argument("livecast: invalid label name '" + std::string(l.name) + "' in " + f.name);
  std::string& out = f.samples;
  out += f.name;
  out += suffix;
  const bool any = labels.size() > 0 || !extra_label_name.empty();
  if (any) {
    out += '{';
    bool first = true;
    auto label = [&](std::string_view name, std::string_view label_value) {
      if (!first) out += ',';
      first = false;
      out += name;
      out += "=\"";
      append_escaped(out, label_value, true);
      out += '"';
    };
    for (const Label& l : labels) label(l.name, l.value);
    if (!extra_label_name.empty()) label(extra_label_name, extra_label_value);
    out += '}';
  }
  out += ' ';
  out += value;
  out += '\n';
}

void MetricsWriter::counter(std::string_view name, std::string_view help, std::uint64_t value, Labels labels) {
  if (!ends_with(name, "_total"))
    throw std::invalid_argument("livecast: counter '" + std::string(name) + "' must be named ..._total");
  Family& f = family(name, help, "counter");
  sample(f, {}, labels, {}, {}, std::to_string(value));
}

void MetricsWriter::gauge(std::string_view name, std::string_view help, double value, Labels labels) {
  Family& f = family(name, help, "gauge");
  sample(f, {}, labels, {}, {}, format_value(value));
}

void MetricsWriter::histogram(std::string_view name, std::string_view help, const std::vector<double>& bounds,
                              const std::vector<std::uint64_t>& counts, double sum, Labels labels) {
  if (counts.size() != bounds.size() + 1)
    throw std::invalid_argument("livecast: histogram '" + std::string(name) + "' needs one count more than bounds");
  for (std::size_t i = 1; i < bounds.size(); ++i)
    if (!(bounds[i - 1] < bounds[i]))
      throw std::invalid_argument("livecast: histogram '" + std::string(name) + "' bounds must ascend");
  for (const Label& l : labels)
    if (l.name == "le") throw std::invalid_argument("livecast: histogram '" + std::string(name) + "' labelled le");
  Family& f = family(name, help, "histogram");
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < bounds.size(); ++i) {
    cumulative += counts[i];
    sample(f, "_bucket", labels, "le", format_value(bounds[i]), std::to_string(cumulative));
  }
  cumulative += counts.back();
  sample(f, "_bucket", labels, "le", "+Inf", std::to_string(cumulative));
  sample(f, "_sum", labels, {}, {}, format_value(sum));
  sample(f, "_count", labels, {}, {}, std::to_string(cumulative));
}

std::string MetricsWriter::text() const {
  std::string out;
  for (const Family& f : families_) {
    out += "# HELP ";
    out += f.name;
    out += ' ';
    append_escaped(out, f.help, false);
    out += "\n# TYPE ";
    out += f.name;
    out += ' ';
    out += f.type;
    out += '\n';
    out += f.samples;
  }
  return out;
}

LIVECAST_END_NAMESPACE
