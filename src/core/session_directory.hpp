// Host control of sessions, the mechanism: each shard's SessionDirectory
// (its open sessions, the one registry of them that the shard keeps: the
// drain and rebalancing walk it too; and an index by principal id so that
// closing a principal's sessions touches those sessions only),
// and ShardGather, one question asked of every shard and answered once.
// Broker::sessions, Broker::close_sessions and the SessionHooks calls are in
// session_control.cpp.
//
// Threads: a SessionDirectory is touched only on its shard's thread (how
// many sessions a shard holds, from any thread, is Shard::open_sessions(),
// from its counters). A ShardGather takes parts from any thread under its
// own mutex.
#pragma once

#include "session_state.hpp"

#include <livecast/config.hpp>
#include <livecast/error.hpp>
#include <livecast/protocol.hpp>
#include <livecast/session_control.hpp>

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

LIVECAST_BEGIN_NAMESPACE
namespace detail {

class SessionDirectory {
 public:
  // On the shard's thread, from open_session and close_session. Anonymous
  // sessions (empty principal id) are held, not indexed: no one can name
  // them.
  void add(SessionState& session);
  void remove(SessionState& session);

  // Every session open on this shard, anonymous ones included, from
  // open_session until close_session (on the shard's thread).
  const std::unordered_set<SessionState*>& all() const noexcept { return all_; }

  // Appends at most `max` of the principal's sessions to `out.sessions` and
  // adds all of them to `out.total`.
  void list(const std::string& principal_id, std::size_t max,
            const std::vector<std::shared_ptr<const Protocol>>& protocols, SessionList& out) const;
  // Closes the principal's sessions that are not closing yet; how many.
  std::size_t close(const std::string& principal_id, CloseCode code, std::string_view reason);

 private:
  struct Entry {
    SessionState* session;  // registered from open to close_session, which precedes its end
    std::chrono::system_clock::time_point opened_at;
  };
  std::unordered_set<SessionState*> all_;
  std::unordered_map<std::string, std::vector<Entry>> by_principal_;
};

// A gather that stop() can finish early: the shards that have not answered
// by then never will (their queued work is discarded).
class PendingGather {
 public:
  virtual ~PendingGather() = default;
  virtual void finish() noexcept = 0;
};

// Every shard adds its part of one answer; the last to do so, or finish(),
// hands the answer to `done`, exactly once, outside the lock.
template <class Result>
class ShardGather final : public PendingGather {
 public:
  ShardGather(std::size_t shards, std::function<void(Result)> done) : waiting_(shards), done_(std::move(done)) {}

  bool finished() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return !done_;
  }
  // `merge(Result&)` adds one shard's part.
  template <class Merge>
  void add(Merge&& merge) {
    std::function<void(Result)> done;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!done_) return;
      merge(result_);
      if (--waiting_ != 0) return;
      done = std::move(done_);
      done_ = nullptr;
    }
    done(std::move(result_));
  }
  void finish() noexcept override {
    std::function<void(Result)> done;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!done_) return;
      done = std::move(done_);
      done_ = nullptr;
    }
    done(std::move(result_));  // the broker's wrapper around the host's callback does not throw
  }

 private:
  mutable std::mutex mutex_;
  std::size_t waiting_;
  Result result_{};
  std::function<void(Result)> done_;
};

// The gathers under way, so that stopping the broker can finish them.
class PendingGathers {
 public:
  // False once stopped: the caller answers at once, with nothing.
  bool admit(const std::shared_ptr<PendingGather>& gather);
  // Finishes every gather under way and refuses new ones. Call with no
  // shard thread running (after they were joined), never under a lock the
  // host's callbacks could take.
  void stop();

 private:
  std::mutex mutex_;
  bool stopped_ = false;
  std::vector<std::weak_ptr<PendingGather>> pending_;
};

}  // namespace detail
LIVECAST_END_NAMESPACE
