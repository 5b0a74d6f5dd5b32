// TopicDelivery::coalesce_by: a table of per-merchant values, published a
// row at a time. A client that lags gets, once it reads again, the latest
// row of each merchant rather than every change; offsets still grow. A
// client that keeps up, and topics without coalesce_by, get everything.
// Single-threaded: a host io_context run by the test.
#include "memory_connection.hpp"
#include "received_messages.hpp"

#include <livecast/broker.hpp>

#include <ostream>

#include <doctest/doctest.h>

#include <asio/io_context.hpp>

#include <map>
#include <stdexcept>
#include <string>
#include <vector>

using namespace livecast;
using livecast_test::MemoryConnection;
using livecast_test::is_publication;
using livecast_test::number_after;
using livecast_test::string_after;

namespace {

void pump(asio::io_context& io) {
  io.restart();
  io.poll();
}

BrokerSettings coalescing_merchants() {
  BrokerSettings s;
  s.topic_delivery = [](std::string_view topic) {
    TopicDelivery d;
    if (topic.rfind("merchants", 0) == 0) d.coalesce_by = "merchant";
    return d;
  };
  return s;
}

std::string row(int merchant, int value) {
  return "{\"merchant\":\"m" + std::to_string(merchant) + "\",\"v\":" + std::to_string(value) + "}";
}

struct Received {
  std::string topic;
  std::uint64_t offset;
  std::string merchant;
  std::uint64_t value;
};

std::vector<Received> publications_of(const std::vector<std::string>& messages, const std::string& topic) {
  std::vector<Received> r;
  for (const std::string& m : messages)
    if (is_publication(m) && string_after(m, "topic") == topic)
      r.push_back({topic, number_after(m, "offset"), string_after(m, "merchant"), number_after(m, "v")});
  return r;
}

// 1,000 rows over 10 merchants on `topic`: row i is merchant i % 10's value i.
void publish_rows(Broker& broker, asio::io_context& io, const std::string& topic) {
  for (int i = 1; i <= 1000; ++i) {
    REQUIRE_FALSE(broker.publish(topic, row(i % 10, i)));
    pump(io);  // delivered as it comes, so a reader that keeps up reads each one
  }
}

}  // namespace

TEST_CASE("coalesce_by: a lagging client gets the latest row of each merchant, in offset order") {
  asio::io_context io;
  Broker broker(io, coalescing_merchants());
  MemoryConnection lagging(broker, 0);
  MemoryConnection keeping_up(broker, 0);
  for (MemoryConnection* c : {&lagging, &keeping_up}) {
    c->send(R"({"op":"subscribe","id":1,"topic":"merchants"})");
    c->send(R"({"op":"subscribe","id":2,"topic":"orders"})");
  }
  pump(io);
  lagging.set_reading(false);
  publish_rows(broker, io, "merchants");
  publish_rows(broker, io, "orders");  // no coalesce_by: every row is queued
  CHECK(lagging.received().size() == 2);  // the two replies, nothing since

  lagging.set_reading(true);
  pump(io);
  const std::vector<Received> rows = publications_of(lagging.received(), "merchants");
  REQUIRE(rows.size() == 10);
  std::map<std::string, std::uint64_t> latest;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    CAPTURE(i);
    if (i > 0) CHECK(rows[i].offset > rows[i - 1].offset);
    CHECK(rows[i].offset == rows[i].value);  // the first publication of the topic has offset 1, as row 1
    latest[rows[i].merchant] = rows[i].value;
  }
  CHECK(latest.size() == 10);  // one per merchant
  for (int m = 0; m < 10; ++m)
    CHECK(latest["m" + std::to_string(m)] == static_cast<std::uint64_t>(m == 0 ? 1000 : 990 + m));
  CHECK(publications_of(lagging.received(), "orders").size() == 1000);
  CHECK(publications_of(keeping_up.received(), "merchants").size() == 1000);
  CHECK(publications_of(keeping_up.received(), "orders").size() == 1000);

  const BrokerMetrics m = broker.metrics();
  CHECK(m.publications_coalesced == 990);
  CHECK(m.dropped == 0);
  CHECK(m.deliveries == 4 * 1000);  // queued, replaced afterwards or not
}

TEST_CASE("coalesce_by: a topic_delivery that throws coalesces nothing and is counted") {
  asio::io_context io;
  BrokerSettings s;
  s.topic_delivery = [](std::string_view) -> TopicDelivery { throw std::runtime_error("no delivery settings"); };
  s.log = {};  // the hook.failed lines are not what this test reads
  Broker broker(io, s);
  MemoryConnection lagging(broker, 0);
  lagging.send(R"({"op":"subscribe","id":1,"topic":"merchants"})");
  pump(io);
  lagging.set_reading(false);
  publish_rows(broker, io, "merchants");
  lagging.set_reading(true);
  pump(io);
  CHECK(publications_of(lagging.received(), "merchants").size() == 1000);
  const BrokerMetrics m = broker.metrics();
  CHECK(m.publications_coalesced == 0);
  CHECK(m.callback_errors >= 1000);  // asked at publish and again as each publication arrives
}
