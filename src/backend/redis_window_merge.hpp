// RedisBackend::merge_window (backend.hpp): the parts of one Aggregator window
// from every instance, handed to the one instance that claims the window.
//
// Per window key K, under the key prefix (the {K} hash tag keeps both keys in
// one Cluster slot, so one script may touch both):
//   agg:{K}        hash: instance id -> that instance's part
//   agg-claim:{K}  set once (SET NX) by the instance that publishes the window
// Each instance writes its part at once and, `settle` later, tries to claim
// the window. The claim, the read of every part and the deletion of the hash
// are one script: a part written after the claim stays in the hash, which is
// how its instance learns that it came too late (its clock is behind by more
// than the settle delay). Both keys expire (keep_for), so nothing is left
// behind by instances that died half-way.
//
// Threads: everything on the backend's io_context thread, and `done` too.
#pragma once

#include "redis_cluster.hpp"

#include <livecast/backend.hpp>
#include <livecast/config.hpp>

#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <system_error>
#include <unordered_map>

LIVECAST_BEGIN_NAMESPACE

class RedisWindowMerge {
 public:
  RedisWindowMerge(asio::io_context& io, RedisCommands& commands, std::string key_prefix);
  RedisWindowMerge(const RedisWindowMerge&) = delete;
  RedisWindowMerge& operator=(const RedisWindowMerge&) = delete;

  // How long both keys live: far longer than any instance may still try to
  // claim (a claim key that expired too early would let a slow instance
  // publish the window a second time).
  static std::chrono::milliseconds keep_for(std::chrono::milliseconds settle);

  void merge(const std::string& instance_id, const std::string& window_key, std::string contribution,
             std::chrono::milliseconds settle, Backend::MergeHandler done);
  // Answers every merge under way with `reason`; later ones at once.
  void stop(std::error_code reason);

 private:
  struct Pending {
    std::string hash, claim, instance_id;
    std::chrono::milliseconds settle{0};
    Backend::MergeHandler done;
    std::unique_ptr<asio::steady_timer> timer;
  };

  void claim(std::uint64_t id);
  void finish(std::uint64_t id, Backend::WindowContributions result);
  static Backend::WindowContributions failed();

  asio::io_context& io_;
  RedisCommands& commands_;
  const std::string key_prefix_;
  bool stopped_ = false;
  std::uint64_t next_id_ = 0;
  std::unordered_map<std::uint64_t, Pending> pending_;
};

LIVECAST_END_NAMESPACE
