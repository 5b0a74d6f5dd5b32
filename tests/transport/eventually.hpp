// Waiting in tests for a condition with no event to wait on (a broker's or
// a transport's counters): poll it, bounded.
#pragma once

#include <chrono>
#include <functional>
#include <thread>

namespace livecast_test {

inline constexpr std::chrono::milliseconds wait_limit{5000};

// Polls `done` until it holds or `timeout` passes.
inline bool eventually(const std::function<bool()>& done, std::chrono::milliseconds timeout = wait_limit) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

}  // namespace livecast_test
