// What happens when a client reads slower than livecast publishes: every
// session has a send queue bounded in bytes (SessionSettings::send_queue_bytes),
// and this policy says what gives when it is full.
#pragma once

#include <livecast/config.hpp>

#include <cstdint>

LIVECAST_BEGIN_NAMESPACE

enum class SlowConsumerPolicy : std::uint8_t {
  // Drop the oldest queued publications until the new one fits.
  drop_oldest,
  // Keep only the latest queued publication of each topic (a dashboard only
  // needs the newest value); if that is not enough, drop the oldest. The default.
  conflate,
  // Close the session with CloseCode::slow_consumer; the client reconnects and
  // recovers from its last position.
  disconnect,
};

inline const char* to_string(SlowConsumerPolicy p) noexcept {
  switch (p) {
    case SlowConsumerPolicy::drop_oldest: return "drop_oldest";
    case SlowConsumerPolicy::conflate: return "conflate";
    case SlowConsumerPolicy::disconnect: return "disconnect";
  }
  return "unknown";
}

LIVECAST_END_NAMESPACE
