// RedisBackend in cluster mode. First the sans-I/O parts (key slots, MOVED/ASK
// errors, CLUSTER SLOTS), then a real three-master Redis Cluster that the test
// starts on free loopback ports: instances seeded with different nodes share
// topics on every node, recover positions across instances, and keep
// publishing when a topic's slot migrates. Fails, not skips, without
// redis-server or redis-cli: CI installs them.
#include "../../src/backend/redis_cluster.hpp"
#include "redis_fixture.hpp"

#include <livecast/aggregator.hpp>
#include <livecast/broker.hpp>
#include <livecast/redis_backend.hpp>

#include <ostream>  // doctest prints std::error_code

#include <doctest/doctest.h>

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/write.hpp>

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <future>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace livecast;
using livecast_test::MemoryConnection;
using livecast_test::has;
using livecast_test::is_publication;
using livecast_test::number_after;
using livecast_test::range;
using livecast_test::string_after;
using livecast_test::subscribe_message;
using namespace std::chrono_literals;

// --- no server ---------------------------------------------------------------

TEST_CASE("key slots: CRC16/XMODEM mod 16384, hash tags") {
  CHECK(redis_key_slot("123456789") == 12739);
  CHECK(redis_key_slot("") == 0);
  CHECK(redis_key_slot("foo") == 12182);
  CHECK(redis_key_slot("{user1000}.following") == redis_key_slot("{user1000}.followers"));
  CHECK(redis_key_slot("{user1000}.following") == redis_key_slot("user1000"));
  CHECK(redis_key_slot("{user1000}.following") == 3443);
  // Only the first {...}, and only when it is not empty (values from CLUSTER KEYSLOT).
  CHECK(redis_key_slot("bar") == 5061);
  CHECK(redis_key_slot("foo{}{bar}") == 8363);
  CHECK(redis_key_slot("foo{{bar}}zap") == 4015);
  CHECK(redis_key_slot("{bar") == 4015);
  CHECK(redis_key_slot("foo{bar}{zap}") == 5061);
  // A topic's keys and channel share one slot.
  CHECK(redis_key_slot("livecast:{scores}:stream") == redis_key_slot("livecast:{scores}:pub"));
  CHECK(redis_key_slot("livecast:{scores}:offset") == redis_key_slot("scores"));
}

TEST_CASE("MOVED and ASK errors are parsed; others are not redirections") {
  auto moved = parse_redis_redirect("MOVED 3999 127.0.0.1:6381");
  REQUIRE(moved);
  CHECK(moved->kind == RedisRedirect::Kind::moved);
  CHECK(moved->slot == 3999);
  CHECK(moved->host == "127.0.0.1");
  CHECK(moved->port == "6381");

  auto ask = parse_redis_redirect("ASK 16383 redis-7.local:7002");
  REQUIRE(ask);
  CHECK(ask->kind == RedisRedirect::Kind::ask);
  CHECK(ask->slot == 16383);
  CHECK(ask->host == "redis-7.local");
  CHECK(ask->port == "7002");

  auto v6 = parse_redis_redirect("MOVED 1 ::1:7000");
  REQUIRE(v6);
  CHECK(v6->host == "::1");
  CHECK(v6->port == "7000");

  auto unknown_host = parse_redis_redirect("MOVED 12 :7001");  // the answering node's host
  REQUIRE(unknown_host);
  CHECK(unknown_host->host.empty());
  CHECK(unknown_host->port == "7001");

  CHECK_FALSE(parse_redis_redirect("NOSCRIPT No matching script"));
  CHECK_FALSE(parse_redis_redirect("TRYAGAIN Multiple keys request during rehashing of slot"));
  CHECK_FALSE(parse_redis_redirect("MOVED 16384 127.0.0.1:6381"));
  CHECK_FALSE(parse_redis_redirect("MOVED x 127.0.0.1:6381"));
  CHECK_FALSE(parse_redis_redirect("MOVED 12 127.0.0.1"));
  CHECK_FALSE(parse_redis_redirect("MOVED 12 127.0.0.1:0"));
  CHECK_FALSE(parse_redis_redirect("MOVED 12 127.0.0.1:65536"));
  CHECK_FALSE(parse_redis_redirect("MOVED 12"));
  CHECK_FALSE(parse_redis_redirect("moved 12 127.0.0.1:6381"));
}

namespace {

RedisReply integer(long long v) {
  RedisReply r;
  r.type = RedisReply::Type::integer;
  r.integer = v;
  return r;
}

RedisReply text(std::string s) {
  RedisReply r;
  r.type = RedisReply::Type::string;
  r.string = std::move(s);
  return r;
}

RedisReply array(std::vector<RedisReply> elements) {
  RedisReply r;
  r.type = RedisReply::Type::array;
  r.elements = std::move(elements);
  return r;
}

}  // namespace

TEST_CASE("CLUSTER SLOTS answers are parsed into masters per slot range") {
  RedisReply reply = array({
      array({integer(0), integer(5460), array({text("127.0.0.1"), integer(7000), text("id0")}),
             array({text("127.0.0.1"), integer(7003), text("replica")})}),
      array({integer(5461), integer(16383), array({text("10.0.0.2"), integer(7001), text("id1"), array({})})}),
  });
  auto ranges = parse_cluster_slots(reply);
  REQUIRE(ranges);
  REQUIRE(ranges->size() == 2);
  CHECK((*ranges)[0].first == 0);
  CHECK((*ranges)[0].last == 5460);
  CHECK((*ranges)[0].host == "127.0.0.1");
  CHECK((*ranges)[0].port == "7000");
  CHECK((*ranges)[1].first == 5461);
  CHECK((*ranges)[1].last == 16383);
  CHECK((*ranges)[1].host == "10.0.0.2");

  CHECK_FALSE(parse_cluster_slots(text("ERR This instance has cluster support disabled")));
  CHECK_FALSE(parse_cluster_slots(array({array({integer(0), integer(16384), array({text("h"), integer(1)})})})));
  CHECK_FALSE(parse_cluster_slots(array({array({integer(5), integer(4), array({text("h"), integer(1)})})})));
  CHECK_FALSE(parse_cluster_slots(array({array({integer(0), integer(1)})})));
}

TEST_CASE("commands are routed by their key: EVAL/EVALSHA by the first KEY") {
  using Args = std::vector<std::string_view>;
  CHECK(redis_command_key(Args{"GET", "k"}) == std::optional<std::string_view>("k"));
  CHECK(redis_command_key(Args{"EVALSHA", "abc", "3", "{t}:stream", "{t}:offset", "{t}:epoch", "x"}) ==
        std::optional<std::string_view>("{t}:stream"));
  CHECK(redis_command_key(Args{"eval", "return 1", "1", "k"}) == std::optional<std::string_view>("k"));
  CHECK_FALSE(redis_command_key(Args{"EVAL", "return 1", "0"}));
  CHECK_FALSE(redis_command_key(Args{"SCRIPT", "LOAD", "return 1"}));
  CHECK_FALSE(redis_command_key(Args{"PING"}));
}

TEST_CASE("cluster settings: a database other than 0 or a malformed seed is refused") {
  RedisBackendSettings s;
  s.cluster = true;
  s.url = "redis://127.0.0.1:7000/1";
  CHECK_THROWS_AS(RedisBackend{s}, std::invalid_argument);
  s.url = "redis://127.0.0.1:7000";
  s.cluster_seeds = {"redis://127.0.0.1:7001", "nonsense"};
  CHECK_THROWS_AS(RedisBackend{s}, std::invalid_argument);
  s.cluster_seeds = {"redis://127.0.0.1:7001"};
  CHECK_NOTHROW(RedisBackend{s});
}

// --- a real cluster ----------------------------------------------------------

namespace {

constexpr const char* redis_server_path = "/usr/bin/redis-server";
constexpr const char* redis_cli_path = "/usr/bin/redis-cli";
// Generous: the tests must pass on a loaded two-core machine (and under TSan).
constexpr auto wait_limit = 20s;

unsigned short free_port() {
  asio::io_context io;
  asio::ip::tcp::acceptor acceptor(io, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  return acceptor.local_endpoint().port();
}

// Runs `argv` with stdout/stderr to /dev/null; the child dies with the test.
pid_t spawn(std::vector<std::string> arguments) {
  std::vector<char*> argv;  // built before fork: the child may not allocate
  for (std::string& a : arguments) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid == 0) {  // only async-signal-safe calls until exec
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    int null = ::open("/dev/null", O_RDWR);
    if (null >= 0) {
      ::dup2(null, 0);
      ::dup2(null, 1);
      ::dup2(null, 2);
    }
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  return pid;
}

// One command from a client of its own; nothing when the node did not answer.
std::optional<RedisReply> query(unsigned short port, const std::vector<std::string>& args) {
  try {
    asio::io_context io;
    asio::ip::tcp::socket socket(io);
    socket.connect(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    timeval limit{2, 0};
    ::setsockopt(socket.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
    std::vector<std::string_view> views(args.begin(), args.end());
    asio::write(socket, asio::buffer(encode_redis_command(views)));
    RedisReplyParser parser;
    std::array<char, 4096> buffer;
    for (;;) {
      if (auto reply = parser.next()) return reply;
      if (parser.failed()) return std::nullopt;
      std::size_t n = socket.read_some(asio::buffer(buffer));
      parser.feed(buffer.data(), n);
    }
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

// Waits, by polling with a deadline, until `condition` holds.
template <class Condition>
bool eventually(Condition condition, std::chrono::milliseconds limit = wait_limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(20ms);  // polling processes we cannot be notified by
  }
  return true;
}

// Three masters without replicas or persistence, on free loopback ports (and
// free cluster bus ports), in a temporary directory.
class LocalCluster {
 public:
  static constexpr int size = 3;

  LocalCluster() {
    REQUIRE_MESSAGE(::access(redis_server_path, X_OK) == 0, redis_server_path << " is missing: apt-get install redis-server");
    REQUIRE_MESSAGE(::access(redis_cli_path, X_OK) == 0, redis_cli_path << " is missing: apt-get install redis-tools");
    char dir[] = "/tmp/livecast-cluster-XXXXXX";
    REQUIRE(::mkdtemp(dir));
    dir_ = dir;
    for (int i = 0; i < size; ++i) launch(i);
    std::vector<std::string> create{redis_cli_path, "--cluster", "create"};
    for (int i = 0; i < size; ++i) create.push_back("127.0.0.1:" + std::to_string(ports_[i]));
    for (const char* a : {"--cluster-replicas", "0", "--cluster-yes"}) create.emplace_back(a);
    pid_t cli = spawn(create);
    REQUIRE(cli > 0);
    int status = 0;
    REQUIRE(::waitpid(cli, &status, 0) == cli);
    REQUIRE_MESSAGE((WIFEXITED(status) && WEXITSTATUS(status) == 0), "redis-cli --cluster create failed");
    for (int i = 0; i < size; ++i)
      REQUIRE_MESSAGE(eventually([&] { return state_ok(i); }), "node " << i << " never reached cluster_state:ok");
    for (int i = 0; i < size; ++i) {
      auto id = query(ports_[i], {"CLUSTER", "MYID"});
      REQUIRE(id);
      ids_[i] = id->string;
    }
  }

  ~LocalCluster() {
    for (pid_t pid : pids_)
      if (pid > 0) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
      }
    for (int i = 0; i < size; ++i) std::remove((dir_ + "/nodes-" + std::to_string(ports_[i]) + ".conf").c_str());
    ::rmdir(dir_.c_str());
  }

  std::string url(int i) const { return "redis://127.0.0.1:" + std::to_string(ports_[i]); }
  unsigned short port(int i) const { return ports_[i]; }
  const std::string& id(int i) const { return ids_[i]; }

  // The node serving `slot`, as this test sees it (asking node 0).
  int owner(std::uint16_t slot) const {
    auto reply = query(ports_[0], {"CLUSTER", "SLOTS"});
    REQUIRE(reply);
    auto ranges = parse_cluster_slots(*reply);
    REQUIRE(ranges);
    for (auto& r : *ranges)
      if (r.first <= slot && slot <= r.last)
        for (int i = 0; i < size; ++i)
          if (r.port == std::to_string(ports_[i])) return i;
    FAIL("slot " << slot << " has no owner");
    return -1;
  }

  // Moves `slot` with its keys from node `from` to node `to`, the way
  // redis-cli --cluster reshard does: first the keys (then `from` answers ASK
  // for them), then the slot (then it answers MOVED).
  void migrate_keys(std::uint16_t slot, int from, int to, bool begin = true) {
    if (begin) begin_migration(slot, from, to);
    for (;;) {
      auto keys = query(ports_[from], {"CLUSTER", "GETKEYSINSLOT", std::to_string(slot), "100"});
      REQUIRE(keys);
      REQUIRE(keys->is_array());
      if (keys->elements.empty()) break;
      std::vector<std::string> names;
      for (auto& k : keys->elements) names.push_back(k.string);
      move_keys(from, to, names);
    }
  }

  void begin_migration(std::uint16_t slot, int from, int to) {
    const std::string s = std::to_string(slot);
    REQUIRE(ok(query(ports_[to], {"CLUSTER", "SETSLOT", s, "IMPORTING", ids_[from]})));
    REQUIRE(ok(query(ports_[from], {"CLUSTER", "SETSLOT", s, "MIGRATING", ids_[to]})));
  }

  void move_keys(int from, int to, const std::vector<std::string>& keys) {
    std::vector<std::string> migrate{"MIGRATE", "127.0.0.1", std::to_string(ports_[to]), "", "0", "5000", "KEYS"};
    migrate.insert(migrate.end(), keys.begin(), keys.end());
    REQUIRE(ok(query(ports_[from], migrate)));
  }

  void migrate_slot(std::uint16_t slot, int from, int to) {
    const std::string s = std::to_string(slot);
    for (int i : {to, from})
      REQUIRE(ok(query(ports_[i], {"CLUSTER", "SETSLOT", s, "NODE", ids_[to]})));
    for (int i = 0; i < size; ++i)
      if (i != to && i != from) REQUIRE(ok(query(ports_[i], {"CLUSTER", "SETSLOT", s, "NODE", ids_[to]})));
  }

 private:
  static bool ok(const std::optional<RedisReply>& r) { return r && !r->is_error(); }

  bool state_ok(int i) const {
    auto info = query(ports_[i], {"CLUSTER", "INFO"});
    return info && info->string.find("cluster_state:ok") != std::string::npos;
  }

  // Another process may take a free port before redis-server binds it: then
  // it exits, and other ports are tried.
  void launch(int i) {
    for (int attempt = 0; attempt < 5; ++attempt) {
      ports_[i] = free_port();
      buses_[i] = free_port();
      if (run_node(i)) return;
    }
    FAIL("redis-server did not start");
  }

  // Starts node i on its ports; true once it answers PING.
  bool run_node(int i) {
    const std::string p = std::to_string(ports_[i]);
    pids_[i] = spawn({redis_server_path, "--port", p, "--bind", "127.0.0.1", "--cluster-enabled", "yes",
                      "--cluster-port", std::to_string(buses_[i]), "--cluster-config-file",
                      dir_ + "/nodes-" + p + ".conf", "--dir", dir_, "--save", "", "--appendonly", "no"});
    REQUIRE(pids_[i] > 0);
    bool exited = false;
    const bool up = eventually([&] {
      int status = 0;
      exited = ::waitpid(pids_[i], &status, WNOHANG) == pids_[i];
      return exited || query(ports_[i], {"PING"}).has_value();
    });
    if (up && !exited) return true;
    if (!exited) {
      ::kill(pids_[i], SIGKILL);
      ::waitpid(pids_[i], nullptr, 0);
    }
    pids_[i] = -1;
    return false;
  }

 public:
  // SIGKILL: the node loses its data (no persistence) but not its cluster
  // configuration file, so restart() brings it back with its slots.
  void kill(int i) {
    if (pids_[i] <= 0) return;
    ::kill(pids_[i], SIGKILL);
    ::waitpid(pids_[i], nullptr, 0);
    pids_[i] = -1;
  }

  void restart(int i) {
    REQUIRE_MESSAGE(run_node(i), "node " << i << " did not restart");
    REQUIRE_MESSAGE(eventually([&] { return state_ok(i); }), "node " << i << " did not rejoin");
  }

 private:
  std::string dir_;
  std::array<unsigned short, size> ports_{};
  std::array<unsigned short, size> buses_{};
  std::array<pid_t, size> pids_{-1, -1, -1};
  std::array<std::string, size> ids_;
};

// One cluster for the whole test binary: starting one takes seconds.
LocalCluster& cluster() {
  static LocalCluster c;
  return c;
}

RedisBackendSettings cluster_backend(const std::string& seed, std::vector<std::string> more_seeds) {
  RedisBackendSettings s;
  s.url = seed;
  s.cluster = true;
  s.cluster_seeds = std::move(more_seeds);
  return s;
}

// One livecast instance (the fixture's: a Broker with one thread and its own
// RedisBackend), in cluster mode, seeded with `seed`.
struct Instance : livecast_test::Instance {
  explicit Instance(const std::string& seed, std::vector<std::string> more_seeds = {})
      : livecast_test::Instance(cluster_backend(seed, std::move(more_seeds)), /*must_connect=*/true) {}
};

bool about(const std::string& message, const std::string& topic) {
  return is_publication(message) && has(message, "{\"topic\":\"" + topic + "\"");
}

std::vector<std::uint64_t> offsets_of(const std::vector<std::string>& received, const std::string& topic) {
  std::vector<std::uint64_t> r;
  for (auto& m : received)
    if (about(m, topic)) r.push_back(number_after(m, "offset"));
  return r;
}

// A topic name with `stem` whose slot node `node` serves.
std::string topic_on(const std::string& stem, int node) {
  for (int n = 0;; ++n) {
    std::string topic = stem + std::to_string(n);
    if (cluster().owner(redis_key_slot(topic)) == node) return topic;
  }
}

}  // namespace

TEST_CASE("cluster: publications from three instances on topics of all three nodes reach every subscriber once, in order") {
  LocalCluster& c = cluster();
  Instance a(c.url(0)), b(c.url(1)), d(c.url(2));
  std::vector<Instance*> instances{&a, &b, &d};
  const std::vector<std::string> topics{topic_on("fan", 0), topic_on("fan", 1), topic_on("fan", 2)};

  std::vector<std::unique_ptr<MemoryConnection>> clients;
  for (Instance* i : instances)
    for (int k = 0; k < 2; ++k) clients.push_back(i->connect());
  for (auto& client : clients)
    for (std::size_t t = 0; t < topics.size(); ++t) client->send(subscribe_message(int(t) + 1, topics[t]));
  for (auto& client : clients) {
    REQUIRE(client->wait_for_count(topics.size(), wait_limit));
    for (auto& reply : client->received()) CHECK(has(reply, "\"recovered\":false"));
  }

  constexpr int per_instance = 10;
  std::vector<std::thread> publishers;
  for (std::size_t k = 0; k < instances.size(); ++k)
    publishers.emplace_back([&, k] {
      for (int n = 0; n < per_instance; ++n)
        for (auto& topic : topics)
          CHECK(instances[k]->publish(topic, "{\"from\":" + std::to_string(k) + ",\"n\":" + std::to_string(n) + "}")
                    .offset > 0);
    });
  for (auto& t : publishers) t.join();
  const std::uint64_t total = 3 * per_instance + 1;
  for (auto& topic : topics) REQUIRE(a.publish(topic, "{\"last\":true}").offset == total);

  for (auto& client : clients) {
    REQUIRE(client->wait_until(
        [&](const std::vector<std::string>& r) {
          for (auto& topic : topics) {
            auto o = offsets_of(r, topic);
            if (o.empty() || o.back() != total) return false;
          }
          return true;
        },
        wait_limit));
    auto r = client->received();
    for (auto& topic : topics) {
      CHECK(offsets_of(r, topic) == range(1, total));
      for (std::size_t k = 0; k < instances.size(); ++k)
        for (int n = 0; n < per_instance; ++n) {
          std::string data = "\"data\":{\"from\":" + std::to_string(k) + ",\"n\":" + std::to_string(n) + "}";
          int found = 0;
          for (auto& m : r) found += about(m, topic) && has(m, data);
          CHECK_MESSAGE(found == 1, topic << " " << data);
        }
    }
  }
  for (Instance* i : instances) {
    CHECK(i->broker->metrics().publish_errors == 0);
    CHECK(i->broker->metrics().backend_errors == 0);
  }
  // The scripts were loaded on every master: publications use EVALSHA there.
  for (int node = 0; node < LocalCluster::size; ++node) {
    auto stats = query(c.port(node), {"INFO", "commandstats"});
    REQUIRE(stats);
    CHECK_MESSAGE(has(stats->string, "cmdstat_evalsha:calls="), "node " << node);
  }
}

TEST_CASE("cluster: a client's position from one instance recovers the missed publications on another") {
  LocalCluster& c = cluster();
  // Seeded with nodes that do not serve the topic: every command is routed.
  const std::string topic = topic_on("recover", 2);
  Instance a(c.url(0)), b(c.url(1), {c.url(2)});
  for (int n = 1; n <= 3; ++n) REQUIRE(a.publish(topic, "{\"n\":" + std::to_string(n) + "}").offset == n);

  auto on_a = a.connect();
  on_a->send(subscribe_message(1, topic));
  REQUIRE(on_a->wait_for_count(2, wait_limit));
  const std::string epoch = string_after(on_a->received()[0], "epoch");
  CHECK_FALSE(epoch.empty());
  CHECK(offsets_of(on_a->received(), topic) == std::vector<std::uint64_t>{3});
  on_a->disconnect();

  for (int n = 4; n <= 8; ++n) REQUIRE(b.publish(topic, "{\"n\":" + std::to_string(n) + "}").offset == n);

  auto on_b = b.connect();
  on_b->send(subscribe_message(7, topic, epoch, 3, true));
  REQUIRE(on_b->wait_for_count(6, wait_limit));
  auto r = on_b->received();
  CHECK(has(r[0], "\"recovered\":true"));
  CHECK(string_after(r[0], "epoch") == epoch);
  CHECK(number_after(r[0], "offset") == 8);
  CHECK(offsets_of(r, topic) == range(4, 8));
  CHECK(has(r[1], "\"data\":{\"n\":4}"));

  REQUIRE(a.publish(topic, "{\"n\":9}").offset == 9);
  REQUIRE(on_b->wait_for_count(7, wait_limit));
  CHECK(offsets_of(on_b->received(), topic) == range(4, 9));
}

TEST_CASE("cluster: a topic's slot migrates to another node: MOVED is followed, delivery moves with it") {
  LocalCluster& c = cluster();
  const std::string topic = topic_on("moving", 0);
  const std::uint16_t slot = redis_key_slot(topic);
  Instance a(c.url(1)), b(c.url(2));
  auto client = b.connect();
  client->send(subscribe_message(1, topic));
  REQUIRE(client->wait_for_count(1, wait_limit));
  for (int n = 1; n <= 3; ++n) REQUIRE(a.publish(topic, "{\"n\":" + std::to_string(n) + "}").offset == n);
  REQUIRE(client->wait_until([&](const std::vector<std::string>& r) { return offsets_of(r, topic).size() == 3; },
                             wait_limit));
  auto probe = a.connect();
  probe->send(subscribe_message(1, topic));
  REQUIRE(probe->wait_for_count(2, wait_limit));
  const std::string epoch = string_after(probe->received()[0], "epoch");
  CHECK_FALSE(epoch.empty());
  probe->disconnect();

  // The keys are on node 1, the slot still on node 0: node 0 answers ASK, and
  // the publish goes to node 1 behind ASKING. The keys moved, so offsets go
  // on in the same epoch.
  c.migrate_keys(slot, 0, 1);
  Instance::Published asked = a.publish(topic, "{\"asked\":0}");
  REQUIRE_FALSE(asked.error);
  CHECK(asked.offset == 4);

  c.migrate_slot(slot, 0, 1);
  REQUIRE(c.owner(slot) == 1);

  // Both backends still route the slot to node 0: the first publish there is
  // answered MOVED and retried on node 1.
  Instance::Published moved = a.publish(topic, "{\"moved\":0}");
  REQUIRE_FALSE(moved.error);
  CHECK(moved.offset == 5);

  // The subscriber connection hears an unsolicited SUNSUBSCRIBE and moves the
  // channel to node 1; publications sent meanwhile miss the live stream and
  // come from the stream once the move is confirmed. Publish until one arrives.
  bool flowing = false;
  for (int n = 1; n < 100 && !flowing; ++n) {
    REQUIRE(a.publish(topic, "{\"moved\":" + std::to_string(n) + "}").offset > 5);
    flowing = client->wait_until(
        [&](const std::vector<std::string>& r) {
          for (auto& m : r)
            if (about(m, topic) && number_after(m, "offset") > 5) return true;
          return false;
        },
        100ms);
  }
  REQUIRE(flowing);
  // SSUBSCRIBEd on the new owner only.
  const std::string channel = "livecast:{" + topic + "}:pub";
  auto subscribers_on = [&](int node) {
    auto reply = query(c.port(node), {"PUBSUB", "SHARDNUMSUB", channel});
    REQUIRE(reply);
    REQUIRE(reply->elements.size() == 2);
    return reply->elements[1].integer;
  };
  CHECK(subscribers_on(1) == 1);
  CHECK(subscribers_on(0) == 0);

  // From here on, every publication arrives, in order.
  const std::uint64_t before = offsets_of(client->received(), topic).back();
  std::uint64_t last = 0;
  for (int n = 0; n < 5; ++n) last = a.publish(topic, "{\"after\":" + std::to_string(n) + "}").offset;
  REQUIRE(client->wait_until([&](const std::vector<std::string>& r) { return offsets_of(r, topic).back() == last; },
                             wait_limit));
  auto offsets = offsets_of(client->received(), topic);
  auto tail = std::vector<std::uint64_t>(offsets.end() - 5, offsets.end());
  CHECK(tail == range(last - 4, last));
  CHECK(before + 5 <= last);
  // Nothing was lost across the move either: what was published before the
  // channel was confirmed on the new owner came from the stream (a refill).
  CHECK(offsets == range(1, last));
  CHECK(b.backend->metrics().refills >= 1);
  CHECK(b.backend->metrics().history_losses == 0);

  // A new instance seeded with the old owner reads the history from the new one.
  Instance late(c.url(0));
  auto reader = late.connect();
  reader->send(subscribe_message(2, topic, epoch, 3, true));
  REQUIRE(reader->wait_for_count(1, wait_limit));
  CHECK(has(reader->received()[0], "\"recovered\":true"));
  CHECK(string_after(reader->received()[0], "epoch") == epoch);
  CHECK(number_after(reader->received()[0], "offset") == last);
  CHECK(a.broker->metrics().publish_errors == 0);
}

TEST_CASE("cluster: an unreachable first seed is skipped for the next one") {
  LocalCluster& c = cluster();
  const std::string nobody = "redis://127.0.0.1:" + std::to_string(free_port());
  Instance a(nobody, {c.url(2)});
  const std::string topic = topic_on("seeded", 0);
  REQUIRE(a.publish(topic, "{\"n\":1}").offset == 1);
  auto client = a.connect();
  client->send(subscribe_message(1, topic));
  REQUIRE(client->wait_for_count(2, wait_limit));
  REQUIRE(a.publish(topic, "{\"n\":2}").offset == 2);
  REQUIRE(client->wait_for_count(3, wait_limit));
  CHECK(offsets_of(client->received(), topic) == range(1, 2));
}

TEST_CASE("cluster: a master killed and restarted: publish fails fast meanwhile, then delivery resumes") {
  LocalCluster& c = cluster();
  const std::string topic = topic_on("outage", 2);
  Instance a(c.url(0)), b(c.url(1));
  auto client = b.connect();
  client->send(subscribe_message(1, topic));
  REQUIRE(client->wait_for_count(1, wait_limit));
  REQUIRE(a.publish(topic, "{\"n\":1}").offset == 1);
  REQUIRE(client->wait_for_count(2, wait_limit));

  c.kill(2);
  CHECK(eventually([&] { return a.publish(topic, "{\"down\":true}").error == Errc::backend_unavailable; }));
  CHECK(eventually([&] { return a.broker->metrics().backend_errors > 0 && b.broker->metrics().backend_errors > 0; }));
  CHECK_FALSE(client->close_code());

  c.restart(2);
  REQUIRE(a.backend->wait_connected(wait_limit));
  REQUIRE(b.backend->wait_connected(wait_limit));
  // The node lost the topic's keys: the new epoch's publications reach the
  // session once it is subscribed again, after a notice that the history it
  // followed is gone (a reply without id saying "not recovered").
  auto got_after = [&](const std::vector<std::string>& r) {
    for (auto& m : r)
      if (about(m, topic) && has(m, "\"after\":")) return true;
    return false;
  };
  bool flowing = false;
  for (int n = 0; n < 100 && !flowing; ++n) {
    a.publish(topic, "{\"after\":" + std::to_string(n) + "}");
    flowing = client->wait_until(got_after, 100ms);
  }
  REQUIRE(flowing);
  bool told = false;
  for (const std::string& m : client->received())
    told = told || (has(m, "{\"ok\":{\"topic\":\"" + topic + "\"") && has(m, "\"recovered\":false"));
  CHECK(told);
  CHECK(b.broker->metrics().history_losses >= 1);
}

TEST_CASE("cluster: TRYAGAIN while a topic's keys are split between two nodes is retried until they are not") {
  LocalCluster& c = cluster();
  const std::string topic = topic_on("split", 2);
  const std::uint16_t slot = redis_key_slot(topic);
  Instance a(c.url(0));
  for (int n = 1; n <= 2; ++n) REQUIRE(a.publish(topic, "{\"n\":" + std::to_string(n) + "}").offset == n);

  auto tryagains = [&](int node) -> long long {
    auto stats = query(c.port(node), {"INFO", "errorstats"});
    REQUIRE(stats);
    const std::string key = "errorstat_TRYAGAIN:count=";
    auto at = stats->string.find(key);
    return at == std::string::npos ? 0 : std::stoll(stats->string.substr(at + key.size()));
  };
  const long long before = tryagains(2);

  // One of the three keys moved: node 2 answers TRYAGAIN to the script.
  c.begin_migration(slot, 2, 0);
  c.move_keys(2, 0, {"livecast:{" + topic + "}:offset"});
  auto answer = std::async(std::launch::async, [&] { return a.publish(topic, "{\"n\":3}"); });
  REQUIRE(eventually([&] { return tryagains(2) > before; }));

  // The rest follows: node 2 answers ASK, and the retried publish lands on node 0.
  c.migrate_keys(slot, 2, 0, /*begin=*/false);
  Instance::Published published = answer.get();
  REQUIRE_FALSE(published.error);
  CHECK(published.offset == 3);

  c.migrate_slot(slot, 2, 0);
  CHECK(a.publish(topic, "{\"n\":4}").offset == 4);
  CHECK(a.broker->metrics().publish_errors == 0);
}

TEST_CASE("cluster: two instances merge an Aggregator window into one summary (both keys in one slot)") {
  LocalCluster& c = cluster();
  Instance a(c.url(0)), b(c.url(1));
  const std::int64_t start_ms = 1'733'580'000'000;
  std::atomic<std::int64_t> now_ms{start_ms};
  std::mutex mutex;
  std::vector<WindowSummary> summaries;
  AggregatorSettings s;
  s.own_thread = false;
  s.windows = {std::chrono::seconds(1)};
  s.merge_settle = std::chrono::seconds(1);  // both parts in before either claims, on a loaded machine
  s.clock = [&] { return std::chrono::system_clock::time_point(std::chrono::milliseconds(now_ms.load())); };
  s.on_window = [&](const WindowSummary& w) {
    std::lock_guard<std::mutex> lock(mutex);
    summaries.push_back(w);
  };
  Aggregator kpis_a(*a.broker, s), kpis_b(*b.broker, s);
  kpis_a.record("latency_ms", 1);
  kpis_b.record("latency_ms", 2);
  kpis_b.record("latency_ms", 3);
  now_ms += 1050;
  REQUIRE(eventually([&] {
    kpis_a.tick();
    kpis_b.tick();
    return kpis_a.metrics().merged_windows + kpis_b.metrics().merged_windows == 1 &&
           kpis_a.metrics().windows_merged_elsewhere + kpis_b.metrics().windows_merged_elsewhere == 1;
  }));
  std::lock_guard<std::mutex> lock(mutex);
  REQUIRE(summaries.size() == 1);
  CHECK(summaries[0].count == 3);
  CHECK(summaries[0].instances == 2);
  CHECK(*summaries[0].max == 3);
  CHECK(kpis_a.metrics().merge_fallbacks + kpis_b.metrics().merge_fallbacks == 0);
}
