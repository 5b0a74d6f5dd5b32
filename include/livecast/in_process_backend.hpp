// The embedded default backend: offsets, history and latest values in this
// process's memory. The epoch is random per instance, so a restarted process
// tells returning clients "not recovered" instead of replaying wrong offsets.
//
// Memory is bounded per topic (history_size publications, history_bytes of
// payload) and over topics: a topic nobody here subscribes to and nobody
// published on for idle_topic_ttl is forgotten, so publishing on ever new
// topic names cannot grow the process without bound.
#pragma once

#include <livecast/backend.hpp>
#include <livecast/config.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

LIVECAST_BEGIN_NAMESPACE

struct InProcessBackendSettings {
  // Publications kept per topic for recovery; the latest value is always kept.
  std::size_t history_size = 1000;
  // Payload bytes kept per topic for recovery: older publications go first
  // once the history holds more; the latest value is always kept.
  std::size_t history_bytes = 8 * 1024 * 1024;
  // A topic with no subscriber in this process and no publication for this
  // long is forgotten (history, latest value, offsets). When it comes back it
  // starts in a new epoch, so a client that remembers the old one is told
  // "not recovered" rather than handed another incarnation's offsets.
  // Zero keeps every topic for the life of the process.
  std::chrono::milliseconds idle_topic_ttl = std::chrono::minutes(10);
  // Records of closed resumable sessions (Backend::keep_session) held at
  // once; past it a session closing is not kept (its client starts over).
  std::size_t max_kept_sessions = 100000;
  // Fixed epoch, for tests; empty: random per instance.
  std::string epoch;
  // The time source, for tests; empty: std::chrono::steady_clock.
  std::function<std::chrono::steady_clock::time_point()> clock;
};

class InProcessBackend final : public Backend {
 public:
  explicit InProcessBackend(InProcessBackendSettings settings = {});
  ~InProcessBackend() override;

  void start(BackendListener& listener) override;
  void stop() override {}
  void publish(const std::string& topic, std::shared_ptr<const std::string> data, PublishHandler done) override;
  void watch(const std::string& topic) override;
  void unwatch(const std::string& topic) override;
  void read(const std::string& topic, const std::optional<StreamPosition>& since, std::size_t max_publications,
            ReadHandler done) override;
  void read_recent(const std::string& topic, const RecentHistory& recent, std::size_t max_publications,
                   ReadHandler done) override;
  void keep_session(const std::string& resume_id, std::string record, std::chrono::milliseconds ttl,
                    KeepHandler done) override;
  void take_session(const std::string& resume_id, TakeHandler done) override;

  // The epoch a topic created now gets (the instance's, then a new one after
  // each round of forgotten topics).
  std::string epoch() const;
  // Topics held now, and topics forgotten for being idle since start.
  std::size_t topic_count() const;
  std::uint64_t topics_forgotten() const;

 private:
  struct History {
    std::string epoch;  // of this incarnation of the topic
    std::uint64_t head = 0;
    std::deque<Publication> publications;
    // When each of `publications` was stored (same order), for read_recent's max_age.
    std::deque<std::chrono::steady_clock::time_point> stored_at;
    std::size_t bytes = 0;  // payload bytes in `publications`
    std::chrono::steady_clock::time_point last_publication{};
  };

  std::chrono::steady_clock::time_point now() const;
  // Forgets idle topics, at most once per half TTL (callers hold the mutex).
  void forget_idle(std::chrono::steady_clock::time_point now);

  InProcessBackendSettings settings_;
  BackendListener* listener_ = nullptr;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, History> topics_;
  std::unordered_map<std::string, std::size_t> watched_;  // topic -> watch() calls not yet undone
  std::string generation_epoch_;  // what a topic created now gets
  std::uint64_t generation_ = 0;  // rounds of forgetting so far
  std::uint64_t forgotten_ = 0;
  std::chrono::steady_clock::time_point last_sweep_{};

  // keep_session's records, each until it expires (swept as more come).
  struct KeptSession {
    std::string record;
    std::chrono::steady_clock::time_point expires_at;
  };
  std::mutex kept_mutex_;
  std::unordered_map<std::string, KeptSession> kept_;
  std::chrono::steady_clock::time_point next_kept_sweep_{};
};

LIVECAST_END_NAMESPACE
