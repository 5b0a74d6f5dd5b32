// stderr_log(): the default LogSink, one logfmt-like line per event on
// stderr. fmt builds the line in a memory buffer and one fwrite sends it, so
// lines from several threads do not interleave (stdio locks the stream).
#include <livecast/log.hpp>

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <iterator>

LIVECAST_BEGIN_NAMESPACE

namespace {

bool needs_quotes(std::string_view value) noexcept {
  if (value.empty()) return true;
  for (char ch : value) {
    const auto c = static_cast<unsigned char>(ch);
    if (c <= 0x20 || c == 0x7f || c == '"' || c == '=' || c == '\\') return true;
  }
  return false;
}

// A value in double quotes with `"`, `\` and control characters escaped, so
// that one event stays one line whatever a field holds.
void append_value(fmt::memory_buffer& out, std::string_view value) {
  if (!needs_quotes(value)) {
    out.append(value);
    return;
  }
  out.push_back('"');
  for (char ch : value) {
    const auto c = static_cast<unsigned char>(ch);
    if (ch == '"' || ch == '\\') {
      out.push_back('\\');
      out.push_back(ch);
    } else if (ch == '\n') {
      out.append(std::string_view("\\n"));
    } else if (c < 0x20 || c == 0x7f) {
      fmt::format_to(std::back_inserter(out), "\\x{:02x}", c);
    } else {
      out.push_back(ch);
    }
  }
  out.push_back('"');
}

void write_line(const LogEvent& event) {
  const auto now = std::chrono::system_clock::now();
  const std::time_t seconds = std::chrono::system_clock::to_time_t(now);
  const auto millis =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  const std::tm utc = fmt::gmtime(seconds);  // thread-safe, unlike std::gmtime
  fmt::memory_buffer line;
  fmt::format_to(std::back_inserter(line), "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z {} {}", utc.tm_year + 1900,
                 utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec, millis, to_string(event.level),
                 event.name);
  for (const LogField& field : event.fields) {
    line.push_back(' ');
    line.append(field.name);
    line.push_back('=');
    append_value(line, field.value);
  }
  line.push_back('\n');
  std::fwrite(line.data(), 1, line.size(), stderr);
}

}  // namespace

LogSink stderr_log(LogLevel min) {
  return [min](const LogEvent& event) {
    if (event.level >= min) write_line(event);
  };
}

LIVECAST_END_NAMESPACE
