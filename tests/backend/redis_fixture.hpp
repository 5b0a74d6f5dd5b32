// A real redis-server for the tests, started on a free loopback port, and a
// livecast instance (a Broker with its own RedisBackend) to put in front of
// it. The tests need /usr/bin/redis-server (CI installs it); without it they
// are skipped with a message, not failed, on a developer's machine.
#pragma once

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
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace livecast_test {

using namespace livecast;
using namespace std::chrono_literals;

inline constexpr const char* redis_server_path = "/usr/bin/redis-server";
// Generous: the tests must pass on a loaded two-core machine.
inline constexpr auto wait_limit = 10s;

inline bool redis_server_installed() { return ::access(redis_server_path, X_OK) == 0; }

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

  unsigned short port() const { return port_; }

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

  // A field of INFO (e.g. "total_net_output_bytes", or "cmdstat_evalsha"
  // whose value is "calls=N,..."), as text; empty when absent.
  std::string info_field(const std::string& field) const {
    asio::io_context io;
    asio::ip::tcp::socket socket(io);
    socket.connect(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), port_));
    asio::write(socket, asio::buffer(std::string("*2\r\n$4\r\nINFO\r\n$3\r\nall\r\n")));
    std::string reply;
    char chunk[4096];
    // A bulk string: "$<length>\r\n<text>\r\n".
    while (true) {
      const std::size_t header_end = reply.find("\r\n");
      if (header_end != std::string::npos && reply.size() >= header_end + 2 + std::stoul(reply.substr(1, header_end - 1)))
        break;
      const std::size_t n = socket.read_some(asio::buffer(chunk));
      reply.append(chunk, n);
    }
    const std::size_t at = reply.find("\r\n" + field + ":");
    if (at == std::string::npos) return {};
    const std::size_t start = at + 2 + field.size() + 1;
    return reply.substr(start, reply.find("\r\n", start) - start);
  }
  // INFO commandstats' calls of `command` (0 when never called).
  std::uint64_t calls(const std::string& command) const {
    const std::string stats = info_field("cmdstat_" + command);
    return stats.empty() ? 0 : std::stoull(stats.substr(stats.find('=') + 1));
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

  Instance(const RedisBackendSettings& s, bool must_connect, BrokerSettings b = {}) {
    const std::string url = s.url;
    auto owned = std::make_unique<RedisBackend>(s);
    backend = owned.get();
    b.threads = 1;
    broker = std::make_unique<Broker>(b, std::move(owned));
    broker->start();
    if (must_connect) REQUIRE_MESSAGE(backend->wait_connected(wait_limit), "the backend did not connect to " << url);
  }

  std::unique_ptr<MemoryConnection> connect() {
    std::unique_ptr<MemoryConnection> c;
    broker->session_host().execute_on_shard(0, [&] { c = std::make_unique<MemoryConnection>(*broker, 0); });
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


inline bool has_offset(const std::vector<std::string>& received, std::uint64_t offset) {
  for (auto o : publication_offsets(received))
    if (o == offset) return true;
  return false;
}

inline std::vector<std::uint64_t> range(std::uint64_t first, std::uint64_t last) {
  std::vector<std::uint64_t> r;
  for (auto i = first; i <= last; ++i) r.push_back(i);
  return r;
}

inline std::string subscribe_message(int id, const std::string& topic, const std::string& epoch = {},
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


inline std::string skip_message() {
  return std::string("skipped: ") + redis_server_path + " is not installed (apt-get install redis-server)";
}

}  // namespace livecast_test

// Skipped, not failed: CI installs redis-server; a developer's machine may not.
#define SKIP_WITHOUT_REDIS_SERVER()                \
  if (!livecast_test::redis_server_installed()) { \
    MESSAGE(livecast_test::skip_message());        \
    return;                                        \
  }
