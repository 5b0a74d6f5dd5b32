// Conflation at the source for topics with a max_rate (TopicDelivery): at
// most max_rate publications a second go on to the backend, on a fixed grid
// of turns, and what goes at each turn is the latest value published since
// the last one. The values replaced meanwhile are never stored or sent;
// their publishers hear offset 0 (Broker::publish's `done`).
//
// A topic's first publication after a quiet turn goes at once; while it is
// busy, one timer per topic (on the given io_context) releases the pending
// value at the next turn, and the topic is forgotten at the first turn with
// nothing pending, so that memory follows the topics being throttled now.
//
// Threads: offer() from any thread; timers on the io_context; one mutex.
#pragma once

#include <livecast/backend.hpp>
#include <livecast/config.hpp>

#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

LIVECAST_BEGIN_NAMESPACE
namespace detail {

class SourceThrottle {
 public:
  // `only_changes` (TopicDelivery) goes along with the value the turn sends.
  using Send = std::function<void(const std::string& topic, std::shared_ptr<const std::string> data,
                                  Backend::PublishHandler done, bool only_changes)>;

  SourceThrottle(asio::io_context& io, Send send) : io_(io), send_(std::move(send)) {}
  ~SourceThrottle() { stop(); }

  // A publication on `topic` (limited to `max_rate` > 0 per second): sent
  // now, or kept as the topic's pending value until its next turn.
  void offer(const std::string& topic, std::shared_ptr<const std::string> data, Backend::PublishHandler done,
             double max_rate, bool only_changes = false);
  // Drops what is pending (its publishers hear shutting_down) and cancels
  // the timers; later offers go straight through.
  void stop();
  // Topics held now (throttled within their last turn).
  std::size_t topic_count() const;

 private:
  using Clock = std::chrono::steady_clock;
  struct Pending {
    std::shared_ptr<const std::string> data;
    Backend::PublishHandler done;
    bool only_changes = false;
  };
  struct TopicState {
    explicit TopicState(asio::io_context& io) : timer(io) {}
    asio::steady_timer timer;
    Clock::duration interval{};
    Clock::time_point next_turn{};
    std::optional<Pending> pending;
  };

  void arm(const std::string& topic, TopicState& state);
  void turn(const std::string& topic);

  asio::io_context& io_;
  Send send_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, std::unique_ptr<TopicState>> topics_;
  bool stopped_ = false;
  // Handlers check it before touching this object (the io_context may
  // outlive it with a host io_context).
  std::shared_ptr<void> lifetime_ = std::make_shared<char>(0);
};

}  // namespace detail
LIVECAST_END_NAMESPACE
