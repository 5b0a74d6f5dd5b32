// What the broker tells its host: errors for on_error (rate limited, with
// the hooks that threw) and events for BrokerSettings::log, each through one
// function that swallows the host's exceptions.
#include "broker_impl.hpp"

#include <string>
#include <utility>

LIVECAST_BEGIN_NAMESPACE

void Broker::Impl::log(LogLevel level, std::string_view name, std::vector<LogField> fields) noexcept {
  if (!settings_.log) return;
  try {
    settings_.log(LogEvent{level, name, std::move(fields)});
  } catch (...) {  // the sink is the host's code, with nowhere to report its failure
  }
}

void Broker::Impl::report_error(const std::string& what, std::error_code ec) {
  if (!within_error_budget()) return;
  log(LogLevel::error, "error.reported", {{"what", what}, {"error", ec.message()}});
  call_on_error(what, ec);
}

bool Broker::Impl::within_error_budget() {
  if (!settings_.on_error && !settings_.log) return false;
  std::lock_guard<std::mutex> lock(error_mutex_);
  auto now = std::chrono::steady_clock::now();
  if (now - error_window_ > std::chrono::seconds(1)) {
    error_window_ = now;
    errors_in_window_ = 0;
  }
  return ++errors_in_window_ <= 10;
}

// The error callback is the host's code too; with nowhere left to report its
// own failure, it is swallowed.
void Broker::Impl::call_on_error(const std::string& what, std::error_code ec) noexcept {
  if (!settings_.on_error) return;
  try {
    settings_.on_error(what, ec);
  } catch (...) {
  }
}

void Broker::Impl::hook_failed(const char* hook, const char* what) noexcept {
  callback_errors_.fetch_add(1, std::memory_order_relaxed);
  try {
    if (!within_error_budget()) return;
    log(LogLevel::error, "hook.failed", {{"hook", hook}, {"error", what}});
    call_on_error(std::string(hook) + " threw: " + what, make_error_code(Errc::internal_error));
  } catch (...) {  // out of memory building the message
  }
}

LIVECAST_END_NAMESPACE
