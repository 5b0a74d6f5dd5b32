// A TCP relay between the code under test and a real server on loopback, so
// that a test can make the network misbehave on cue: pause() holds every byte
// (a server slow to answer), cut() drops every connection and refuses new
// ones until restore() (a partition that loses nothing on the server).
#pragma once

#include <asio/buffer.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/write.hpp>

#include <array>
#include <cstddef>
#include <functional>
#include <future>
#include <list>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace livecast_test {

class TcpProxy {
 public:
  explicit TcpProxy(unsigned short upstream_port)
      : upstream_(asio::ip::make_address("127.0.0.1"), upstream_port),
        acceptor_(io_, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
    accept();
    thread_ = std::thread([this] { io_.run(); });
  }

  ~TcpProxy() {
    run([this] {
      acceptor_.close();
      for (auto& link : links_) link->close();
      links_.clear();
    });
    io_.stop();
    thread_.join();
  }

  TcpProxy(const TcpProxy&) = delete;
  TcpProxy& operator=(const TcpProxy&) = delete;

  unsigned short port() const { return acceptor_.local_endpoint().port(); }
  std::string url() const { return "redis://127.0.0.1:" + std::to_string(port()); }

  // Bytes read from either side from now on wait until resume().
  void pause() {
    run([this] { paused_ = true; });
  }
  void resume() {
    run([this] {
      paused_ = false;
      auto parked = std::move(parked_);
      parked_.clear();
      for (auto& forward : parked) forward();
    });
  }

  // Closes every relayed connection; connections made until restore() are
  // closed as soon as they are accepted.
  void cut() {
    run([this] {
      refusing_ = true;
      parked_.clear();
      for (auto& link : links_) link->close();
      links_.clear();
    });
  }
  void restore() {
    run([this] { refusing_ = false; });
  }

 private:
  struct Link {
    explicit Link(asio::io_context& io) : client(io), server(io) {}
    void close() {
      asio::error_code ignored;
      client.close(ignored);
      server.close(ignored);
    }
    asio::ip::tcp::socket client, server;
    std::array<char, 16 * 1024> to_server{}, to_client{};
  };

  // Runs `f` on the relay's thread and waits for it.
  void run(std::function<void()> f) {
    std::promise<void> done;
    auto finished = done.get_future();
    asio::post(io_, [&] {
      f();
      done.set_value();
    });
    finished.wait();
  }

  void accept() {
    auto link = std::make_shared<Link>(io_);
    acceptor_.async_accept(link->client, [this, link](asio::error_code ec) {
      if (ec) return;  // closed
      accept();
      if (refusing_) {
        link->close();
        return;
      }
      links_.push_back(link);
      link->server.async_connect(upstream_, [this, link](asio::error_code ec) {
        if (ec) {
          link->close();
          return;
        }
        pump(link, link->client, link->server, link->to_server);
        pump(link, link->server, link->client, link->to_client);
      });
    });
  }

  void pump(const std::shared_ptr<Link>& link, asio::ip::tcp::socket& from, asio::ip::tcp::socket& to,
            std::array<char, 16 * 1024>& buffer) {
    from.async_read_some(asio::buffer(buffer), [this, link, &from, &to, &buffer](asio::error_code ec, std::size_t n) {
      if (ec) {
        link->close();
        return;
      }
      auto forward = [this, link, &from, &to, &buffer, n] {
        asio::async_write(to, asio::buffer(buffer.data(), n), [this, link, &from, &to, &buffer](asio::error_code ec,
                                                                                               std::size_t) {
          if (ec) {
            link->close();
            return;
          }
          pump(link, from, to, buffer);
        });
      };
      if (paused_)
        parked_.push_back(std::move(forward));
      else
        forward();
    });
  }

  asio::io_context io_;
  asio::ip::tcp::endpoint upstream_;
  asio::ip::tcp::acceptor acceptor_;
  std::thread thread_;
  // Only on the relay's thread.
  std::list<std::shared_ptr<Link>> links_;
  std::vector<std::function<void()>> parked_;
  bool paused_ = false;
  bool refusing_ = false;
};

}  // namespace livecast_test
