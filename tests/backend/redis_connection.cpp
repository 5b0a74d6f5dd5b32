// RedisConnection against a server that answers the handshake and then
// stops reading: what an instance queues for it stays bounded in bytes.
#include "redis_connection.hpp"

#include <livecast/error.hpp>

#include <doctest/doctest.h>

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/read_until.hpp>
#include <asio/write.hpp>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

using namespace livecast;

namespace {

// Accepts one connection, answers its PING, then holds it without reading.
class StuckRedis {
 public:
  StuckRedis() : acceptor_(io_, {asio::ip::make_address("127.0.0.1"), 0}) {
    thread_ = std::thread([this] {
      asio::ip::tcp::socket socket(io_);
      std::error_code ec;
      acceptor_.accept(socket, ec);
      if (ec) return;
      std::string in;
      asio::read_until(socket, asio::dynamic_buffer(in), "PING\r\n", ec);
      if (!ec) asio::write(socket, asio::buffer(std::string("+PONG\r\n")), ec);
      while (!done_) std::this_thread::sleep_for(std::chrono::milliseconds(5));  // holds the socket, reads nothing
    });
  }
  ~StuckRedis() {
    done_ = true;
    std::error_code ignored;
    acceptor_.close(ignored);
    thread_.join();
  }
  std::string url() const { return "redis://127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port()); }

 private:
  asio::io_context io_;
  asio::ip::tcp::acceptor acceptor_;
  std::atomic<bool> done_{false};
  std::thread thread_;
};

}  // namespace

TEST_CASE("commands for a Redis that stopped reading are refused past max_queued_bytes, not queued without end") {
  StuckRedis server;
  asio::io_context io;
  RedisConnectionSettings settings =
      redis_connection_settings(server.url(), std::chrono::seconds(2), std::chrono::seconds(60));
  settings.max_queued_bytes = 1024 * 1024;
  RedisConnection connection(io, settings);
  connection.start();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!connection.connected() && std::chrono::steady_clock::now() < deadline)
    io.run_one_for(std::chrono::milliseconds(10));
  REQUIRE(connection.connected());

  // 100 MiB of commands: far more than the kernel's socket buffers hold.
  const std::string value(256 * 1024, 'v');
  // A refusal answers at once, inside execute(); accepted commands are
  // answered (failed) only when the connection shuts down below.
  int accepted = 0, refused = 0, refusals = 0;
  bool counting = true;
  for (int i = 0; i < 400; ++i) {
    const int before = refusals;
    connection.execute({"SET", "k", value}, [&](std::error_code ec, RedisReply) {
      if (counting && ec == Errc::backend_unavailable) ++refusals;
    });
    refusals > before ? ++refused : ++accepted;
    io.poll();  // let the writes the kernel takes complete
  }
  counting = false;
  CHECK(accepted > 0);
  CHECK(refused > 0);
  // What was accepted went to the kernel, or waits within the bound.
  CHECK(static_cast<std::size_t>(accepted) * value.size() < 64u * 1024 * 1024);
  connection.shutdown(make_error_code(Errc::shutting_down));
  io.poll();
}
