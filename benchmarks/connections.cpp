// livecast-bench-connections: opens many WebSocket connections to a livecast
// server, subscribes each to a topic, holds them, and reports how many were
// held and the server's resident memory per connection (from /proc).
//
//   livecast-bench-connections --port 8080 --connections 10000 --topic t
//       [--token T] [--server-pid PID] [--hold-seconds 5]
//
// A minimal client on Asio alone: a WebSocket handshake, masked text frames
// out, unmasked frames in. Source addresses rotate over 127.0.0.1-127.0.0.250
// so ephemeral ports never run out.
#include <asio.hpp>


#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "client_frame.hpp"
#include "client_handshake.hpp"
#include "loopback_source.hpp"
#include "open_files.hpp"
#include "server_frame.hpp"

namespace {

struct Options {
  std::string host = "127.0.0.1";
  unsigned short port = 8080;
  std::size_t connections = 1000;
  std::string topic = "t";
  std::string token;
  std::string path = "/ws";
  long server_pid = 0;
  double hold_seconds = 3;
};

long rss_kib(long pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
  return -1;
}

// Any mask will do; the server unmasks whatever it gets.
constexpr std::uint32_t mask_key = 0x78563412;

struct Stats {
  std::size_t connected = 0, subscribed = 0, failed = 0, closed = 0;
  std::uint64_t messages = 0;
  // End-to-end latency of publications carrying "ts" (microseconds since the
  // Unix epoch, the intended publication time), in microseconds.
  std::vector<std::int64_t> latencies;
  bool measuring = false;
};

std::int64_t now_micros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

class Client : public std::enable_shared_from_this<Client> {
 public:
  Client(asio::io_context& io, const Options& o, Stats& s, std::size_t index)
      : socket_(io), options_(o), stats_(s), index_(index) {}

  void start(const asio::ip::tcp::endpoint& server) {
    if (livecast_bench::open_on_loopback_source(socket_, index_)) return fail();
    socket_.async_connect(server, [self = shared_from_this()](asio::error_code ec) {
      if (ec) return self->fail();
      self->handshake();
    });
  }

 private:
  void handshake() {
    request_ = livecast_bench::upgrade_request(
                   options_.path + (options_.token.empty() ? "" : "?token=" + options_.token), options_.host) +
               livecast_bench::client_frame(livecast_bench::text_opcode,
                                            R"({"op":"subscribe","id":1,"topic":")" + options_.topic + "\"}", mask_key);
    asio::async_write(socket_, asio::buffer(request_), [self = shared_from_this()](asio::error_code ec, std::size_t) {
      if (ec) return self->fail();
      self->read_response();
    });
  }

  void read_response() {
    asio::async_read_until(socket_, asio::dynamic_buffer(buffer_), "\r\n\r\n",
                           [self = shared_from_this()](asio::error_code ec, std::size_t n) {
                             if (ec || !livecast_bench::upgrade_accepted(self->buffer_)) return self->fail();
                             ++self->stats_.connected;
                             self->buffer_.erase(0, n);
                             self->request_.clear();
                             self->request_.shrink_to_fit();
                             self->parse_frames();
                           });
  }

  // Consumes whole frames from buffer_, then reads more.
  void parse_frames() {
    std::size_t consumed = 0;
    while (auto frame = livecast_bench::next_server_frame(std::string_view(buffer_).substr(consumed))) {
      consumed += frame->size;
      if (frame->close()) {
        ++stats_.closed;
        return;
      }
      if (frame->ping()) {  // answer with a masked pong
        auto out = std::make_shared<std::string>(
            livecast_bench::client_frame(livecast_bench::pong_opcode, frame->payload, mask_key));
        asio::async_write(socket_, asio::buffer(*out), [out](asio::error_code, std::size_t) {});
      } else if (frame->text()) {
        // Our subscribe reply; anything else (server-side join notices,
        // publications) counts as a message.
        if (!subscribed_ && frame->payload.substr(0, 12) == "{\"id\":1,\"ok\"") {
          subscribed_ = true;
          ++stats_.subscribed;
        } else {
          ++stats_.messages;
          if (stats_.measuring && stats_.latencies.size() < 20'000'000) {
            auto at = frame->payload.find("\"ts\":");
            if (at != std::string_view::npos)
              stats_.latencies.push_back(now_micros() - std::atoll(frame->payload.data() + at + 5));
          }
        }
      }
    }
    buffer_.erase(0, consumed);
    if (buffer_.capacity() > 4096) buffer_.shrink_to_fit();
    read_some();
  }

  void read_some() {
    auto self = shared_from_this();
    std::size_t old = buffer_.size();
    buffer_.resize(old + 2048);
    socket_.async_read_some(asio::buffer(&buffer_[old], 2048), [self, old](asio::error_code ec, std::size_t n) {
      self->buffer_.resize(old + n);
      if (ec) {
        ++self->stats_.closed;
        return;
      }
      self->parse_frames();
    });
  }

  void fail() { ++stats_.failed; }

  asio::ip::tcp::socket socket_;
  const Options& options_;
  Stats& stats_;
  std::size_t index_;
  std::string request_, buffer_;
  bool subscribed_ = false;
};

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--host") o.host = v;
    else if (k == "--port") o.port = static_cast<unsigned short>(std::stoi(v));
    else if (k == "--connections") o.connections = std::stoul(v);
    else if (k == "--topic") o.topic = v;
    else if (k == "--token") o.token = v;
    else if (k == "--path") o.path = v;
    else if (k == "--server-pid") o.server_pid = std::stol(v);
    else if (k == "--hold-seconds") o.hold_seconds = std::stod(v);
    else {
      std::cerr << "unknown flag " << k << "\n";
      return 2;
    }
  }
  livecast_bench::raise_open_file_limit();

  asio::io_context io(1);
  Stats stats;
  asio::ip::tcp::endpoint server(asio::ip::make_address(o.host), o.port);
  long rss_before = o.server_pid ? rss_kib(o.server_pid) : -1;
  auto started = std::chrono::steady_clock::now();
  std::vector<std::shared_ptr<Client>> clients;
  clients.reserve(o.connections);
  // Open in batches so the server's accept queue is not overrun.
  const std::size_t batch = 500;
  for (std::size_t i = 0; i < o.connections; i += batch) {
    for (std::size_t j = i; j < std::min(o.connections, i + batch); ++j) {
      clients.push_back(std::make_shared<Client>(io, o, stats, j));
      clients.back()->start(server);
    }
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (stats.subscribed + stats.failed + stats.closed < std::min(o.connections, i + batch) &&
           std::chrono::steady_clock::now() < deadline)
      io.run_for(std::chrono::milliseconds(10));
  }
  double setup = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  stats.measuring = true;
  const std::uint64_t messages_before = stats.messages;
  io.run_for(std::chrono::milliseconds(static_cast<long>(o.hold_seconds * 1000)));
  long rss_after = o.server_pid ? rss_kib(o.server_pid) : -1;
  std::printf("{\"connections\":%zu,\"connected\":%zu,\"subscribed\":%zu,\"failed\":%zu,\"closed\":%zu,"
              "\"messages\":%llu,\"setup_s\":%.2f,\"server_rss_before_kib\":%ld,\"server_rss_after_kib\":%ld",
              o.connections, stats.connected, stats.subscribed, stats.failed, stats.closed,
              static_cast<unsigned long long>(stats.messages), setup, rss_before, rss_after);
  std::printf(",\"messages_per_s\":%.0f", static_cast<double>(stats.messages - messages_before) / o.hold_seconds);
  if (!stats.latencies.empty()) {
    std::sort(stats.latencies.begin(), stats.latencies.end());
    auto q = [&](double p) {
      return stats.latencies[std::min(stats.latencies.size() - 1, static_cast<std::size_t>(p * stats.latencies.size()))];
    };
    std::printf(",\"latency_us\":{\"samples\":%zu,\"p50\":%lld,\"p99\":%lld,\"p999\":%lld,\"max\":%lld}",
                stats.latencies.size(), static_cast<long long>(q(0.5)), static_cast<long long>(q(0.99)),
                static_cast<long long>(q(0.999)), static_cast<long long>(stats.latencies.back()));
  }
  if (o.server_pid && stats.subscribed > 0)
    std::printf(",\"server_kib_per_connection\":%.2f",
                static_cast<double>(rss_after - rss_before) / static_cast<double>(stats.subscribed));
  std::printf("}\n");
  return stats.subscribed == o.connections ? 0 : 1;
}
