// Broker::drain: empties an instance for a restart without every client
// coming back in the same second. The broker tells it of each session that
// opens and closes (it counts them, to know when the drain is done); once a
// drain begins, each shard spreads the sessions of its SessionDirectory evenly over
// DrainSettings::duration and closes them in waves from one timer, each with
// CloseCode::reconnect_after and "reconnect after <N> ms" (N uniform in the
// settings' window), after its queued frames went to the connection. At the
// deadline, sessions still open are closed with going_away.
//
// Why here and not in the transports: a session's queue, its close and its
// shard are the core's, and every transport (WebSocket, SSE, long-polling)
// closes through SessionConnection::close the same way.
//
// Threads: drain(), draining(), retry_after(), counters() and finish() from
// any thread; opened() and closed() on the session's shard thread, like
// everything in ShardState.
#pragma once

#include "session_directory.hpp"
#include "session_state.hpp"

#include <livecast/broker.hpp>
#include <livecast/config.hpp>

#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <vector>

LIVECAST_BEGIN_NAMESPACE
namespace detail {

class Drain {
 public:
  // One entry per broker shard: the io_context that runs it, and the
  // directory of its open sessions (both outlive the Drain).
  struct Shard {
    asio::io_context* context;
    const SessionDirectory* sessions;
  };
  explicit Drain(const std::vector<Shard>& shards);
  ~Drain();

  Drain(const Drain&) = delete;
  Drain& operator=(const Drain&) = delete;

  // Broker::drain. Throws std::invalid_argument for settings it cannot use.
  void drain(const DrainSettings& settings, std::function<void()> done);
  bool draining() const noexcept { return draining_.load(std::memory_order_acquire); }
  // The Retry-After of a refused handshake while draining.
  std::optional<std::chrono::seconds> retry_after() const noexcept;

  // Rebalancing's use of the same path (its shard thread): closes up to `n`
  // of the shard's sessions that are not closing yet, each once its queue is
  // out, with CloseCode::reconnect_after and a delay uniform in [min, max].
  // How many it took.
  std::size_t shed(std::size_t shard, std::size_t n, std::chrono::milliseconds delay_min,
                   std::chrono::milliseconds delay_max);

  // The broker opened or closed a session (its shard thread).
  void opened(SessionState& session);
  void closed(SessionState& session);

  // Runs the `done` callbacks now if a drain is under way and they have not
  // run (the broker stopped before the drain ended). Never under a lock.
  void finish();

  struct Counters {
    std::uint64_t closes = 0;         // with CloseCode::reconnect_after
    std::uint64_t forced_closes = 0;  // with going_away at the deadline
    std::uint64_t shed_closes = 0;    // by shed(), with CloseCode::reconnect_after
  };
  Counters counters() const noexcept;

  // The close reason for a reconnect delay (docs/protocol.md, close code 4012).
  static std::string reconnect_reason(std::chrono::milliseconds delay);

 private:
  using Clock = std::chrono::steady_clock;

  // A session whose turn came: closed once its queue is empty, or at `until`.
  struct Flushing {
    std::weak_ptr<SessionState> session;
    Clock::time_point until;
    // The delay its close names; none: drawn from the drain's settings.
    std::optional<std::chrono::milliseconds> delay;
  };
  // A session in the shard's close order, due at `at`.
  struct Due {
    std::weak_ptr<SessionState> session;
    Clock::time_point at;
  };

  // Touched only on its shard's thread (but counters). Aligned so that two
  // shards' counters never share a cache line.
  struct alignas(64) ShardState {
    ShardState(asio::io_context& context, const SessionDirectory& sessions)
        : context(&context), sessions(&sessions), timer(context), deadline_timer(context) {}
    asio::io_context* context;
    const SessionDirectory* sessions;  // every session of the shard not yet reported closed
    bool begun = false;
    std::vector<Due> order;  // by due time
    std::size_t next = 0;    // the first in `order` not yet due
    std::vector<Flushing> flushing;
    asio::steady_timer timer;
    std::optional<Clock::time_point> timer_armed_for;
    asio::steady_timer deadline_timer;
    std::mt19937 random{std::random_device{}()};
    std::atomic<std::uint64_t> closes{0};
    std::atomic<std::uint64_t> forced_closes{0};
    std::atomic<std::uint64_t> shed_closes{0};
  };

  // Sessions are closed in batches at least this far apart: a wave.
  static constexpr std::chrono::milliseconds wave_interval{10};
  // How often a session waiting for its queue to empty is looked at.
  static constexpr std::chrono::milliseconds flush_poll{5};

  void begin(ShardState& shard, Clock::time_point start);
  void tick(ShardState& shard);
  void arm(ShardState& shard, Clock::time_point at);
  void deadline(ShardState& shard);
  void close(ShardState& shard, SessionState& session, std::optional<std::chrono::milliseconds> delay);

  std::vector<std::unique_ptr<ShardState>> shards_;
  // Expires with the drain: handlers posted to a host io_context may run later.
  std::shared_ptr<void> lifetime_ = std::make_shared<char>(0);
  std::atomic<bool> draining_{false};
  std::atomic<std::size_t> open_{0};        // sessions over every shard
  std::atomic<std::size_t> shards_left_{0};  // shards not yet past the deadline
  std::mutex mutex_;                         // settings_, done_, finished_
  DrainSettings settings_;                   // written once, before draining_ turns true
  std::vector<std::function<void()>> done_;
  bool finished_ = false;
};

}  // namespace detail
LIVECAST_END_NAMESPACE
