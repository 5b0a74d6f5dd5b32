// Session requests per client per second, over all shards of the HTTP
// transport (HttpTransportSettings::max_session_requests_per_second). Over
// HTTP every SSE stream, poll and POST is a new session, with a full message
// allowance and a backend read for each topic it names; a per-request limit
// would bound nothing, so the allowance belongs to the client: a principal
// with an id, otherwise the remote address (an IPv4 address or an IPv6 /64).
//
// Sans-I/O (the caller gives the time) and thread-safe: one mutex, taken
// once per request and held for one hash-map operation.
#pragma once

#include <livecast/config.hpp>

#include <chrono>
#include <cstddef>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

LIVECAST_BEGIN_NAMESPACE
namespace detail {

class ClientRate {
 public:
  using Clock = std::chrono::steady_clock;

  // `per_second` requests a second, in bursts up to twice that; 0: no limit.
  // At most `max_clients` are remembered: clients whose allowance is full
  // again are forgotten first, and a table full of busy clients refuses new
  // ones (an attacker with many addresses cannot grow it without bound).
  ClientRate(unsigned per_second, std::size_t max_clients = 100000)
      : per_second_(per_second), burst_(2.0 * per_second), max_clients_(max_clients) {}

  // Whether `client` may make one more request at `now`; counts it if so.
  // Otherwise `retry_after` is how long until it may.
  bool allow(const std::string& client, Clock::time_point now, std::chrono::milliseconds& retry_after) {
    if (per_second_ == 0) return true;
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = buckets_.find(client);
    if (it == buckets_.end()) {
      if (buckets_.size() >= max_clients_ && !forget_rested(now)) {
        retry_after = std::chrono::milliseconds(1000);
        return false;
      }
      it = buckets_.emplace(client, Bucket{burst_, now}).first;
    }
    Bucket& b = it->second;
    b.tokens = level(b, now);
    b.at = now;
    if (b.tokens >= 1.0) {
      b.tokens -= 1.0;
      return true;
    }
    retry_after = std::chrono::milliseconds(static_cast<long long>((1.0 - b.tokens) * 1000.0 / per_second_) + 1);
    return false;
  }

  std::size_t clients() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return buckets_.size();
  }

 private:
  struct Bucket {
    double tokens;
    Clock::time_point at;
  };

  double level(const Bucket& b, Clock::time_point now) const {
    const double elapsed = std::chrono::duration<double>(now - b.at).count();
    const double refilled = b.tokens + (elapsed > 0 ? elapsed * per_second_ : 0.0);
    return refilled < burst_ ? refilled : burst_;
  }

  // Under the lock: drops every client whose allowance is full again (it
  // would start from a full one anyway); whether any went. A sweep looks at
  // every entry, so it runs at most once a second: a flood of new clients
  // against a full table is refused, not swept for each request.
  bool forget_rested(Clock::time_point now) {
    if (swept_ && now - *swept_ < std::chrono::seconds(1)) return false;
    swept_ = now;
    const std::size_t before = buckets_.size();
    for (auto it = buckets_.begin(); it != buckets_.end();) {
      if (level(it->second, now) >= burst_)
        it = buckets_.erase(it);
      else
        ++it;
    }
    return buckets_.size() < before;
  }

  const unsigned per_second_;
  const double burst_;
  const std::size_t max_clients_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, Bucket> buckets_;
  std::optional<Clock::time_point> swept_;
};

}  // namespace detail
LIVECAST_END_NAMESPACE
