// TopicDelivery::max_rate: conflation at the source. A topic limited to
// 10/s and fed at about 10,000/s sends about 10 a second, each the latest
// value published by then, the last one last; the values replaced are never
// stored and their publishers hear offset 0; other topics are untouched; a
// stop drops what was held back. Real time (the limit is a rate), with the
// broker on its own thread.
#include "latest_data.hpp"

#include <livecast/broker.hpp>
#include <livecast/topic.hpp>

#include <asio/io_context.hpp>

#include <ostream>

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

using namespace livecast;
using namespace std::chrono_literals;

namespace {

BrokerSettings limited(double rate) {
  BrokerSettings s;
  s.topic_delivery = [rate](std::string_view topic) {
    TopicDelivery d;
    if (topic.rfind("kpi.", 0) == 0) d.max_rate = rate;
    return d;
  };
  return s;
}

struct Outcome {
  std::mutex mutex;
  std::vector<int> sent;  // the values that went out, in the order their offsets say
  std::vector<std::uint64_t> offsets;
  std::atomic<int> replaced{0};
  std::atomic<int> answered{0};
};

void publish_counted(Broker& broker, const std::string& topic, int value, Outcome& out) {
  broker.publish(topic, "{\"v\":" + std::to_string(value) + "}", [&out, value](std::error_code ec, std::uint64_t offset) {
    if (!ec && offset == 0) out.replaced++;
    if (!ec && offset > 0) {
      std::lock_guard<std::mutex> lock(out.mutex);
      out.sent.push_back(value);
      out.offsets.push_back(offset);
    }
    out.answered++;
  });
}

}  // namespace

TEST_CASE("a topic limited to 10/s fed at about 10,000/s sends about 10 a second, each the latest value") {
  Broker broker(limited(10));
  broker.start();
  Outcome out;
  int published = 0;
  const auto start = std::chrono::steady_clock::now();
  // Two seconds at about 10,000 a second (the pace is the feed's, not a wait for an event).
  while (std::chrono::steady_clock::now() - start < 2s) {
    for (int i = 0; i < 10; ++i) publish_counted(broker, "kpi.tps", ++published, out);
    std::this_thread::sleep_for(1ms);
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  // Every publication is answered: sent at a turn, or replaced by a newer one.
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (out.answered < published && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(5ms);
  REQUIRE(out.answered == published);

  std::lock_guard<std::mutex> lock(out.mutex);
  CAPTURE(published);
  CAPTURE(seconds);
  CHECK(published >= 5000);
  // One at once, then one per turn of 100 ms while the feed lasts, and the
  // last value at the turn after it stopped.
  const double per_second = static_cast<double>(out.sent.size()) / seconds;
  CHECK(per_second >= 9.0);
  CHECK(per_second <= 11.5);
  CHECK(out.sent.size() + out.replaced == static_cast<std::size_t>(published));
  // Offsets follow the order of the values: each sent value was newer than the one before.
  std::vector<int> by_offset(out.sent.size());
  for (std::size_t i = 0; i < out.sent.size(); ++i) by_offset[out.offsets[i] - 1] = out.sent[i];
  for (std::size_t i = 1; i < by_offset.size(); ++i) CHECK(by_offset[i] > by_offset[i - 1]);
  CHECK(by_offset.back() == published);  // the last value went out, last
  CHECK(livecast_test::latest_data(broker, "kpi.tps") == "{\"v\":" + std::to_string(published) + "}");
  broker.stop();
}

TEST_CASE("topics without a limit are untouched; a stop drops what is held back") {
  Broker broker(limited(1));
  broker.start();
  Outcome free, held;
  for (int v = 1; v <= 100; ++v) publish_counted(broker, "orders", v, free);
  publish_counted(broker, "kpi.revenue", 1, held);  // goes at once
  publish_counted(broker, "kpi.revenue", 2, held);  // waits for the next turn, a second away
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while ((free.answered < 100 || held.answered < 1) && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(2ms);
  CHECK(free.answered == 100);
  CHECK(free.replaced == 0);
  {
    std::lock_guard<std::mutex> lock(free.mutex);
    CHECK(free.sent.size() == 100);
  }
  CHECK(held.answered == 1);
  broker.stop();
  CHECK(held.answered == 2);  // the held value was dropped and told so
  std::lock_guard<std::mutex> lock(held.mutex);
  CHECK(held.sent == std::vector<int>{1});
}

TEST_CASE("only_changes: a value the same as the topic's last is not sent again; a changed one is, at once") {
  asio::io_context io;
  BrokerSettings s;
  s.topic_delivery = [](std::string_view topic) {
    TopicDelivery d;
    d.only_changes = topic.rfind("gauge.", 0) == 0;
    return d;
  };
  Broker broker(io, s);
  std::vector<std::uint64_t> offsets;
  auto publish = [&](const std::string& topic, const std::string& json) {
    REQUIRE_FALSE(broker.publish(topic, json, [&](std::error_code ec, std::uint64_t offset) {
      REQUIRE_FALSE(ec);
      offsets.push_back(offset);
    }));
  };
  for (const char* v : {"{\"v\":1}", "{\"v\":1}", "{\"v\":1}", "{\"v\":2}", "{\"v\":2}", "{\"v\":1}"})
    publish("gauge.users", v);
  io.restart();
  io.poll();
  // Stored: 1, 2, 1 (offsets 1..3); the repeats hear offset 0.
  CHECK(offsets == std::vector<std::uint64_t>{1, 0, 0, 2, 0, 3});
  CHECK(livecast_test::latest_data(broker, "gauge.users") == "{\"v\":1}");
  CHECK(broker.metrics().publications_unchanged == 3);
  // Another topic with the same text, and a topic without the setting, are their own.
  offsets.clear();
  publish("gauge.other", "{\"v\":1}");
  publish("plain", "{\"v\":1}");
  publish("plain", "{\"v\":1}");
  io.restart();
  io.poll();
  CHECK(offsets == std::vector<std::uint64_t>{1, 1, 2});
}

TEST_CASE("only_changes with max_rate: each turn sends the latest value only when it differs from the last sent") {
  BrokerSettings s;
  s.topic_delivery = [](std::string_view) {
    TopicDelivery d;
    d.max_rate = 20;
    d.only_changes = true;
    return d;
  };
  Broker broker(s);
  broker.start();
  Outcome out;
  // A gauge re-published over and over that changes value twice: each value
  // is fed until a turn has sent it, then 2,000 times more (repeats).
  int published = 0;
  auto feed = [&](int value) {
    auto sent = [&] {
      std::lock_guard<std::mutex> lock(out.mutex);
      return !out.sent.empty() && out.sent.back() == value;
    };
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!sent() && std::chrono::steady_clock::now() < deadline) {
      publish_counted(broker, "kpi.users", value, out);
      ++published;
      std::this_thread::sleep_for(200us);
    }
    REQUIRE(sent());
    for (int i = 0; i < 2000; ++i, ++published) publish_counted(broker, "kpi.users", value, out);
  };
  feed(7);
  feed(8);
  feed(7);
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (out.answered < published && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(5ms);
  REQUIRE(out.answered == published);
  std::lock_guard<std::mutex> lock(out.mutex);
  // Sent: one 7, one 8, one 7 (whatever the turns), in that order.
  CHECK(out.sent == std::vector<int>{7, 8, 7});
  CHECK(out.offsets == std::vector<std::uint64_t>{1, 2, 3});
  CHECK(broker.metrics().publications_unchanged > 0);
}
