// Broker::drain over loopback: 1,000 WebSocket clients (fewer if the
// open-file limit is low, asserted on what there is) on a broker with two
// shards, and an SSE client. A burst is published, then the instance drains
// over 2 s: every client is closed within the deadline with 4012 and a delay
// inside the window, the closes are spread (no 100 ms bin holds more than
// 10%), each client has every publication before its close frame, readiness
// says "draining", and new handshakes get 503 with Retry-After on both
// transports. The clients are raw sockets on one Asio thread: each does the
// opening handshake, then only reads (the server joins it to the topic).
#include "../../benchmarks/open_files.hpp"
#include "../reconnect_after.hpp"
#include "http_test_client.hpp"
#include "transport_server.hpp"
#include "ws_test_client.hpp"

#include <livecast/broker.hpp>
#include <livecast/http_transport.hpp>
#include <livecast/websocket_transport.hpp>

#include <asio/connect.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/read.hpp>
#include <asio/write.hpp>

#include <rapidjson/document.h>

#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

using namespace livecast;
using namespace std::chrono_literals;
using livecast_bench::raise_open_file_limit;
using livecast_test::HttpClient;
using livecast_test::reconnect_delay;
using Clock = std::chrono::steady_clock;

namespace {

// One WebSocket client: handshake, then frames until the server's close.
class RawClient : public std::enable_shared_from_this<RawClient> {
 public:
  explicit RawClient(asio::io_context& io) : socket_(io) {}

  void start(std::uint16_t port) {
    auto self = shared_from_this();
    socket_.async_connect({asio::ip::make_address("127.0.0.1"), port}, [self](const std::error_code& ec) {
      if (ec) return self->fail();
      self->request_ = "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                       "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
      asio::async_write(self->socket_, asio::buffer(self->request_), [self](const std::error_code& ec, std::size_t) {
        if (ec) return self->fail();
        self->read();
      });
    });
  }

  // Read on the client thread while it runs, or after it stopped.
  std::atomic<bool> upgraded{false};
  std::atomic<bool> joined{false};  // the server join's reply arrived
  std::atomic<bool> closed{false};
  std::atomic<bool> failed{false};
  int close_code = 0;
  std::string close_reason;
  Clock::time_point closed_at{};
  std::uint64_t last_offset = 0;
  std::size_t publications = 0;
  std::atomic<std::uint64_t> received{0};  // publications, for the test thread to watch
  bool publication_after_close = false;

 private:
  void fail() { failed = true; }

  void read() {
    auto self = shared_from_this();
    socket_.async_read_some(asio::buffer(chunk_), [self](const std::error_code& ec, std::size_t n) {
      if (ec) {
        if (!self->closed) self->fail();
        return;
      }
      self->buffer_.append(self->chunk_.data(), n);
      self->parse();
      self->read();
    });
  }

  void parse() {
    if (!upgraded) {
      const auto end = buffer_.find("\r\n\r\n");
      if (end == std::string::npos) return;
      if (buffer_.compare(0, 12, "HTTP/1.1 101") != 0) return fail();
      buffer_.erase(0, end + 4);
      upgraded = true;
    }
    while (buffer_.size() >= 2) {
      const auto b0 = static_cast<unsigned char>(buffer_[0]);
      const auto b1 = static_cast<unsigned char>(buffer_[1]);
      std::size_t header = 2;
      std::uint64_t length = b1 & 0x7f;
      if (length == 126) {
        if (buffer_.size() < 4) return;
        length = (std::uint64_t(static_cast<unsigned char>(buffer_[2])) << 8) | static_cast<unsigned char>(buffer_[3]);
        header = 4;
      } else if (length == 127) {
        if (buffer_.size() < 10) return;
        length = 0;
        for (int i = 2; i < 10; ++i) length = (length << 8) | static_cast<unsigned char>(buffer_[i]);
        header = 10;
      }
      if (buffer_.size() < header + length) return;
      const std::string payload = buffer_.substr(header, length);
      buffer_.erase(0, header + length);
      on_frame(b0 & 0x0f, payload);
    }
  }

  void on_frame(int opcode, const std::string& payload) {
    if (opcode == 1) {
      if (closed) publication_after_close = true;
      rapidjson::Document d;
      d.Parse(payload.c_str(), payload.size());
      if (d.HasParseError() || !d.IsObject()) return fail();
      if (d.HasMember("ok")) joined = true;
      if (d.HasMember("topic") && d.HasMember("offset") && !d.HasMember("ok") && !d.HasMember("error")) {
        ++publications;
        last_offset = d["offset"].GetUint64();
        received = publications;
      }
    } else if (opcode == 8 && !closed) {
      closed_at = Clock::now();
      if (payload.size() >= 2)
        close_code = (static_cast<unsigned char>(payload[0]) << 8) | static_cast<unsigned char>(payload[1]);
      if (payload.size() > 2) close_reason = payload.substr(2);
      closed = true;
      // Our close frame in answer (masked, with a zero mask): code only.
      reply_ = std::string("\x88\x82\0\0\0\0", 6);
      reply_ += payload.substr(0, 2);
      auto self = shared_from_this();
      asio::async_write(socket_, asio::buffer(reply_), [self](const std::error_code&, std::size_t) {});
    }
  }

  asio::ip::tcp::socket socket_;
  std::string request_;
  std::string reply_;
  std::array<char, 16384> chunk_{};
  std::string buffer_;
};

std::size_t count_if_clients(const std::vector<std::shared_ptr<RawClient>>& clients,
                             bool (*predicate)(const RawClient&)) {
  return static_cast<std::size_t>(std::count_if(clients.begin(), clients.end(),
                                                 [&](const std::shared_ptr<RawClient>& c) { return predicate(*c); }));
}

}  // namespace

TEST_CASE("drain: 1,000 WebSocket clients and an SSE client closed in waves with 4012 and a reconnect delay") {
  const std::size_t limit = raise_open_file_limit();
  // Two descriptors per client (ours and the server's), and room for the rest.
  // Under a sanitizer every socket costs many times more: a fifth of them.
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
  constexpr std::size_t most = 200;
#else
  constexpr std::size_t most = 1000;
#endif
  const std::size_t clients_wanted = std::min<std::size_t>(most, limit > 300 ? (limit - 200) / 2 : 50);
  MESSAGE("clients: " << clients_wanted << " (open-file limit " << limit << ")");

  BrokerSettings broker_settings = livecast_test::with_threads(2);
  broker_settings.server_joins = [](const Principal&) { return std::vector<std::string>{"feed"}; };
  Broker broker(broker_settings);
  auto ws_settings = livecast_test::loopback_settings<WebSocketSettings>();
  ws_settings.max_connections_per_address = ws_settings.max_connections;
  WebSocketTransport websocket(broker, ws_settings);
  HttpTransport http(broker, livecast_test::loopback_settings<HttpTransportSettings>());
  broker.start();
  websocket.start();
  http.start();

  asio::io_context io;
  std::vector<std::shared_ptr<RawClient>> clients;
  for (std::size_t i = 0; i < clients_wanted; ++i) {
    clients.push_back(std::make_shared<RawClient>(io));
    clients.back()->start(websocket.port());
  }
  std::thread io_thread([&] { io.run(); });
  struct JoinIo {
    asio::io_context& io;
    std::thread& thread;
    ~JoinIo() {
      io.stop();
      if (thread.joinable()) thread.join();
    }
  } join_io{io, io_thread};

  const std::size_t n = clients.size();
  REQUIRE(livecast_test::eventually(
      [&] { return count_if_clients(clients, [](const RawClient& c) { return c.joined.load(); }) == n; }, 10s));
  CHECK(count_if_clients(clients, [](const RawClient& c) { return c.failed.load(); }) == 0);

  HttpClient sse(http.port());
  sse.get("/sse?topics=feed");
  auto sse_head = sse.stream_head();
  REQUIRE(sse_head);
  REQUIRE(sse_head->status == 200);
  REQUIRE(livecast_test::eventually([&] { return broker.metrics().subscriptions_active == n + 1; }));

  // A burst, queued to every session before the drain begins.
  constexpr std::uint64_t burst = 20;
  for (std::uint64_t i = 1; i <= burst; ++i)
    REQUIRE_FALSE(broker.publish("feed", "{\"n\":" + std::to_string(i) + ",\"pad\":\"" + std::string(200, 'x') + "\"}"));
  REQUIRE(livecast_test::eventually([&] { return broker.metrics().deliveries == (n + 1) * burst; }));
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
  // Writes are slow enough here that the first sessions due would still be
  // flushing, and close together once flushed (the flush working, not the
  // waves failing): let the burst reach the clients first.
  REQUIRE(livecast_test::eventually([&] {
    return count_if_clients(clients, [](const RawClient& c) { return c.received.load() == burst; }) == n;
  }, 10s));
#endif

  DrainSettings drain;
  drain.duration = 2s;
  drain.reconnect_delay_min = 100ms;
  drain.reconnect_delay_max = 3000ms;
  drain.deadline_grace = 1s;
  drain.retry_after = 7s;
  std::promise<void> done;
  std::atomic<int> done_calls{0};
  const Clock::time_point started = Clock::now();
  broker.drain(drain, [&] {
    if (done_calls.fetch_add(1) == 0) done.set_value();
  });
  // A second call while draining adds its callback, and nothing else.
  std::atomic<bool> second_done{false};
  broker.drain(DrainSettings{}, [&] { second_done = true; });

  const Readiness readiness = broker.readiness();
  CHECK_FALSE(readiness.ready);
  CHECK(readiness.reason == "draining");
  CHECK(broker.metrics().draining == 1);

  // New handshakes: 503 and Retry-After on the WebSocket port and on the
  // HTTP transport (SSE); the host's handler still answers there.
  {
    HttpClient refused(websocket.port());
    refused.send("GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
    auto r = refused.response();
    REQUIRE(r);
    CHECK(r->status == 503);
    CHECK(r->header("retry-after") == "7");
  }
  {
    HttpClient refused(http.port());
    refused.get("/sse?topics=feed");
    auto r = refused.response();
    REQUIRE(r);
    CHECK(r->status == 503);
    CHECK(r->header("retry-after") == "7");
  }
  {
    HttpClient plain(http.port());
    plain.get("/anything-else");
    auto r = plain.response();
    REQUIRE(r);
    CHECK(r->status == 404);  // the (default) handler, not the drain's 503
  }

  // The SSE stream: its last events are the burst, then `event: close`.
  std::optional<livecast_test::Event> close_event;
  std::size_t sse_publications = 0;
  while (auto e = sse.next_message(4s)) {
    if (e->event == "close") {
      close_event = e;
      break;
    }
    if (e->data.find("\"offset\"") != std::string::npos && e->data.find("\"ok\"") == std::string::npos)
      ++sse_publications;
  }
  REQUIRE(close_event);
  CHECK(sse_publications == burst);
  auto close_data = livecast_test::parse_json(close_event->data);
  REQUIRE(close_data);
  CHECK((*close_data)["code"].GetInt() == 4012);
  const auto sse_delay = reconnect_delay((*close_data)["reason"].GetString());
  REQUIRE(sse_delay);
  CHECK(*sse_delay >= 100);
  CHECK(*sse_delay <= 3000);

  // Every session closed before the deadline: done runs then at the latest.
  const auto deadline = drain.duration + drain.deadline_grace;
  REQUIRE(done.get_future().wait_for(deadline + 2s) == std::future_status::ready);
  const auto done_after = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started);
  MESSAGE("done after " << done_after.count() << " ms");
  CHECK(livecast_test::eventually([&] { return second_done.load(); }));  // runs right after the first
  REQUIRE(livecast_test::eventually(
      [&] { return count_if_clients(clients, [](const RawClient& c) { return c.closed.load(); }) == n; }, 5s));
  io.stop();
  io_thread.join();  // the clients' fields are this thread's from here on

  std::map<long, std::size_t> bins;  // 100 ms bins since the drain began
  std::map<long, std::size_t> comebacks;  // the same for when each client will reconnect: close + delay
  std::size_t bad_code = 0, bad_delay = 0, late = 0, incomplete = 0;
  long min_delay = 1 << 30, max_delay = -1;
  for (const auto& c : clients) {
    if (c->close_code != 4012) ++bad_code;
    const auto delay = reconnect_delay(c->close_reason);
    if (!delay || *delay < 100 || *delay > 3000) ++bad_delay;
    const auto at = std::chrono::duration_cast<std::chrono::milliseconds>(c->closed_at - started);
    if (delay) {
      min_delay = std::min(min_delay, *delay);
      max_delay = std::max(max_delay, *delay);
      ++comebacks[(at.count() + *delay) / 100];
    }
    if (at > deadline) ++late;
    ++bins[at.count() / 100];
    if (c->publications != burst || c->last_offset != burst || c->publication_after_close) ++incomplete;
  }
  CHECK(bad_code == 0);
  CHECK(bad_delay == 0);
  CHECK(late == 0);
  CHECK(incomplete == 0);
  std::size_t fullest = 0;
  for (const auto& [bin, count] : bins) fullest = std::max(fullest, count);
  MESSAGE("closes in the fullest 100 ms bin: " << fullest << " of " << n << "; bins used: " << bins.size()
                                               << "; delays drawn in [" << min_delay << ", " << max_delay << "] ms");
  std::string histogram;
  for (const auto& [bin, count] : bins) histogram += std::to_string(bin) + ":" + std::to_string(count) + " ";
  INFO("closes per 100 ms bin: " << histogram);
  CHECK(fullest * 10 <= n);
  // The reconnect curve this asks of the clients (issue 12's target: a peak
  // below 3x the average over the span). Too noisy to judge with few clients.
  if (!comebacks.empty()) {
    std::size_t peak = 0;
    for (const auto& [bin, count] : comebacks) peak = std::max(peak, count);
    const double span_bins = double(comebacks.rbegin()->first - comebacks.begin()->first + 1);
    const double average = double(n) / span_bins;
    MESSAGE("reconnects per 100 ms: peak " << peak << ", average " << average << " over " << span_bins / 10
                                           << " s (" << peak / average << "x)");
    if (n >= 500) CHECK(double(peak) < 3 * average);
  }
  // The closes use the window: its first and last tenths both see some.
  CHECK(bins.begin()->first <= 2);
  CHECK(bins.rbegin()->first >= 17);

  const BrokerMetrics m = broker.metrics();
  CHECK(m.drain_closes == n + 1);
  CHECK(m.drain_forced_closes == 0);
  CHECK(m.sessions_active == 0);
  CHECK(done_calls.load() == 1);

  // Still draining after it is done: not ready, refusing, until stopped.
  CHECK(broker.readiness().reason == "draining");
  http.stop();
  websocket.stop();
  broker.stop();
}
