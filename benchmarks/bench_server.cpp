// livecast-bench-server: livecast embedded as a user would, publishing a
// steady load for the load generators in benchmarks/.
//
//   livecast-bench-server --port 9000 --threads 2 --topics 1 --rate 20 --payload 100
//
// Every --rate publications per second on each of topics t0..t{K-1} carry
// "ts" (integer microseconds since the Unix epoch, the intended publication
// time) so clients measure end-to-end latency without coordinated omission:
// publications are scheduled on a fixed grid, and a late tick still stamps
// the time it was due, not the time it ran. --rate 0 only delivers.
// Prints one JSON line of broker metrics per second on stderr with --stats.
#include <livecast/livecast.hpp>

#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <string>
#include <thread>

namespace {

struct Options {
  std::uint16_t port = 9000;
  std::size_t threads = 1;
  std::size_t topics = 1;
  double rate = 20;
  std::size_t payload = 100;
  std::string address = "127.0.0.1";
  std::string backend = "inprocess";
  bool stats = false;
};

[[noreturn]] void usage(int code) {
  std::cerr << "usage: livecast-bench-server [--port N] [--address A] [--threads N] [--topics K] [--rate R]\n"
               "                             [--payload BYTES] [--backend inprocess] [--stats]\n";
  std::exit(code);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string k = argv[i];
    if (k == "--help") usage(0);
    if (k == "--stats") {
      o.stats = true;
      continue;
    }
    if (i + 1 >= argc) usage(2);
    std::string v = argv[++i];
    try {
      if (k == "--port") o.port = static_cast<std::uint16_t>(std::stoul(v));
      else if (k == "--address") o.address = v;
      else if (k == "--threads") o.threads = std::stoul(v);
      else if (k == "--topics") o.topics = std::stoul(v);
      else if (k == "--rate") o.rate = std::stod(v);
      else if (k == "--payload") o.payload = std::stoul(v);
      else if (k == "--backend") o.backend = v;
      else usage(2);
    } catch (const std::exception&) {
      usage(2);
    }
  }
  if (o.backend != "inprocess") {
    std::cerr << "livecast-bench-server: only --backend inprocess exists in this build\n";
    std::exit(2);
  }
  return o;
}

std::int64_t micros_since_epoch(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  livecast::BrokerSettings settings;
  settings.threads = o.threads == 0 ? 1 : o.threads;
  livecast::Broker broker(settings);
  livecast::WebSocketSettings ws;
  ws.address = o.address;
  ws.port = o.port;
  livecast::WebSocketTransport transport(broker, ws);
  broker.start();
  transport.start();
  std::fprintf(stderr, "livecast-bench-server on %s:%u, %zu threads, %zu topics x %.1f/s, %zu B payloads\n",
               o.address.c_str(), static_cast<unsigned>(transport.port()), settings.threads, o.topics, o.rate,
               o.payload);

  // The publisher is a thread of the host, like a service's own producer.
  asio::io_context host;
  asio::steady_timer timer(host), stats_timer(host);
  const std::string pad(o.payload > 40 ? o.payload - 40 : 0, 'x');
  const auto period = o.rate > 0 ? std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                       std::chrono::duration<double>(1.0 / o.rate))
                                 : std::chrono::steady_clock::duration::zero();
  // The grid: tick n is due at start + n * period, in both clocks.
  const auto start_steady = std::chrono::steady_clock::now();
  const auto start_system = std::chrono::system_clock::now();
  std::uint64_t tick = 0;
  std::function<void()> publish_tick = [&] {
    const auto due = start_steady + tick * period;
    const auto due_system = start_system + std::chrono::duration_cast<std::chrono::system_clock::duration>(due - start_steady);
    const std::string ts = std::to_string(micros_since_epoch(due_system));
    for (std::size_t t = 0; t < o.topics; ++t) {
      std::string payload = R"({"ts":)" + ts + R"(,"seq":)" + std::to_string(tick) + R"(,"pad":")" + pad + R"("})";
      broker.publish("t" + std::to_string(t), payload);
    }
    ++tick;
    timer.expires_at(start_steady + tick * period);
    timer.async_wait([&](std::error_code ec) {
      if (!ec) publish_tick();
    });
  };
  if (o.rate > 0) publish_tick();

  std::function<void()> print_stats = [&] {
    auto m = broker.metrics();
    std::fprintf(stderr,
                 "{\"publications\":%llu,\"deliveries\":%llu,\"dropped\":%llu,\"sessions_active\":%llu,"
                 "\"slow_consumer_closes\":%llu}\n",
                 static_cast<unsigned long long>(m.publications), static_cast<unsigned long long>(m.deliveries),
                 static_cast<unsigned long long>(m.dropped), static_cast<unsigned long long>(m.sessions_active),
                 static_cast<unsigned long long>(m.slow_consumer_closes));
    stats_timer.expires_after(std::chrono::seconds(1));
    stats_timer.async_wait([&](std::error_code ec) {
      if (!ec) print_stats();
    });
  };
  if (o.stats) print_stats();

  asio::signal_set signals(host, SIGINT, SIGTERM);
  signals.async_wait([&](std::error_code, int) {
    timer.cancel();
    stats_timer.cancel();
  });
  host.run();
  transport.stop();
  broker.stop();
}
