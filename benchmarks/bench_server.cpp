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
// Prints one JSON line of broker metrics per second on stderr with --stats,
// and one more when SIGTERM or SIGINT stops it.
// SIGUSR2 doubles the publication rate (see grid_publisher.hpp); with
// --paused the first SIGUSR2 starts the publications instead, so that a load
// generator can connect everyone before the load begins (livecast-loadgen
// --start-signal). With
// --port 0 the kernel picks the port; --print-port prints it on stdout.
// --send-queue-bytes, --slow-consumer-policy and --socket-send-buffer set
// SessionSettings::send_queue_bytes, ::slow_consumer_policy and
// WebSocketSettings::socket_send_buffer_bytes (scenario F: stalled readers);
// without them, livecast's defaults.
// --tls-cert F --tls-key F: wss:// (WebSocketSettings::tls) with that pair.
// --socketio: Socket.IO clients as well, at /socket.io/ (the socket.io
// protocol; publications arrive as the event "pub", as from the Socket.IO peer).
#include <livecast/livecast.hpp>
#ifdef LIVECAST_BENCH_WITH_REDIS
#include <livecast/redis_backend.hpp>
#endif

#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "command_line.hpp"
#include "grid_publisher.hpp"

namespace {

struct Options {
  std::uint16_t port = 9000;
  std::size_t threads = 1;
  std::size_t topics = 1;
  double rate = 20;
  std::size_t payload = 100;
  std::string address = "127.0.0.1";
  std::string backend = "inprocess";
  std::string redis = "redis://127.0.0.1:6379";
  bool stats = false;
  bool print_port = false;
  bool paused = false;
  std::optional<std::size_t> send_queue_bytes;
  std::optional<livecast::SlowConsumerPolicy> slow_consumer_policy;
  std::size_t socket_send_buffer = 0;  // 0: the kernel's auto-tuning, livecast's default
  std::string tls_cert, tls_key;
  bool socketio = false;
};

std::optional<livecast::SlowConsumerPolicy> policy_named(const std::string& name) {
  for (auto p : {livecast::SlowConsumerPolicy::drop_oldest, livecast::SlowConsumerPolicy::conflate,
                 livecast::SlowConsumerPolicy::disconnect})
    if (name == livecast::to_string(p)) return p;
  return std::nullopt;
}

[[noreturn]] void usage(int code) {
  std::cerr << "usage: livecast-bench-server [--port N] [--address A] [--threads N] [--topics K] [--rate R]\n"
               "                             [--payload BYTES] [--backend inprocess|redis] [--redis URL] [--stats]\n"
               "                             [--print-port] [--paused] [--send-queue-bytes N]\n"
               "                             [--slow-consumer-policy drop_oldest|conflate|disconnect]\n"
               "                             [--socket-send-buffer BYTES] [--tls-cert F --tls-key F]\n"
               "                             [--socketio]\n";
  std::exit(code);
}

Options parse(int argc, char** argv) {
  Options o;
  livecast_bench::CommandLine flags;
  flags.switches["--stats"] = [&] { o.stats = true; };
  flags.switches["--print-port"] = [&] { o.print_port = true; };
  flags.switches["--paused"] = [&] { o.paused = true; };
  flags.switches["--socketio"] = [&] { o.socketio = true; };
  flags.options["--port"] = [&](const std::string& v) { o.port = static_cast<std::uint16_t>(std::stoul(v)); };
  flags.options["--address"] = [&](const std::string& v) { o.address = v; };
  flags.options["--threads"] = [&](const std::string& v) { o.threads = std::stoul(v); };
  flags.options["--topics"] = [&](const std::string& v) { o.topics = std::stoul(v); };
  flags.options["--rate"] = [&](const std::string& v) { o.rate = std::stod(v); };
  flags.options["--payload"] = [&](const std::string& v) { o.payload = std::stoul(v); };
  flags.options["--backend"] = [&](const std::string& v) { o.backend = v; };
  flags.options["--redis"] = [&](const std::string& v) { o.redis = v; };
  flags.options["--send-queue-bytes"] = [&](const std::string& v) { o.send_queue_bytes = std::stoul(v); };
  flags.options["--slow-consumer-policy"] = [&](const std::string& v) {
    o.slow_consumer_policy = policy_named(v);
    if (!o.slow_consumer_policy) usage(2);
  };
  flags.options["--socket-send-buffer"] = [&](const std::string& v) { o.socket_send_buffer = std::stoul(v); };
  flags.options["--tls-cert"] = [&](const std::string& v) { o.tls_cert = v; };
  flags.options["--tls-key"] = [&](const std::string& v) { o.tls_key = v; };
  flags.parse(argc, argv, usage);
#ifdef LIVECAST_BENCH_WITH_REDIS
  if (o.backend != "inprocess" && o.backend != "redis") usage(2);
#else
  if (o.backend != "inprocess") {
    std::cerr << "livecast-bench-server: only --backend inprocess exists in this build (no hiredis)\n";
    std::exit(2);
  }
#endif
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  livecast::BrokerSettings settings;
  settings.threads = o.threads == 0 ? 1 : o.threads;
  if (o.send_queue_bytes) settings.session.send_queue_bytes = *o.send_queue_bytes;
  if (o.slow_consumer_policy) settings.session.slow_consumer_policy = *o.slow_consumer_policy;
  if (o.socketio) {
    // Socket.IO clients too (/socket.io/), every publication arriving as the
    // event "pub", as the Socket.IO peer emits it (peers/socketio/server.js).
    livecast::SocketIoSettings sio;
    sio.event_name = [](std::string_view) { return std::string("pub"); };
    settings.protocols = {livecast::make_livecast_v1_protocol(), livecast::make_socketio_protocol(sio)};
  }
  std::unique_ptr<livecast::Backend> backend;
#ifdef LIVECAST_BENCH_WITH_REDIS
  if (o.backend == "redis") {
    livecast::RedisBackendSettings redis;
    redis.url = o.redis;
    auto r = std::make_unique<livecast::RedisBackend>(redis);
    backend = std::move(r);
  }
#endif
  livecast::Broker broker(settings, std::move(backend));
  livecast::WebSocketSettings ws;
  ws.address = o.address;
  ws.port = o.port;
  ws.socket_send_buffer_bytes = o.socket_send_buffer;
  // The scenarios go past the default max_connections (10,000: A's 18,000
  // point, D's 50,000 over several processes); the descriptor limit bounds them.
  ws.max_connections = 1'000'000;
  if (!o.tls_cert.empty() || !o.tls_key.empty()) {
    livecast::TlsSettings tls;
    tls.cert_file = o.tls_cert;
    tls.key_file = o.tls_key;
    ws.tls = tls;
  }
  livecast::WebSocketTransport transport(broker, ws);
  broker.start();
  transport.start();
#ifdef LIVECAST_BENCH_WITH_REDIS
  if (auto* redis = dynamic_cast<livecast::RedisBackend*>(&broker.backend());
      redis && !redis->wait_connected(std::chrono::seconds(10))) {
    std::fprintf(stderr, "livecast-bench-server: Redis at %s did not answer\n", o.redis.c_str());
    return 1;
  }
#endif
  std::fprintf(stderr,
               "livecast-bench-server on %s:%u%s, %zu threads, %zu topics x %.1f/s, %zu B payloads, %s backend, "
               "send queue %zu B %s, socket send buffer %zu B\n",
               o.address.c_str(), static_cast<unsigned>(transport.port()), ws.tls ? " (TLS)" : "", settings.threads,
               o.topics, o.rate, o.payload, o.backend.c_str(), settings.session.send_queue_bytes,
               livecast::to_string(settings.session.slow_consumer_policy), ws.socket_send_buffer_bytes);

  if (o.print_port) {
    std::printf("%u\n", static_cast<unsigned>(transport.port()));
    std::fflush(stdout);
  }

  // The publisher is a thread of the host, like a service's own producer.
  asio::io_context host;
  asio::steady_timer stats_timer(host);
  std::vector<std::string> topics;
  for (std::size_t t = 0; t < o.topics; ++t) topics.push_back("t" + std::to_string(t));
  // One payload per tick, the same "ts" and "seq" on every topic.
  livecast_bench::GridPublisher publisher(host, o.rate, o.payload, o.paused, [&](const std::string& payload) {
    for (const auto& topic : topics) broker.publish(topic, payload);
  });

  auto stats_line = [&] {
    auto m = broker.metrics();
    auto w = transport.metrics();
    std::fprintf(stderr,
                 "{\"publications\":%llu,\"deliveries\":%llu,\"dropped\":%llu,\"sessions_active\":%llu,"
                 "\"slow_consumer_closes\":%llu,\"connections_active\":%llu,\"connections_refused\":%llu}\n",
                 static_cast<unsigned long long>(m.publications), static_cast<unsigned long long>(m.deliveries),
                 static_cast<unsigned long long>(m.dropped), static_cast<unsigned long long>(m.sessions_active),
                 static_cast<unsigned long long>(m.slow_consumer_closes),
                 static_cast<unsigned long long>(w.connections_active), static_cast<unsigned long long>(w.refused()));
  };
  std::function<void()> print_stats = [&] {
    stats_line();
    stats_timer.expires_after(std::chrono::seconds(1));
    stats_timer.async_wait([&](std::error_code ec) {
      if (!ec) print_stats();
    });
  };
  if (o.stats) print_stats();

  asio::signal_set signals(host, SIGINT, SIGTERM);
  signals.async_wait([&](std::error_code, int) {
    if (o.stats) stats_line();  // the totals at the end, for whoever reads the last line
    publisher.stop();
    stats_timer.cancel();
  });
  host.run();
  transport.stop();
  broker.stop();
}
