// The HTTP transport's counters, shared by its connections and exchanges on
// every shard (relaxed atomics); HttpTransport::metrics() reads them.
#pragma once

#include <livecast/config.hpp>

#include <atomic>
#include <cstdint>

LIVECAST_BEGIN_NAMESPACE
namespace detail {

struct HttpCounters {
  std::atomic<std::uint64_t> connections{0}, connections_active{0}, requests{0}, sse_streams{0}, sse_active{0},
      polls{0}, posts{0}, preflights{0}, handler_requests{0}, websocket_upgrades{0}, write_timeouts{0}, refused_malformed{0},
      refused_bad_parameters{0}, refused_too_large{0}, refused_method{0}, refused_unauthorized{0}, refused_origin{0},
      refused_not_found{0}, refused_timeout{0}, refused_too_many_connections{0}, refused_per_address{0},
      refused_shutting_down{0}, refused_rate_limited{0}, ignored_cookie_credentials{0}, tls_handshakes_failed{0},
      publish_requests{0}, publish_publications{0}, refused_forbidden{0}, refused_unavailable{0};
  // Engine.IO polling (engineio_polling.hpp).
  std::atomic<std::uint64_t> engineio_sessions{0}, engineio_sessions_active{0}, engineio_polls{0}, engineio_posts{0},
      refused_unknown_session{0}, refused_engineio{0};
};

inline void bump(std::atomic<std::uint64_t>& counter) noexcept { counter.fetch_add(1, std::memory_order_relaxed); }
inline void drop(std::atomic<std::uint64_t>& counter) noexcept { counter.fetch_sub(1, std::memory_order_relaxed); }

}  // namespace detail
LIVECAST_END_NAMESPACE
