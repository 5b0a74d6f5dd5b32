// Bounds the backend reads that subscribes start: how many run at once in
// the process, and how many one client may have running and waiting. A read
// is cheap alone, but every subscribe starts one (and a recovery may replay
// up to RecoverySettings::max_publications), so without a bound a client
// that opens many sessions or many topics at once (a long-poll request names
// many topics, and each request is a new session) turns one request into
// many Redis round trips and large answers.
//
// Sans-I/O: starting a read is a function the caller gives; the scheduler
// only decides when it runs. Thread-safe: submit() runs on shard threads,
// finished() where the backend answers.
#pragma once

#include <livecast/config.hpp>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

LIVECAST_BEGIN_NAMESPACE
namespace detail {

class ReadScheduler {
 public:
  struct Limits {
    std::size_t in_flight = 64;           // reads running at once, over the process
    std::size_t in_flight_per_client = 8;  // of them, for one client
    std::size_t waiting_per_client = 512;  // a client's reads waiting for a turn; beyond: refused
  };
  enum class Admission { started, waiting, refused };

  struct Counters {
    std::uint64_t started = 0;
    std::uint64_t waited = 0;   // reads that had to wait for a turn
    std::uint64_t refused = 0;
    std::size_t in_flight = 0;  // now
    std::size_t waiting = 0;    // now
  };

  explicit ReadScheduler(Limits limits) : limits_(limits) {}

  // Runs `start` now, or later when a turn comes (on the thread that calls
  // finished()), or never (refused). `client` groups one client's reads; the
  // read must end with finished(client), whatever its outcome.
  Admission submit(const std::string& client, std::function<void()> start) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      Client& c = clients_[client];
      if (in_flight_ < limits_.in_flight && c.in_flight < limits_.in_flight_per_client && c.waiting == 0) {
        ++in_flight_;
        ++c.in_flight;
        ++counters_.started;
      } else if (c.waiting < limits_.waiting_per_client) {
        ++c.waiting;
        ++counters_.waited;
        waiting_.push_back({client, std::move(start)});
        return Admission::waiting;
      } else {
        ++counters_.refused;
        forget_if_idle(client);
        return Admission::refused;
      }
    }
    run(std::move(start));
    return Admission::started;
  }

  // A read of `client` ended: its turn goes to the oldest waiting read whose
  // client is under its own limit.
  void finished(const std::string& client) {
    std::vector<std::function<void()>> next;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = clients_.find(client);
      if (it == clients_.end() || it->second.in_flight == 0) return;  // not ours: ignore
      --it->second.in_flight;
      --in_flight_;
      forget_if_idle(client);
      take_turns(next);
    }
    for (auto& start : next) run(std::move(start));
  }

  Counters counters() const {
    std::lock_guard<std::mutex> lock(mutex_);
    Counters c = counters_;
    c.in_flight = in_flight_;
    c.waiting = waiting_.size();
    return c;
  }

 private:
  struct Client {
    std::size_t in_flight = 0;
    std::size_t waiting = 0;
  };
  struct Waiting {
    std::string client;
    std::function<void()> start;
  };

  // Under the lock. Scans from the oldest: a client at its own limit does not
  // hold up the others behind it.
  void take_turns(std::vector<std::function<void()>>& next) {
    for (auto it = waiting_.begin(); it != waiting_.end() && in_flight_ < limits_.in_flight;) {
      Client& c = clients_[it->client];
      if (c.in_flight >= limits_.in_flight_per_client) {
        ++it;
        continue;
      }
      --c.waiting;
      ++c.in_flight;
      ++in_flight_;
      ++counters_.started;
      next.push_back(std::move(it->start));
      it = waiting_.erase(it);
    }
  }

  void forget_if_idle(const std::string& client) {
    auto it = clients_.find(client);
    if (it != clients_.end() && it->second.in_flight == 0 && it->second.waiting == 0) clients_.erase(it);
  }

  // A backend may answer inside read() (in-process does), so a start can end
  // in finished(), which starts the next: run them one after another on this
  // thread rather than nested, or a long queue would nest as deep as it is long.
  static void run(std::function<void()> start) {
    thread_local std::vector<std::function<void()>>* running = nullptr;
    if (running) {
      running->push_back(std::move(start));
      return;
    }
    std::vector<std::function<void()>> queue;
    queue.push_back(std::move(start));
    running = &queue;
    struct Reset {
      ~Reset() { running = nullptr; }
    } reset;
    for (std::size_t i = 0; i < queue.size(); ++i) {
      std::function<void()> f = std::move(queue[i]);
      f();
    }
  }

  const Limits limits_;
  mutable std::mutex mutex_;
  std::size_t in_flight_ = 0;
  std::unordered_map<std::string, Client> clients_;
  std::deque<Waiting> waiting_;
  Counters counters_;
};

}  // namespace detail
LIVECAST_END_NAMESPACE
