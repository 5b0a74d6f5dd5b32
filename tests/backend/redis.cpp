// RedisBackend against a real redis-server that the test starts on a free
// loopback port: several instances (each a Broker with its own backend and
// in-memory sessions) share it. Skipped, not failed, when
// /usr/bin/redis-server is not installed.
#include "../core/memory_connection.hpp"
#include "../core/received_messages.hpp"

#include <livecast/broker.hpp>
#include <livecast/redis_backend.hpp>

#include <ostream>  // doctest prints std::error_code

#include <doctest/doctest.h>

#include <asio/connect.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/read.hpp>
#include <asio/write.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <future>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace livecast;
using livecast_test::MemoryConnection;
using livecast_test::has;
using livecast_test::is_publication;
using livecast_test::number_after;
using livecast_test::publication_offsets;
using livecast_test::string_after;
using namespace std::chrono_literals;

namespace {

constexpr const char* redis_server_path = "/usr/bin/redis-server";
// Generous: the tests must pass on a loaded two-core machine.
constexpr auto wait_limit = 10s;

bool redis_server_installed() { return ::access(redis_server_path, X_OK) == 0; }

// A redis-server without persistence on a free loopback port; kill() and
// start() again on the same port simulate an outage that loses all data.
class RedisServer {
 public:
  // Another process may take the free port before redis-server binds it:
  // then it exits, and another port is tried.
  explicit RedisServer(std::vector<std::string> extra_arguments = {}) : extra_(std::move(extra_arguments)) {
    for (int attempt = 0; attempt < 5; ++attempt) {
      port_ = free_port();
      if (launch()) return;
      kill();
    }
    FAIL("redis-server did not start");
  }
  ~RedisServer() { kill(); }

  std::string url(const std::string& credentials = {}, int db = 0) const {
    return "redis://" + credentials + "127.0.0.1:" + std::to_string(port_) + "/" + std::to_string(db);
  }

  // Starts it again on the same port (after kill()).
  void start() { REQUIRE_MESSAGE(launch(), "redis-server did not answer PING on port " << port_); }

  void kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

 private:
  bool launch() {
    // argv is built before fork: the child may not allocate.
    std::vector<std::string> arguments{"redis-server", "--port",       std::to_string(port_), "--bind",
                                       "127.0.0.1",    "--save",       "",                    "--appendonly",
                                       "no"};
    arguments.insert(arguments.end(), extra_.begin(), extra_.end());
    std::vector<char*> argv;
    for (std::string& a : arguments) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_ = ::fork();
    if (pid_ == 0) {  // only async-signal-safe calls until exec
      int null = ::open("/dev/null", O_RDWR);
      if (null >= 0) {
        ::dup2(null, 1);
        ::dup2(null, 2);
      }
      ::execv(redis_server_path, argv.data());
      ::_exit(127);
    }
    REQUIRE(pid_ > 0);
    return wait_until_answering();
  }

  static unsigned short free_port() {
    asio::io_context io;
    asio::ip::tcp::acceptor acceptor(io, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    return acceptor.local_endpoint().port();
  }

  bool answers() const {
    try {
      asio::io_context io;
      asio::ip::tcp::socket socket(io);
      socket.connect(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), port_));
      timeval limit{1, 0};  // whatever holds the port must answer, or it is not our server
      ::setsockopt(socket.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
      asio::write(socket, asio::buffer(std::string("*1\r\n$4\r\nPING\r\n")));
      // "+PONG", or "-NOAUTH" from a server with a password: either way, it answers.
      char first = 0;
      asio::read(socket, asio::buffer(&first, 1));
      return first == '+' || first == '-';
    } catch (const std::exception&) {
      return false;
    }
  }

  bool wait_until_answering() {
    const auto deadline = std::chrono::steady_clock::now() + wait_limit;
    while (std::chrono::steady_clock::now() < deadline) {
      if (answers()) return true;
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {  // it exited (port taken?)
        pid_ = -1;
        return false;
      }
      std::this_thread::sleep_for(20ms);  // polling a process we cannot be notified by
    }
    return false;
  }

  std::vector<std::string> extra_;
  unsigned short port_ = 0;

 public:
  // Sends one command from a client of its own; true when it was answered
  // with anything but an error.
  bool command(const std::vector<std::string>& args) const {
    try {
      asio::io_context io;
      asio::ip::tcp::socket socket(io);
      socket.connect(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), port_));
      std::string resp = "*" + std::to_string(args.size()) + "\r\n";
      for (auto& a : args) resp += "$" + std::to_string(a.size()) + "\r\n" + a + "\r\n";
      asio::write(socket, asio::buffer(resp));
      char first = 0;
      asio::read(socket, asio::buffer(&first, 1));
      return first != '-';
    } catch (const std::exception&) {
      return false;
    }
  }

  // SIGSTOP / SIGCONT: a server that holds its connections but answers nothing.
  void freeze() { ::kill(pid_, SIGSTOP); }
  void thaw() { ::kill(pid_, SIGCONT); }
  pid_t pid_ = -1;
};

// One livecast instance: a Broker with one thread and its own RedisBackend.
struct Instance {
  explicit Instance(const std::string& url, std::size_t history_size = 1000, bool must_connect = true)
      : Instance(settings(url, history_size), must_connect) {}

  static RedisBackendSettings settings(const std::string& url, std::size_t history_size = 1000) {
    RedisBackendSettings s;
    s.url = url;
    s.history_size = history_size;
    return s;
  }

  Instance(const RedisBackendSettings& s, bool must_connect) {
    const std::string url = s.url;
    auto owned = std::make_unique<RedisBackend>(s);
    backend = owned.get();
    BrokerSettings b;
    b.threads = 1;
    broker = std::make_unique<Broker>(b, std::move(owned));
    broker->start();
    if (must_connect) REQUIRE_MESSAGE(backend->wait_connected(wait_limit), "the backend did not connect to " << url);
  }

  std::unique_ptr<MemoryConnection> connect() {
    std::unique_ptr<MemoryConnection> c;
    broker->execute_on_shard(0, [&] { c = std::make_unique<MemoryConnection>(*broker, 0); });
    return c;
  }

  struct Published {
    std::error_code error;
    std::uint64_t offset = 0;
  };

  // Publishes and waits for the backend's answer.
  Published publish(const std::string& topic, const std::string& json) {
    auto answer = std::make_shared<std::promise<Published>>();
    auto future = answer->get_future();
    std::error_code refused = broker->publish(topic, json, [answer](std::error_code ec, std::uint64_t offset) {
      answer->set_value(Published{ec, offset});
    });
    if (refused) return Published{refused, 0};
    if (future.wait_for(wait_limit) != std::future_status::ready) return Published{make_error_code(Errc::ok), 0};
    return future.get();
  }

  RedisBackend* backend = nullptr;  // owned by broker
  std::unique_ptr<Broker> broker;
};


bool has_offset(const std::vector<std::string>& received, std::uint64_t offset) {
  for (auto o : publication_offsets(received))
    if (o == offset) return true;
  return false;
}

std::vector<std::uint64_t> range(std::uint64_t first, std::uint64_t last) {
  std::vector<std::uint64_t> r;
  for (auto i = first; i <= last; ++i) r.push_back(i);
  return r;
}

std::string subscribe_message(int id, const std::string& topic, const std::string& epoch = {},
                              std::uint64_t offset = 0, bool recover = false) {
  std::string m = "{\"op\":\"subscribe\",\"id\":" + std::to_string(id) + ",\"topic\":\"" + topic + "\"";
  if (recover) m += ",\"recover\":{\"epoch\":\"" + epoch + "\",\"offset\":" + std::to_string(offset) + "}";
  return m + "}";
}

// Waits, by polling with a deadline, until `condition` holds.
template <class Condition>
bool eventually(Condition condition) {
  const auto deadline = std::chrono::steady_clock::now() + wait_limit;
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

std::string skip_message() {
  return std::string("skipped: ") + redis_server_path + " is not installed (apt-get install redis-server)";
}

// Skipped, not failed: CI installs redis-server; a developer's machine may not.
#define SKIP_WITHOUT_REDIS_SERVER() \
  if (!redis_server_installed()) {  \
    MESSAGE(skip_message());        \
    return;                         \
  }

}  // namespace

TEST_CASE("a malformed Redis URL is refused at construction") {
  RedisBackendSettings s;
  s.url = "http://127.0.0.1:6379";
  CHECK_THROWS_AS(RedisBackend{s}, std::invalid_argument);
  s.url = "redis://127.0.0.1:99999";
  CHECK_THROWS_AS(RedisBackend{s}, std::invalid_argument);
  s.url = "redis://:secret@localhost:6380/2";
  CHECK_NOTHROW(RedisBackend{s});
}

TEST_CASE("publications on any of three instances reach every subscriber once, in order, with dense offsets") {
  SKIP_WITHOUT_REDIS_SERVER();
  RedisServer redis;
  Instance a(redis.url()), b(redis.url()), c(redis.url());
  std::vector<Instance*> instances{&a, &b, &c};
  std::vector<std::unique_ptr<MemoryConnection>> clients;
  for (Instance* i : instances)
    for (int k = 0; k < 2; ++k) clients.push_back(i->connect());
  for (auto& client : clients) client->send(subscribe_message(1, "fan"));
  for (auto& client : clients) {
    REQUIRE(client->wait_for_count(1, wait_limit));
    CHECK(has(client->received()[0], "\"recovered\":false"));
  }

  // Published from all three instances at once; Redis decides the order.
  constexpr int per_instance = 20;
  std::vector<std::thread> publishers;
  for (std::size_t k = 0; k < instances.size(); ++k)
    publishers.emplace_back([&, k] {
      for (int n = 0; n < per_instance; ++n)
        CHECK(instances[k]->publish("fan", "{\"from\":" + std::to_string(k) + ",\"n\":" + std::to_string(n) + "}")
                  .offset > 0);
    });
  for (auto& t : publishers) t.join();
  // A last one, after all: whatever a client got twice would come before it.
  const std::uint64_t total = 3 * per_instance + 1;
  REQUIRE(a.publish("fan", "{\"last\":true}").offset == total);

  for (auto& client : clients) {
    REQUIRE(client->wait_until([&](const std::vector<std::string>& r) { return has_offset(r, total); }, wait_limit));
    auto r = client->received();
    CHECK(publication_offsets(r) == range(1, total));
    std::set<std::string> seen(r.begin() + 1, r.end());
    for (int k = 0; k < 3; ++k)
      for (int n = 0; n < per_instance; ++n) {
        std::string data = "\"data\":{\"from\":" + std::to_string(k) + ",\"n\":" + std::to_string(n) + "}";
        bool found = false;
        for (auto& m : seen) found = found || has(m, data);
        CHECK_MESSAGE(found, data);
      }
  }
  CHECK(a.broker->metrics().publish_errors == 0);
  CHECK(b.broker->metrics().backend_errors == 0);
}

TEST_CASE("a client's position from instance A recovers exactly the missed publications on instance B") {
  SKIP_WITHOUT_REDIS_SERVER();
  RedisServer redis;
  Instance a(redis.url()), b(redis.url());
  for (int n = 1; n <= 3; ++n) REQUIRE(a.publish("r", "{\"n\":" + std::to_string(n) + "}").offset == n);

  auto on_a = a.connect();
  on_a->send(subscribe_message(1, "r"));
  REQUIRE(on_a->wait_for_count(2, wait_limit));  // the reply and the snapshot
  const std::string reply = on_a->received()[0];
  CHECK(has(reply, "\"recovered\":false"));
  CHECK(number_after(reply, "offset") == 3);
  const std::string epoch = string_after(reply, "epoch");
  CHECK_FALSE(epoch.empty());
  CHECK(publication_offsets(on_a->received()) == std::vector<std::uint64_t>{3});
  CHECK(has(on_a->received()[1], "\"data\":{\"n\":3}"));

  for (int n = 4; n <= 5; ++n) REQUIRE(a.publish("r", "{\"n\":" + std::to_string(n) + "}").offset == n);
  REQUIRE(on_a->wait_for_count(4, wait_limit));
  CHECK(publication_offsets(on_a->received()) == std::vector<std::uint64_t>{3, 4, 5});
  on_a->disconnect();

  for (int n = 6; n <= 10; ++n) REQUIRE(a.publish("r", "{\"n\":" + std::to_string(n) + "}").offset == n);

  auto on_b = b.connect();
  on_b->send(subscribe_message(7, "r", epoch, 5, true));
  REQUIRE(on_b->wait_for_count(6, wait_limit));
  auto r = on_b->received();
  CHECK(has(r[0], "\"id\":7"));
  CHECK(has(r[0], "\"recovered\":true"));
  CHECK(string_after(r[0], "epoch") == epoch);
  CHECK(number_after(r[0], "offset") == 10);
  CHECK(publication_offsets(r) == range(6, 10));
  CHECK(has(r[1], "\"data\":{\"n\":6}"));

  // And the live stream continues behind them, through B's own subscription.
  REQUIRE(a.publish("r", "{\"n\":11}").offset == 11);
  REQUIRE(on_b->wait_for_count(7, wait_limit));
  CHECK(publication_offsets(on_b->received()) == range(6, 11));

  // Up to date: recovered with nothing to replay.
  auto again = b.connect();
  again->send(subscribe_message(8, "r", epoch, 11, true));
  REQUIRE(again->wait_for_count(1, wait_limit));
  CHECK(has(again->received()[0], "\"recovered\":true"));
  REQUIRE(a.publish("r", "{\"n\":12}").offset == 12);
  REQUIRE(again->wait_for_count(2, wait_limit));
  CHECK(publication_offsets(again->received()) == std::vector<std::uint64_t>{12});
}

TEST_CASE("a position trimmed out of the stream is not recovered: the snapshot comes instead") {
  SKIP_WITHOUT_REDIS_SERVER();
  RedisServer redis;
  Instance a(redis.url(), /*history_size=*/5), b(redis.url(), /*history_size=*/5);
  REQUIRE(a.publish("trim", "{\"n\":1}").offset == 1);
  auto first = a.connect();
  first->send(subscribe_message(1, "trim"));
  REQUIRE(first->wait_for_count(2, wait_limit));
  const std::string epoch = string_after(first->received()[0], "epoch");
  first->disconnect();

  // MAXLEN ~ trims whole stream nodes (up to 100 entries each): publish well past that.
  constexpr std::uint64_t total = 400;
  for (std::uint64_t n = 2; n <= total; ++n)
    REQUIRE(a.publish("trim", "{\"n\":" + std::to_string(n) + "}").offset == n);

  auto late = b.connect();
  late->send(subscribe_message(2, "trim", epoch, 1, true));
  REQUIRE(late->wait_for_count(2, wait_limit));
  auto r = late->received();
  CHECK(has(r[0], "\"recovered\":false"));
  CHECK(string_after(r[0], "epoch") == epoch);
  CHECK(number_after(r[0], "offset") == total);
  CHECK(publication_offsets(r) == std::vector<std::uint64_t>{total});
  CHECK(has(r[1], "\"data\":{\"n\":400}"));

  auto recent = b.connect();
  recent->send(subscribe_message(3, "trim", epoch, total - 2, true));
  REQUIRE(recent->wait_for_count(3, wait_limit));
  CHECK(has(recent->received()[0], "\"recovered\":true"));
  CHECK(publication_offsets(recent->received()) == range(total - 1, total));
}

TEST_CASE("Redis killed and restarted: publish fails meanwhile, subscriptions come back, the epoch changes") {
  SKIP_WITHOUT_REDIS_SERVER();
  RedisServer redis;
  Instance a(redis.url()), b(redis.url());
  REQUIRE(a.publish("k", "{\"n\":1}").offset == 1);
  auto on_a = a.connect();
  auto on_b = b.connect();
  on_a->send(subscribe_message(1, "k"));
  on_b->send(subscribe_message(1, "k"));
  REQUIRE(on_a->wait_for_count(2, wait_limit));
  REQUIRE(on_b->wait_for_count(2, wait_limit));
  const std::string epoch = string_after(on_b->received()[0], "epoch");
  for (int n = 2; n <= 5; ++n) REQUIRE(a.publish("k", "{\"n\":" + std::to_string(n) + "}").offset == n);
  REQUIRE(on_b->wait_until([](const std::vector<std::string>& r) { return has_offset(r, 5); }, wait_limit));

  redis.kill();
  // Refused fast, without a throw and without buffering, while Redis is away.
  CHECK(eventually([&] { return a.publish("k", "{\"down\":true}").error == Errc::backend_unavailable; }));
  CHECK(eventually([&] { return a.broker->metrics().backend_errors > 0 && b.broker->metrics().backend_errors > 0; }));
  CHECK(a.broker->metrics().publish_errors > 0);
  CHECK_FALSE(on_a->close_code());
  CHECK_FALSE(on_b->close_code());

  redis.start();
  REQUIRE(a.backend->wait_connected(wait_limit));
  REQUIRE(b.backend->wait_connected(wait_limit));
  // Publications flow again to the sessions that stayed subscribed, once the
  // subscriber connections subscribed again (a bounded number of tries).
  auto got_after = [](const std::vector<std::string>& r) {
    for (auto& m : r)
      if (has(m, "\"after\":")) return true;
    return false;
  };
  bool flowing = false;
  for (int n = 0; n < 100 && !flowing; ++n) {
    a.publish("k", "{\"after\":" + std::to_string(n) + "}");
    flowing = on_b->wait_until(got_after, 100ms) && on_a->wait_until(got_after, 100ms);
  }
  REQUIRE(flowing);
  // Offsets in the new epoch continue above what the sessions saw, so their
  // de-duplication lets the new publications through.
  std::vector<std::uint64_t> offsets = publication_offsets(on_b->received());
  CHECK(offsets.back() > 5);

  // Redis lost everything (no persistence): a returning client is told so.
  auto returning = b.connect();
  returning->send(subscribe_message(2, "k", epoch, 5, true));
  REQUIRE(returning->wait_for_count(2, wait_limit));
  auto r = returning->received();
  CHECK(has(r[0], "\"recovered\":false"));
  CHECK(string_after(r[0], "epoch") != epoch);
  CHECK(publication_offsets(r).size() == 1);
  CHECK(has(r[1], "\"after\":"));
}

TEST_CASE("the URL's password and database are used: AUTH and SELECT on every connection") {
  SKIP_WITHOUT_REDIS_SERVER();
  RedisServer redis({"--requirepass", "s3cret"});

  // A wrong password: never ready, reported, and publish() fails fast.
  Instance wrong(redis.url(":wrong@"), 1000, /*must_connect=*/false);
  CHECK(eventually([&] { return wrong.broker->metrics().backend_errors > 0; }));
  CHECK_FALSE(wrong.backend->connected());
  CHECK(wrong.publish("t", "1").error == Errc::backend_unavailable);

  Instance in_db3(redis.url(":s3cret@", 3)), also_db3(redis.url(":s3cret@", 3)), in_db0(redis.url(":s3cret@"));
  REQUIRE(in_db3.publish("t", "{\"n\":1}").offset == 1);
  REQUIRE(in_db3.publish("t", "{\"n\":2}").offset == 2);

  auto same_db = also_db3.connect();
  same_db->send(subscribe_message(1, "t"));
  REQUIRE(same_db->wait_for_count(2, wait_limit));
  CHECK(number_after(same_db->received()[0], "offset") == 2);
  CHECK(has(same_db->received()[1], "\"data\":{\"n\":2}"));

  // Keys live in the selected database: db 0 has no history of "t".
  auto other_db = in_db0.connect();
  other_db->send(subscribe_message(1, "t"));
  REQUIRE(other_db->wait_for_count(1, wait_limit));
  CHECK(number_after(other_db->received()[0], "offset") == 0);
  CHECK(string_after(other_db->received()[0], "epoch").empty());
}

TEST_CASE("a server that stops answering: commands time out, then the backend recovers") {
  SKIP_WITHOUT_REDIS_SERVER();
  RedisServer redis;
  RedisBackendSettings s = Instance::settings(redis.url());
  s.command_timeout = std::chrono::milliseconds(300);
  s.connect_timeout = std::chrono::milliseconds(300);
  Instance a(s, true);
  REQUIRE(a.publish("frozen", "1").offset == 1);

  redis.freeze();
  const auto sent = std::chrono::steady_clock::now();
  auto failed = a.publish("frozen", "2");  // written, never answered
  CHECK(failed.error == Errc::backend_unavailable);
  CHECK(std::chrono::steady_clock::now() - sent < wait_limit);
  CHECK(eventually([&] { return a.broker->metrics().backend_errors > 0; }));

  redis.thaw();
  REQUIRE(a.backend->wait_connected(wait_limit));
  // Offsets go on where they were: the data survived the freeze.
  CHECK(eventually([&] { return a.publish("frozen", "3").offset >= 2; }));
}

TEST_CASE("scripts flushed on the server: EVALSHA falls back to EVAL") {
  SKIP_WITHOUT_REDIS_SERVER();
  RedisServer redis;
  Instance a(redis.url());
  auto client = a.connect();
  client->send(subscribe_message(1, "flush"));
  REQUIRE(client->wait_for_count(1, wait_limit));
  // The script SHAs are loaded shortly after connecting; publish until they are used.
  for (std::uint64_t n = 1; n <= 20; ++n) REQUIRE(a.publish("flush", std::to_string(n)).offset == n);
  REQUIRE(redis.command({"SCRIPT", "FLUSH"}));
  REQUIRE(a.publish("flush", "21").offset == 21);
  auto late = a.connect();
  late->send(subscribe_message(2, "flush"));
  REQUIRE(late->wait_for_count(2, wait_limit));
  CHECK(number_after(late->received()[0], "offset") == 21);
  REQUIRE(client->wait_until([](const std::vector<std::string>& r) { return has_offset(r, 21); }, wait_limit));
  CHECK(publication_offsets(client->received()) == range(1, 21));
}
