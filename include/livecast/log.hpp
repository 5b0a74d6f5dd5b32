// The structured log hook: what the broker and its transports tell an
// operator (started, stopped, backend lost and back, a host hook that threw),
// as a level, an event name and named fields, for the host to route into its
// own logging. BrokerSettings::log takes a LogSink; the default, stderr_log(),
// writes one line per event to stderr.
//
//   livecast::BrokerSettings settings;
//   settings.log = [](const livecast::LogEvent& e) {
//     if (e.level >= livecast::LogLevel::warning) my_logger.warn(e.name, e.fields);
//   };
//
// Events are rare by design: never per message, per delivery or per request,
// so a sink may take a lock or write a line. Field values never carry a
// token or a payload. The event names are listed in docs/operations.md,
// "Logging".
#pragma once

#include <livecast/config.hpp>

#include <functional>
#include <string>
#include <string_view>
#include <vector>

LIVECAST_BEGIN_NAMESPACE

enum class LogLevel { debug, info, warning, error };

// "debug", "info", "warning", "error".
constexpr std::string_view to_string(LogLevel level) noexcept {
  switch (level) {
    case LogLevel::debug: return "debug";
    case LogLevel::info: return "info";
    case LogLevel::warning: return "warning";
    case LogLevel::error: return "error";
  }
  return "unknown";
}

// One named value. The name is a string literal of livecast's; the value is
// text (numbers formatted, errors as their message).
struct LogField {
  std::string_view name;
  std::string value;
};

// What happened. `name` is a dotted string literal ("backend.unavailable");
// both views are valid for the duration of the sink's call only: copy what
// you keep.
struct LogEvent {
  LogLevel level = LogLevel::info;
  std::string_view name;
  std::vector<LogField> fields;

  // The value of the field called `field`; nullptr when there is none.
  const std::string* field(std::string_view field_name) const noexcept {
    for (const LogField& f : fields)
      if (f.name == field_name) return &f.value;
    return nullptr;
  }
};

// Called from any thread (a broker shard, the backend's thread, the thread
// that starts or stops a transport), one event at a time per thread but not
// serialised across threads; must not block for long. An exception it throws
// is swallowed. An empty LogSink turns logging off.
using LogSink = std::function<void(const LogEvent&)>;

// Writes events at `min` and above to stderr, one line each:
//   2026-12-07T01:02:03.456Z warning backend.unavailable error="Connection refused"
// (UTC time, level, name, then name=value pairs; values with spaces, quotes
// or control characters are quoted and escaped). Lines from several threads
// do not interleave.
LogSink stderr_log(LogLevel min = LogLevel::info);

LIVECAST_END_NAMESPACE
