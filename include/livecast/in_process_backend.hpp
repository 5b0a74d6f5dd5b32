// The embedded default backend: offsets, history and latest values in this
// process's memory. The epoch is random per instance, so a restarted process
// tells returning clients "not recovered" instead of replaying wrong offsets.
#pragma once

#include <livecast/backend.hpp>
#include <livecast/config.hpp>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <random>
#include <string>
#include <unordered_map>
#include <utility>

LIVECAST_BEGIN_NAMESPACE

struct InProcessBackendSettings {
  // Publications kept per topic for recovery; the latest value is always kept.
  std::size_t history_size = 1000;
  // Fixed epoch, for tests; empty: random per instance.
  std::string epoch;
};

class InProcessBackend final : public Backend {
 public:
  explicit InProcessBackend(InProcessBackendSettings settings = {}) : settings_(std::move(settings)) {
    if (settings_.epoch.empty()) settings_.epoch = random_epoch();
    if (settings_.history_size == 0) settings_.history_size = 1;
  }

  void start(BackendListener& listener) override { listener_ = &listener; }
  void stop() override {}

  void publish(const std::string& topic, std::shared_ptr<const std::string> data, PublishHandler done) override {
    std::uint64_t offset;
    {
      // Delivery happens under the lock so that every shard receives one
      // topic's publications in offset order, whatever thread published them.
      std::lock_guard<std::mutex> lock(mutex_);
      History& h = topics_[topic];
      offset = ++h.head;
      h.publications.push_back(Publication{topic, offset, std::move(data)});
      if (h.publications.size() > settings_.history_size) h.publications.pop_front();
      if (listener_) listener_->on_publication(h.publications.back());
    }
    if (done) done({}, offset);
  }

  void watch(const std::string&) override {}
  void unwatch(const std::string&) override {}

  void read(const std::string& topic, const std::optional<StreamPosition>& since, ReadHandler done) override {
    ReadResult result;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      result.head.epoch = settings_.epoch;
      auto it = topics_.find(topic);
      if (it != topics_.end()) {
        const History& h = it->second;
        result.head.offset = h.head;
        if (since && since->epoch == settings_.epoch && since->offset <= h.head) {
          // Recoverable when the first missed publication is still in history.
          std::uint64_t oldest = h.publications.empty() ? h.head + 1 : h.publications.front().offset;
          if (since->offset + 1 >= oldest) {
            result.recovered = true;
            for (const Publication& p : h.publications)
              if (p.offset > since->offset) result.publications.push_back(p);
          }
        }
        if (!result.recovered && !h.publications.empty()) result.publications.push_back(h.publications.back());
      } else if (since && since->epoch == settings_.epoch && since->offset == 0) {
        result.recovered = true;  // nothing was published, nothing was missed
      }
    }
    done(std::move(result));
  }

  const std::string& epoch() const noexcept { return settings_.epoch; }

 private:
  struct History {
    std::uint64_t head = 0;
    std::deque<Publication> publications;
  };

  static std::string random_epoch() {
    std::random_device rd;
    std::uint64_t v = (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
    static const char digits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
    std::string s;
    for (int i = 0; i < 10; ++i, v /= 36) s.push_back(digits[v % 36]);
    return s;
  }

  InProcessBackendSettings settings_;
  BackendListener* listener_ = nullptr;
  std::mutex mutex_;
  std::unordered_map<std::string, History> topics_;
};

LIVECAST_END_NAMESPACE
