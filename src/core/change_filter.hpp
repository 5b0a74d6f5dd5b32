// TopicDelivery::only_changes: a publication whose JSON text is the same as
// the last one this instance sent on its topic is not sent again, so that a
// gauge or counter the host publishes on every tick reaches subscribers (and
// Redis) only when it changes. Subscribers still get the value on subscribe
// (the latest value); nothing is lost but the repeats.
//
// Memory: the last value of each such topic (the shared text, not a copy),
// at most `max_topics` of them; past that the memory starts afresh, which
// costs at most one repeat per topic. Per instance: two instances publishing
// the same topic each filter their own repeats.
//
// Threads: any; one mutex.
#pragma once

#include <livecast/config.hpp>

#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

LIVECAST_BEGIN_NAMESPACE
namespace detail {

class ChangeFilter {
 public:
  explicit ChangeFilter(std::size_t max_topics = 10000) : max_topics_(max_topics) {}

  // True (and `data` is now the topic's last value) when `data` differs
  // from the last value sent on `topic`; false for the same text again.
  bool changed(const std::string& topic, const std::shared_ptr<const std::string>& data) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = last_.find(topic);
    if (it != last_.end()) {
      if (*it->second == *data) return false;
      it->second = data;
      return true;
    }
    if (last_.size() >= max_topics_) last_ = {};
    last_.emplace(topic, data);
    return true;
  }

  // The backend refused `data`: the topic's next value goes out even if it is
  // the same text (unless a newer value was sent meanwhile).
  void forget(const std::string& topic, const std::shared_ptr<const std::string>& data) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = last_.find(topic);
    if (it != last_.end() && it->second == data) last_.erase(it);
  }

  std::size_t topic_count() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return last_.size();
  }

 private:
  const std::size_t max_topics_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, std::shared_ptr<const std::string>> last_;
};

}  // namespace detail
LIVECAST_END_NAMESPACE
