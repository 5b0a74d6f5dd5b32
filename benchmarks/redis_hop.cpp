// livecast-bench-redis-hop: what going through Redis costs, against the
// in-process backend in the same run.
//
//   livecast-bench-redis-hop --redis redis://127.0.0.1:6379 [--rate 2000] [--seconds 5] [--payload 100]
//
// Latency: instance A publishes at --rate on a fixed schedule; instance B
// (another Broker with its own RedisBackend, as another process would have)
// delivers to one subscribed session, which measures from the time each
// publication was due (so a stalled publisher is not hidden: no coordinated
// omission). The peer is one Broker with the in-process backend, publishing
// and delivering the same schedule. Throughput: publications per second that
// one instance gets accepted, with up to --window publications in flight.
// Prints one JSON object on stdout.
#include "command_line.hpp"

#include <livecast/livecast.hpp>
#include <livecast/session_host.hpp>

#include <asio/post.hpp>
#include <livecast/redis_backend.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::string redis = "redis://127.0.0.1:6379";
  double rate = 2000;
  double seconds = 5;
  std::size_t payload = 100;
  std::size_t window = 512;
};

[[noreturn]] void usage(int code) {
  std::cerr << "usage: livecast-bench-redis-hop [--redis URL] [--rate R] [--seconds S] [--payload B] [--window N]\n";
  std::exit(code);
}

Options parse(int argc, char** argv) {
  Options o;
  livecast_bench::CommandLine flags;
  flags.options["--redis"] = [&](const std::string& v) { o.redis = v; };
  flags.options["--rate"] = [&](const std::string& v) { o.rate = std::stod(v); };
  flags.options["--seconds"] = [&](const std::string& v) { o.seconds = std::stod(v); };
  flags.options["--payload"] = [&](const std::string& v) { o.payload = std::stoul(v); };
  flags.options["--window"] = [&](const std::string& v) { o.window = std::stoul(v); };
  flags.parse(argc, argv, usage);
  if (o.rate <= 0 || o.seconds <= 0 || o.window == 0) usage(2);
  return o;
}

std::int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(Clock::now().time_since_epoch()).count();
}

// A session's connection that reads everything at once and records, per
// publication, now minus its "due" field (steady-clock microseconds).
class LatencyRecorder final : public livecast::SessionConnection {
 public:
  LatencyRecorder(livecast::Broker& broker, std::size_t expected) : host_(broker.session_host()) {
    latencies_.reserve(expected);
    host_.execute_on_shard(0, [&] { session_ = host_.open_session(0, {}, 0, *this); });
  }
  ~LatencyRecorder() override {
    host_.execute_on_shard(0, [&] {
      host_.close_session(*session_);
      session_.reset();
    });
  }

  void subscribe(const std::string& topic) {
    livecast::ClientRequest request;
    request.op = livecast::ClientRequest::Op::subscribe;
    request.topic = topic;
    host_.execute_on_shard(0, [&] { host_.execute(*session_, std::move(request)); });
  }

  void frames_ready() override {
    asio::post(host_.shard_context(0), [this] { drain(); });
  }
  void close(livecast::CloseCode, std::string_view) override {}

  bool wait_for(std::size_t n, std::chrono::seconds limit) {
    std::unique_lock<std::mutex> lock(mutex_);
    return changed_.wait_for(lock, limit, [&] { return latencies_.size() >= n; });
  }
  bool wait_subscribed(std::chrono::seconds limit) {
    std::unique_lock<std::mutex> lock(mutex_);
    return changed_.wait_for(lock, limit, [&] { return subscribed_; });
  }
  std::vector<std::int64_t> latencies() {
    std::lock_guard<std::mutex> lock(mutex_);
    return latencies_;
  }

 private:
  void drain() {
    if (!session_) return;
    std::vector<livecast::FramePtr> frames;
    host_.take_frames(*session_, frames);
    const std::int64_t now = now_us();
    std::size_t bytes = 0;
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& f : frames) {
      bytes += f->bytes.size();
      auto at = f->bytes.find("\"due\":");
      if (at == std::string::npos) {  // the subscribe reply
        subscribed_ = true;
        continue;
      }
      latencies_.push_back(now - std::stoll(f->bytes.substr(at + 6)));
    }
    changed_.notify_all();
    host_.frames_written(*session_, bytes);
  }

  livecast::SessionHost& host_;
  std::shared_ptr<livecast::Session> session_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<std::int64_t> latencies_;
  bool subscribed_ = false;
};

struct LatencyResult {
  std::size_t sent = 0, received = 0;
  std::int64_t p50 = 0, p99 = 0, p999 = 0, max = 0;
};

std::int64_t percentile(const std::vector<std::int64_t>& sorted, double q) {
  if (sorted.empty()) return 0;
  auto i = static_cast<std::size_t>(q * static_cast<double>(sorted.size() - 1));
  return sorted[i];
}

// Publishes on `from` on a fixed grid; `recorder` subscribed through `to`.
LatencyResult measure_latency(livecast::Broker& from, LatencyRecorder& recorder, const Options& o) {
  const auto total = static_cast<std::size_t>(o.rate * o.seconds);
  const std::string pad(o.payload > 40 ? o.payload - 40 : 0, 'x');
  const auto period = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(1.0 / o.rate));
  const auto start = Clock::now();
  for (std::size_t n = 0; n < total; ++n) {
    const auto due = start + n * period;
    std::this_thread::sleep_until(due);
    const auto due_us = std::chrono::duration_cast<std::chrono::microseconds>(due.time_since_epoch()).count();
    from.publish("hop", R"({"pad":")" + pad + R"(","due":)" + std::to_string(due_us) + "}");
  }
  LatencyResult r;
  r.sent = total;
  recorder.wait_for(total, std::chrono::seconds(10));
  auto l = recorder.latencies();
  r.received = l.size();
  std::sort(l.begin(), l.end());
  r.p50 = percentile(l, 0.50);
  r.p99 = percentile(l, 0.99);
  r.p999 = percentile(l, 0.999);
  r.max = l.empty() ? 0 : l.back();
  return r;
}

// Publications per second accepted, with at most `window` in flight.
double measure_throughput(livecast::Broker& broker, const Options& o) {
  const std::string payload = R"({"pad":")" + std::string(o.payload > 10 ? o.payload - 10 : 0, 'x') + R"("})";
  std::mutex mutex;
  std::condition_variable changed;
  std::size_t in_flight = 0, accepted = 0;
  const auto start = Clock::now();
  const auto end = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.seconds));
  while (Clock::now() < end) {
    {
      std::unique_lock<std::mutex> lock(mutex);
      changed.wait(lock, [&] { return in_flight < o.window; });
      ++in_flight;
    }
    auto refused = broker.publish("bulk", payload, [&](std::error_code ec, std::uint64_t) {
      std::lock_guard<std::mutex> lock(mutex);
      --in_flight;
      if (!ec) ++accepted;
      changed.notify_all();
    });
    if (refused) {
      std::lock_guard<std::mutex> lock(mutex);
      --in_flight;
    }
  }
  std::unique_lock<std::mutex> lock(mutex);
  changed.wait_for(lock, std::chrono::seconds(10), [&] { return in_flight == 0; });
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  return static_cast<double>(accepted) / elapsed;
}

void print_latency(const char* name, const LatencyResult& r, bool comma) {
  std::printf("\"%s\":{\"sent\":%zu,\"received\":%zu,\"p50_us\":%lld,\"p99_us\":%lld,\"p999_us\":%lld,\"max_us\":%lld}%s",
              name, r.sent, r.received, static_cast<long long>(r.p50), static_cast<long long>(r.p99),
              static_cast<long long>(r.p999), static_cast<long long>(r.max), comma ? "," : "");
}

std::unique_ptr<livecast::Broker> redis_instance(const Options& o, const std::string& key_prefix) {
  livecast::RedisBackendSettings s;
  s.url = o.redis;
  s.key_prefix = key_prefix;
  auto backend = std::make_unique<livecast::RedisBackend>(s);
  auto* raw = backend.get();
  livecast::BrokerSettings b;
  b.threads = 1;
  auto broker = std::make_unique<livecast::Broker>(b, std::move(backend));
  broker->start();
  if (!raw->wait_connected(std::chrono::seconds(10))) {
    std::fprintf(stderr, "livecast-bench-redis-hop: no Redis at %s\n", o.redis.c_str());
    std::exit(1);
  }
  return broker;
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  const auto total = static_cast<std::size_t>(o.rate * o.seconds);

  LatencyResult in_process, through_redis;
  double in_process_rate = 0, redis_rate = 0;
  {
    livecast::BrokerSettings b;
    b.threads = 1;
    livecast::Broker broker(b);
    broker.start();
    LatencyRecorder recorder(broker, total);
    recorder.subscribe("hop");
    if (!recorder.wait_subscribed(std::chrono::seconds(10))) return 1;
    in_process = measure_latency(broker, recorder, o);
    in_process_rate = measure_throughput(broker, o);
    broker.stop();
  }
  {
    const std::string prefix = "livecast-bench:" + std::to_string(now_us()) + ":";  // a fresh history per run
    auto a = redis_instance(o, prefix);
    auto b = redis_instance(o, prefix);
    LatencyRecorder recorder(*b, total);
    recorder.subscribe("hop");
    // Live once its reply came: publications before it would only be a snapshot.
    if (!recorder.wait_subscribed(std::chrono::seconds(10))) return 1;
    through_redis = measure_latency(*a, recorder, o);
    redis_rate = measure_throughput(*a, o);
  }

  std::printf("{\"rate\":%.0f,\"seconds\":%.1f,\"payload\":%zu,", o.rate, o.seconds, o.payload);
  print_latency("in_process", in_process, true);
  print_latency("redis", through_redis, true);
  std::printf("\"added_p50_us\":%lld,\"added_p99_us\":%lld,", static_cast<long long>(through_redis.p50 - in_process.p50),
              static_cast<long long>(through_redis.p99 - in_process.p99));
  std::printf("\"in_process_publications_per_s\":%.0f,\"redis_publications_per_s\":%.0f}\n", in_process_rate,
              redis_rate);
  return through_redis.received == through_redis.sent && in_process.received == in_process.sent ? 0 : 1;
}
