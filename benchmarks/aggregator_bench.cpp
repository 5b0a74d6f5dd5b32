// livecast-bench-aggregator: what Aggregator::record() costs, the
// Aggregator's CPU at a steady 1,000,000 events/s, and QuantileSketch's
// error against exact quantiles (issue 14, "Measured").
//
//   livecast-bench-aggregator [--quick] [--events N] [--repetitions R] [--paced-seconds S]
//                             [--paced-rate R] [--paced-metrics M] [--quantile-values N] [--json PATH]
//
// 1. record() cost: N events recorded as fast as one thread can, then by two
//    threads at once (N/2 each) into one metric, then each into its own. The
//    same loops run two peers in the same process, interleaved repetition by
//    repetition so that a busy neighbour slows all three alike: a naive
//    collector (a std::mutex over an unordered_map<string, vector<double>>,
//    push_back: a hand-made dashboard backend) and a floor (a relaxed atomic
//    count plus an atomic double sum: the cheapest counter several threads
//    may share). Median of R repetitions; the ratios are the result, absolute
//    figures drift on a shared machine.
// 2. CPU at 1M events/s: one thread records in 1 ms batches against a steady
//    clock over M metrics for S seconds, default windows (1s, 5s, 1m) and the
//    Aggregator's own thread. The process's CPU per second of wall time,
//    split into the recording thread (CLOCK_THREAD_CPUTIME_ID) and the rest
//    (the Aggregator's thread summing up and publishing, the broker).
// 3. Quantile error: 1M values of uniform, log-normal and bimodal data
//    (fixed seeds) into a QuantileSketch at 0.5%, 1% and 2% accuracy;
//    p50/p90/p95/p99/p99.9 against the exact value of rank floor(q*(n-1)).
//
// Prints tables on stdout; --json PATH also writes every figure as one JSON
// line (PATH "-": stdout). Exits 1 when the paced run lost events or a
// quantile missed its stated accuracy.
#include "command_line.hpp"

#include <livecast/aggregator.hpp>
#include <livecast/broker.hpp>
#include <livecast/log.hpp>
#include <livecast/quantile_sketch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <iostream>
#include <mutex>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace {

using Steady = std::chrono::steady_clock;

struct Options {
  std::size_t events = 20'000'000;
  std::size_t repetitions = 5;
  double paced_seconds = 10;
  double paced_rate = 1'000'000;
  std::size_t paced_metrics = 10;
  std::size_t quantile_values = 1'000'000;
  std::string json;
};

[[noreturn]] void usage(int code) {
  std::cerr << "usage: livecast-bench-aggregator [--quick] [--events N] [--repetitions R] [--paced-seconds S]\n"
               "                                 [--paced-rate R] [--paced-metrics M] [--quantile-values N]\n"
               "                                 [--json PATH]\n"
               "  --quick: 1M events, 3 repetitions, 1.5 s paced, 100k quantile values (a few seconds)\n";
  std::exit(code);
}

Options parse(int argc, char** argv) {
  Options o;
  livecast_bench::CommandLine flags;
  // Sizes given after --quick override it; --quick after them wins.
  flags.switches["--quick"] = [&] {
    o.events = 1'000'000;
    o.repetitions = 3;
    o.paced_seconds = 1.5;
    o.quantile_values = 100'000;
  };
  flags.options["--events"] = [&](const std::string& v) { o.events = std::stoul(v); };
  flags.options["--repetitions"] = [&](const std::string& v) { o.repetitions = std::stoul(v); };
  flags.options["--paced-seconds"] = [&](const std::string& v) { o.paced_seconds = std::stod(v); };
  flags.options["--paced-rate"] = [&](const std::string& v) { o.paced_rate = std::stod(v); };
  flags.options["--paced-metrics"] = [&](const std::string& v) { o.paced_metrics = std::stoul(v); };
  flags.options["--quantile-values"] = [&](const std::string& v) { o.quantile_values = std::stoul(v); };
  flags.options["--json"] = [&](const std::string& v) { o.json = v; };
  flags.parse(argc, argv, usage);
  if (o.events < 2 || o.repetitions == 0 || o.paced_seconds <= 0 || o.paced_rate < 1000 || o.paced_metrics == 0 ||
      o.quantile_values < 2)
    usage(2);
  return o;
}

// An in-process broker that logs only warnings and errors, so that its
// started/stopped lines do not break up the tables.
livecast::BrokerSettings quiet_broker() {
  livecast::BrokerSettings s;
  s.log = livecast::stderr_log(livecast::LogLevel::warning);
  return s;
}

double seconds_since(Steady::time_point start) { return std::chrono::duration<double>(Steady::now() - start).count(); }

double cpu_seconds(clockid_t clock) {
  timespec t{};
  clock_gettime(clock, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) * 1e-9;
}

// The 1-minute load average: how busy the shared machine was (-1: unknown).
double load_average() {
  double load[1] = {-1};
  return getloadavg(load, 1) == 1 ? load[0] : -1;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// Values the recording loops cycle through: latency-like (log-normal), so the
// sketch touches a realistic spread of buckets, not one. A power of two, so
// that picking one is a mask, the same few instructions in every loop.
constexpr std::size_t value_count = 4096;
std::vector<double> recorded_values() {
  std::mt19937_64 random(7);
  std::lognormal_distribution<double> latency_ms(3.0, 1.0);
  std::vector<double> v(value_count);
  for (double& x : v) x = latency_ms(random);
  return v;
}

// ---- 1. record() cost ----------------------------------------------------------

// The peer a team writes by hand: every event kept, under one lock, for a
// summariser to sort later. reset() keeps the vectors' capacity, so repetitions
// after the first measure the lock and the push_back, not reallocations: the
// peer's best case.
class NaiveCollector {
 public:
  void record(const std::string& metric, double value) {
    std::lock_guard<std::mutex> lock(mutex_);
    values_[metric].push_back(value);
  }
  void reset() {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& entry : values_) entry.second.clear();
  }

 private:
  std::mutex mutex_;
  std::unordered_map<std::string, std::vector<double>> values_;
};

// The floor: a count and a sum that threads may share. C++17 has no
// fetch_add on atomic<double>; the compare-exchange loop is what C++20's
// compiles to. A cache line each, so that "own metric" shares nothing.
struct alignas(64) FloorCounter {
  std::atomic<std::uint64_t> count{0};
  std::atomic<double> sum{0};
  void record(double value) {
    count.fetch_add(1, std::memory_order_relaxed);
    double seen = sum.load(std::memory_order_relaxed);
    while (!sum.compare_exchange_weak(seen, seen + value, std::memory_order_relaxed)) {
    }
  }
};

struct Timing {
  double ns_per_event = 0;      // per call, in each thread (the mean over threads)
  double cpu_ns_per_event = 0;  // the same in thread CPU time: without preemption, and without sleeping on a lock
  double events_per_s = 0;      // all threads together, over the wall time
};

// `threads` threads each call record(thread, value) `per_thread` times,
// started together; each times its own loop.
template <class Record>
Timing time_recording(std::size_t threads, std::size_t per_thread, const std::vector<double>& values,
                      Record record) {
  std::atomic<std::size_t> ready{0};
  std::atomic<bool> go{false};
  std::vector<double> elapsed(threads), cpu(threads);
  std::vector<std::thread> workers;
  for (std::size_t t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      ready.fetch_add(1);
      while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
      const double cpu_before = cpu_seconds(CLOCK_THREAD_CPUTIME_ID);
      const auto start = Steady::now();
      for (std::size_t i = 0; i < per_thread; ++i) record(t, values[i & (value_count - 1)]);
      elapsed[t] = seconds_since(start);
      cpu[t] = cpu_seconds(CLOCK_THREAD_CPUTIME_ID) - cpu_before;
    });
  }
  while (ready.load() < threads) std::this_thread::yield();
  const auto start = Steady::now();
  go.store(true, std::memory_order_release);
  for (auto& w : workers) w.join();
  const double wall = seconds_since(start);
  Timing timing;
  const double calls = static_cast<double>(per_thread) * static_cast<double>(threads);
  for (std::size_t t = 0; t < threads; ++t) {
    timing.ns_per_event += elapsed[t] * 1e9 / calls;
    timing.cpu_ns_per_event += cpu[t] * 1e9 / calls;
  }
  timing.events_per_s = static_cast<double>(per_thread * threads) / wall;
  return timing;
}

struct Variant {
  const char* name;
  std::size_t threads;
  bool own_metrics;
};

struct Measured {
  std::vector<double> ns, cpu_ns, events_per_s;  // one per repetition
};

struct VariantResult {
  Variant variant;
  Measured livecast, naive, floor;
};

VariantResult measure_record_cost(livecast::Broker& broker, const Variant& variant, const Options& o,
                                  const std::vector<double>& values) {
  // Fresh state per variant: an Aggregator as a host would make it (windows
  // 1s/5s/1m, its own thread summing up while the loops run).
  livecast::Aggregator kpis(broker);
  NaiveCollector naive;
  FloorCounter floors[2];
  const std::vector<std::string> names =
      variant.own_metrics ? std::vector<std::string>{"latency_ms.0", "latency_ms.1"}
                          : std::vector<std::string>{"latency_ms", "latency_ms"};
  const std::size_t per_thread = o.events / variant.threads;
  auto run_livecast = [&] {
    return time_recording(variant.threads, per_thread, values,
                          [&](std::size_t t, double v) { kpis.record(names[t], v); });
  };
  auto run_naive = [&] {
    naive.reset();
    return time_recording(variant.threads, per_thread, values,
                          [&](std::size_t t, double v) { naive.record(names[t], v); });
  };
  auto run_floor = [&] {
    return time_recording(variant.threads, per_thread, values,
                          [&](std::size_t t, double v) { floors[variant.own_metrics ? t : 0].record(v); });
  };
  // One untimed round: the metric admitted, the naive vectors grown, caches warm.
  run_livecast();
  run_naive();
  run_floor();
  VariantResult r{variant, {}, {}, {}};
  auto keep = [](Measured& m, const Timing& t) {
    m.ns.push_back(t.ns_per_event);
    m.cpu_ns.push_back(t.cpu_ns_per_event);
    m.events_per_s.push_back(t.events_per_s);
  };
  for (std::size_t rep = 0; rep < o.repetitions; ++rep) {
    keep(r.livecast, run_livecast());
    keep(r.naive, run_naive());
    keep(r.floor, run_floor());
  }
  return r;
}

// ---- 2. CPU at a steady rate ---------------------------------------------------

struct PacedResult {
  double wall_s = 0;
  double process_cpu_s = 0, recording_cpu_s = 0;
  std::uint64_t issued = 0, recorded = 0, summaries = 0;
  double offered_rate = 0;
};

PacedResult measure_paced(const Options& o, const std::vector<double>& values) {
  livecast::Broker broker(quiet_broker());
  broker.start();
  PacedResult r;
  {
    livecast::Aggregator kpis(broker);  // default windows, own_thread = true
    std::vector<std::string> names;
    for (std::size_t m = 0; m < o.paced_metrics; ++m) names.push_back("paced.metric" + std::to_string(m));
    const auto period = std::chrono::milliseconds(1);
    const auto batch = static_cast<std::uint64_t>(std::llround(o.paced_rate / 1000.0));
    const auto batches = static_cast<std::uint64_t>(std::llround(o.paced_seconds * 1000.0));
    r.offered_rate = static_cast<double>(batch) * 1000.0;

    const double process_before = cpu_seconds(CLOCK_PROCESS_CPUTIME_ID);
    const double thread_before = cpu_seconds(CLOCK_THREAD_CPUTIME_ID);
    const auto start = Steady::now();
    std::uint64_t e = 0;
    for (std::uint64_t k = 0; k < batches; ++k) {
      // A fixed grid: a late batch does not push the later ones back.
      std::this_thread::sleep_until(start + k * period);
      for (std::uint64_t i = 0; i < batch; ++i, ++e) kpis.record(names[e % names.size()], values[e & (value_count - 1)]);
    }
    r.wall_s = seconds_since(start);
    r.recording_cpu_s = cpu_seconds(CLOCK_THREAD_CPUTIME_ID) - thread_before;
    r.process_cpu_s = cpu_seconds(CLOCK_PROCESS_CPUTIME_ID) - process_before;
    r.issued = e;
    const livecast::AggregatorMetrics m = kpis.metrics();
    r.recorded = m.recorded;
    r.summaries = m.summaries;
  }
  broker.stop();
  return r;
}

// ---- 3. Quantile error ---------------------------------------------------------

constexpr double quantiles[] = {0.5, 0.9, 0.95, 0.99, 0.999};
constexpr const char* quantile_names[] = {"p50", "p90", "p95", "p99", "p99.9"};
constexpr std::size_t quantile_count = sizeof(quantiles) / sizeof(quantiles[0]);

struct QuantileResult {
  std::string distribution;
  double accuracy = 0;
  double errors[quantile_count] = {};
  double worst = 0;
  const char* worst_at = "";
  std::size_t buckets = 0;
  bool collapsed = false;
  bool within = true;  // every error within the accuracy (plus rounding)
};

std::vector<std::pair<std::string, std::vector<double>>> quantile_data(std::size_t n) {
  std::vector<std::pair<std::string, std::vector<double>>> sets;
  {
    std::mt19937_64 random(1);
    std::uniform_real_distribution<double> uniform(1.0, 1000.0);
    std::vector<double> v(n);
    for (double& x : v) x = uniform(random);
    sets.emplace_back("uniform(1, 1000)", std::move(v));
  }
  {
    std::mt19937_64 random(2);
    std::lognormal_distribution<double> lognormal(3.0, 1.0);
    std::vector<double> v(n);
    for (double& x : v) x = lognormal(random);
    sets.emplace_back("log-normal(3, 1)", std::move(v));
  }
  {
    // A fast path and a slow one (cache hit and miss): 70% around 20, 30% around 200.
    std::mt19937_64 random(3);
    std::bernoulli_distribution slow_path(0.3);
    std::normal_distribution<double> fast(20.0, 3.0), slow(200.0, 30.0);
    std::vector<double> v(n);
    for (double& x : v) x = std::fabs(slow_path(random) ? slow(random) : fast(random));
    sets.emplace_back("bimodal 20/200", std::move(v));
  }
  return sets;
}

std::vector<QuantileResult> measure_quantiles(const Options& o) {
  std::vector<QuantileResult> results;
  for (auto& [name, values] : quantile_data(o.quantile_values)) {
    std::vector<double> sorted = values;
    std::sort(sorted.begin(), sorted.end());
    for (double accuracy : {0.005, 0.01, 0.02}) {
      livecast::QuantileSketchSettings settings;
      settings.relative_accuracy = accuracy;
      livecast::QuantileSketch sketch(settings);
      for (double v : values) sketch.add(v);
      QuantileResult r;
      r.distribution = name;
      r.accuracy = accuracy;
      r.buckets = sketch.bucket_count();
      r.collapsed = sketch.collapsed();
      for (std::size_t i = 0; i < quantile_count; ++i) {
        const auto rank = static_cast<std::size_t>(std::floor(quantiles[i] * static_cast<double>(sorted.size() - 1)));
        const double exact = sorted[rank];
        const double estimate = sketch.quantile(quantiles[i]).value_or(NAN);
        r.errors[i] = std::fabs(estimate - exact) / std::fabs(exact);
        if (!(r.errors[i] <= r.worst)) {  // NaN counts as worst
          r.worst = r.errors[i];
          r.worst_at = quantile_names[i];
        }
      }
      r.within = r.worst <= accuracy * (1 + 1e-9);
      results.push_back(r);
    }
  }
  return results;
}

// ---- output --------------------------------------------------------------------

std::string json_array(const std::vector<double>& v) {
  std::ostringstream out;
  out << '[';
  for (std::size_t i = 0; i < v.size(); ++i) out << (i ? "," : "") << v[i];
  out << ']';
  return out.str();
}

std::string json_measured(const Measured& m) {
  std::ostringstream out;
  out << "{\"ns_per_event\":" << median(m.ns) << ",\"ns_per_event_reps\":" << json_array(m.ns)
      << ",\"cpu_ns_per_event\":" << median(m.cpu_ns) << ",\"events_per_s\":" << median(m.events_per_s) << '}';
  return out.str();
}

void print_record_table(const std::vector<VariantResult>& results, const Options& o) {
  std::printf("record() cost per event: median of %zu repetitions, %zu events per repetition\n", o.repetitions,
              o.events);
  std::printf("(ns per call in each recording thread; x = livecast / peer, lower is better for livecast)\n\n");
  std::printf("%-24s %10s %14s %10s %10s %10s %10s %10s %8s\n", "threads", "livecast", "(min-max)", "naive", "floor",
              "x naive", "x floor", "CPU ns", "Mev/s");
  for (const auto& r : results) {
    const double l = median(r.livecast.ns), n = median(r.naive.ns), f = median(r.floor.ns);
    char range[32];
    std::snprintf(range, sizeof range, "(%.1f-%.1f)", *std::min_element(r.livecast.ns.begin(), r.livecast.ns.end()),
                  *std::max_element(r.livecast.ns.begin(), r.livecast.ns.end()));
    std::printf("%-24s %10.1f %14s %10.1f %10.1f %9.2fx %9.2fx %10.1f %8.1f\n", r.variant.name, l, range, n, f, l / n,
                l / f, median(r.livecast.cpu_ns), median(r.livecast.events_per_s) / 1e6);
  }
  std::printf("\nnaive: std::mutex + unordered_map<string, vector<double>> push_back;"
              " floor: relaxed atomic count + atomic double sum.\n"
              "CPU ns and Mev/s are livecast's: thread CPU time per call (wall minus preemption and lock sleeps),\n"
              "and events per second of all its recording threads together.\n\n");
}

void print_paced(const PacedResult& p, const Options& o) {
  const double all = 100 * p.process_cpu_s / p.wall_s, recording = 100 * p.recording_cpu_s / p.wall_s;
  std::printf("CPU at %.0f events/s: %zu metrics, windows 1s/5s/1m, own thread, %.1f s\n", p.offered_rate,
              o.paced_metrics, p.wall_s);
  std::printf("  process      %6.1f%% of one core\n", all);
  std::printf("  recording    %6.1f%% (%.1f ns of CPU per event, in its thread)\n", recording,
              p.recording_cpu_s * 1e9 / static_cast<double>(p.issued));
  std::printf("  rest         %6.1f%% (Aggregator thread summing up and publishing, broker)\n", all - recording);
  std::printf("  recorded     %llu of %llu issued (%.0f events/s over the wall time), %llu summaries\n\n",
              static_cast<unsigned long long>(p.recorded), static_cast<unsigned long long>(p.issued),
              static_cast<double>(p.recorded) / p.wall_s, static_cast<unsigned long long>(p.summaries));
}

void print_quantiles(const std::vector<QuantileResult>& results, const Options& o) {
  std::printf("Quantile error: %zu values per distribution, relative error against the exact value of rank "
              "floor(q*(n-1))\n\n",
              o.quantile_values);
  std::printf("%-18s %8s", "distribution", "accuracy");
  for (const char* q : quantile_names) std::printf(" %8s", q);
  std::printf(" %8s %6s %8s %7s\n", "worst", "at", "buckets", "within");
  for (const auto& r : results) {
    std::printf("%-18s %7.1f%%", r.distribution.c_str(), r.accuracy * 100);
    for (double e : r.errors) std::printf(" %7.3f%%", e * 100);
    std::printf(" %7.3f%% %6s %8zu %7s\n", r.worst * 100, r.worst_at, r.buckets,
                r.within ? (r.collapsed ? "yes*" : "yes") : "NO");
  }
  std::printf("\n");
}

std::string to_json(const Options& o, const double (&load)[2], const std::vector<VariantResult>& record,
                    const PacedResult& p, const std::vector<QuantileResult>& q) {
  std::ostringstream out;
  out << "{\"cpus\":" << std::thread::hardware_concurrency() << ",\"load_average\":[" << load[0] << ',' << load[1]
      << "],\"events\":" << o.events << ",\"repetitions\":" << o.repetitions << ",\"record\":[";
  for (std::size_t i = 0; i < record.size(); ++i) {
    const auto& r = record[i];
    out << (i ? "," : "") << "{\"variant\":\"" << r.variant.name << "\",\"threads\":" << r.variant.threads
        << ",\"own_metrics\":" << (r.variant.own_metrics ? "true" : "false")
        << ",\"livecast\":" << json_measured(r.livecast) << ",\"naive\":" << json_measured(r.naive)
        << ",\"floor\":" << json_measured(r.floor)
        << ",\"ratio_naive\":" << median(r.livecast.ns) / median(r.naive.ns)
        << ",\"ratio_floor\":" << median(r.livecast.ns) / median(r.floor.ns) << '}';
  }
  out << "],\"paced\":{\"offered_rate\":" << p.offered_rate << ",\"metrics\":" << o.paced_metrics
      << ",\"wall_s\":" << p.wall_s << ",\"process_cpu_percent\":" << 100 * p.process_cpu_s / p.wall_s
      << ",\"recording_cpu_percent\":" << 100 * p.recording_cpu_s / p.wall_s
      << ",\"rest_cpu_percent\":" << 100 * (p.process_cpu_s - p.recording_cpu_s) / p.wall_s
      << ",\"issued\":" << p.issued << ",\"recorded\":" << p.recorded << ",\"summaries\":" << p.summaries
      << "},\"quantiles\":[";
  for (std::size_t i = 0; i < q.size(); ++i) {
    const auto& r = q[i];
    out << (i ? "," : "") << "{\"distribution\":\"" << r.distribution << "\",\"accuracy\":" << r.accuracy
        << ",\"values\":" << o.quantile_values << ",\"errors\":{";
    for (std::size_t k = 0; k < quantile_count; ++k)
      out << (k ? "," : "") << '"' << quantile_names[k] << "\":" << r.errors[k];
    out << "},\"worst\":" << r.worst << ",\"buckets\":" << r.buckets
        << ",\"collapsed\":" << (r.collapsed ? "true" : "false") << ",\"within\":" << (r.within ? "true" : "false")
        << '}';
  }
  out << "]}";
  return out.str();
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  const std::vector<double> values = recorded_values();
  double load[2] = {load_average(), 0};
  std::printf("livecast-bench-aggregator: %u CPUs, load average %.2f at the start\n\n",
              std::thread::hardware_concurrency(), load[0]);

  std::vector<VariantResult> record;
  {
    livecast::Broker broker(quiet_broker());  // in-process backend
    broker.start();
    for (const Variant& v : {Variant{"1 thread", 1, false}, Variant{"2 threads, same metric", 2, false},
                             Variant{"2 threads, own metrics", 2, true}})
      record.push_back(measure_record_cost(broker, v, o, values));
    broker.stop();
  }
  print_record_table(record, o);

  // Alone in the process: nothing else of this program runs beside it.
  const PacedResult paced = measure_paced(o, values);
  print_paced(paced, o);

  const std::vector<QuantileResult> quantile_results = measure_quantiles(o);
  print_quantiles(quantile_results, o);
  load[1] = load_average();
  std::printf("load average %.2f at the end\n", load[1]);

  if (!o.json.empty()) {
    const std::string line = to_json(o, load, record, paced, quantile_results);
    if (o.json == "-") {
      std::cout << line << '\n';
    } else {
      std::ofstream file(o.json);
      file << line << '\n';
      if (!file) {
        std::cerr << "livecast-bench-aggregator: cannot write " << o.json << '\n';
        return 1;
      }
    }
  }

  bool ok = paced.recorded == paced.issued;
  for (const auto& r : quantile_results) ok = ok && r.within;
  if (!ok) std::cerr << "livecast-bench-aggregator: events lost in the paced run, or a quantile out of its accuracy\n";
  return ok ? 0 : 1;
}
