// The data of a topic's latest publication ("" when it has none), waited
// for: Topic::latest answers on another thread.
#pragma once

#include <livecast/broker.hpp>
#include <livecast/topic.hpp>

#include <future>
#include <optional>
#include <string>

namespace livecast_test {

inline std::string latest_data(livecast::Broker& broker, const std::string& topic) {
  std::promise<std::string> answer;
  broker.topic(topic).latest([&](std::error_code, std::optional<livecast::Publication> p, livecast::StreamPosition) {
    answer.set_value(p && p->data ? *p->data : std::string());
  });
  return answer.get_future().get();
}

}  // namespace livecast_test
