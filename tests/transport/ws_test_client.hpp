// Clients for the WebSocket transport's integration tests: a websocketpp
// client on its own thread whose messages land in a queue the test waits on,
// a hand-made client on a raw socket (for clients that misbehave: stop
// reading, never answer pings), and a plain HTTP GET. Every wait is bounded.
#pragma once

#include <websocketpp/client.hpp>
#include <websocketpp/config/asio_no_tls_client.hpp>

#include <asio/connect.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/read.hpp>
#include <asio/read_until.hpp>
#include <asio/streambuf.hpp>
#include <asio/write.hpp>

#include <rapidjson/document.h>

#include <array>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <istream>
#include <mutex>
#include <optional>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "eventually.hpp"

namespace livecast_test {

using namespace std::chrono_literals;


inline std::optional<rapidjson::Document> parse_json(const std::string& text) {
  rapidjson::Document d;
  d.Parse(text.c_str(), text.size());
  if (d.HasParseError() || !d.IsObject()) return std::nullopt;
  return d;
}

// What a WsClient asks for in its opening handshake.
struct WsOptions {
  std::string resource = "/ws";
  std::vector<std::pair<std::string, std::string>> headers;
  std::vector<std::string> subprotocols;
};

// A websocketpp client connected to ws://127.0.0.1:<port><resource>.
class WsClient {
 public:
  using Endpoint = websocketpp::client<websocketpp::config::asio_client>;

  explicit WsClient(std::uint16_t port, WsOptions options = {}) {
    endpoint_.clear_access_channels(websocketpp::log::alevel::all);
    endpoint_.clear_error_channels(websocketpp::log::elevel::all);
    endpoint_.init_asio();
    endpoint_.start_perpetual();
    endpoint_.set_open_handler([this](websocketpp::connection_hdl) { update([&] { opened_ = true; }); });
    endpoint_.set_fail_handler([this](websocketpp::connection_hdl h) {
      auto con = endpoint_.get_con_from_hdl(h);
      update([&] {
        ended_ = true;
        http_status_ = static_cast<int>(con->get_response_code());
      });
    });
    endpoint_.set_close_handler([this](websocketpp::connection_hdl h) {
      auto con = endpoint_.get_con_from_hdl(h);
      update([&] {
        ended_ = true;
        close_code_ = con->get_remote_close_code();
      });
    });
    endpoint_.set_message_handler([this](websocketpp::connection_hdl, Endpoint::message_ptr m) {
      update([&] { messages_.push_back(m->get_payload()); });
    });
    std::error_code ec;
    auto con = endpoint_.get_connection("ws://127.0.0.1:" + std::to_string(port) + options.resource, ec);
    if (ec) throw std::system_error(ec);
    for (auto& [name, value] : options.headers) con->append_header(name, value);
    for (auto& p : options.subprotocols) con->add_subprotocol(p);
    hdl_ = con->get_handle();
    con_ = con;
    endpoint_.connect(con);
    thread_ = std::thread([this] { endpoint_.run(); });
  }

  ~WsClient() {
    close();
    wait_ended(2s);
    endpoint_.stop_perpetual();
    endpoint_.stop();
    thread_.join();
  }

  WsClient(const WsClient&) = delete;
  WsClient& operator=(const WsClient&) = delete;

  // True once the handshake succeeded; false when it failed or timed out.
  bool wait_open(std::chrono::milliseconds timeout = wait_limit) {
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait_for(lock, timeout, [&] { return opened_ || ended_; });
    return opened_;
  }
  bool wait_ended(std::chrono::milliseconds timeout = wait_limit) {
    std::unique_lock<std::mutex> lock(mutex_);
    return changed_.wait_for(lock, timeout, [&] { return ended_; });
  }
  bool ended() {
    std::lock_guard<std::mutex> lock(mutex_);
    return ended_;
  }
  // The close code the server sent (0: none yet, 1006: none at all).
  int close_code() {
    std::lock_guard<std::mutex> lock(mutex_);
    return close_code_;
  }
  // The HTTP status of a refused handshake.
  int http_status() {
    std::lock_guard<std::mutex> lock(mutex_);
    return http_status_;
  }
  std::string response_header(const std::string& name) { return con_->get_response_header(name); }

  void send(const std::string& text) { send(text, websocketpp::frame::opcode::text); }
  void send(const std::string& payload, websocketpp::frame::opcode::value opcode) {
    std::error_code ec;
    endpoint_.send(hdl_, payload, opcode, ec);
  }
  void close() {
    std::error_code ec;
    endpoint_.close(hdl_, websocketpp::close::status::normal, "", ec);
  }

  // The next message, or nothing within the timeout.
  std::optional<std::string> next(std::chrono::milliseconds timeout = wait_limit) {
    std::unique_lock<std::mutex> lock(mutex_);
    if (!changed_.wait_for(lock, timeout, [&] { return !messages_.empty(); })) return std::nullopt;
    std::string m = std::move(messages_.front());
    messages_.pop_front();
    return m;
  }
  // The next message parsed as a JSON object, or nothing.
  std::optional<rapidjson::Document> next_json(std::chrono::milliseconds timeout = wait_limit) {
    auto m = next(timeout);
    if (!m) return std::nullopt;
    return parse_json(*m);
  }

 private:
  template <class F>
  void update(F&& f) {
    std::lock_guard<std::mutex> lock(mutex_);
    f();
    changed_.notify_all();
  }

  Endpoint endpoint_;
  Endpoint::connection_ptr con_;
  websocketpp::connection_hdl hdl_;
  std::thread thread_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<std::string> messages_;
  bool opened_ = false;
  bool ended_ = false;
  int close_code_ = 0;
  int http_status_ = 0;
};

// Runs `io` until `done` or the timeout; true when done.
inline bool run_until(asio::io_context& io, const bool& done, std::chrono::milliseconds timeout = wait_limit) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  io.restart();
  while (!done) {
    auto now = std::chrono::steady_clock::now();
    if (now >= deadline) return false;
    io.run_one_for(deadline - now);
  }
  return true;
}

// Starts one read with `start(handler)` and runs `io` until it completes or
// `deadline` passes; then the read is cancelled. Its error, or nullopt on
// timeout.
template <class StartRead>
std::optional<std::error_code> read_before(asio::io_context& io, asio::ip::tcp::socket& socket,
                                           std::chrono::steady_clock::time_point deadline, StartRead start) {
  bool done = false;
  std::error_code result;
  start([&](std::error_code ec, std::size_t) {
    result = ec;
    done = true;
  });
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
  if (left.count() <= 0 || !run_until(io, done, left)) {
    socket.cancel();
    run_until(io, done, std::chrono::seconds(1));
    return std::nullopt;
  }
  return result;
}

// A WebSocket client written by hand on a blocking-free asio socket: it does
// only what the test tells it to, so it can stop reading or ignore pings.
class RawWebSocket {
 public:
  struct Frame {
    std::uint8_t opcode = 0;
    std::string payload;
  };

  // `local_address`: where the connection comes from (any of 127.0.0.0/8
  // on Linux), for the per-address limits; empty: the kernel's choice.
  explicit RawWebSocket(std::string local_address = {}) : local_address_(std::move(local_address)) {}

  // Connects with a small receive buffer when `receive_buffer` > 0, then
  // performs the opening handshake; returns the response's status line
  // (empty when the server sent none).
  std::string connect(std::uint16_t port, int receive_buffer = 0, const std::string& resource = "/ws") {
    socket_.open(asio::ip::tcp::v4());
    if (!local_address_.empty()) socket_.bind({asio::ip::make_address(local_address_), 0});
    if (receive_buffer > 0) socket_.set_option(asio::socket_base::receive_buffer_size(receive_buffer));
    socket_.connect({asio::ip::make_address("127.0.0.1"), port});
    std::string request = "GET " + resource +
                          " HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    asio::write(socket_, asio::buffer(request));
    bool done = false;
    std::error_code result;
    asio::async_read_until(socket_, input_, "\r\n\r\n", [&](std::error_code ec, std::size_t) {
      result = ec;
      done = true;
    });
    if (!run_until(io_, done) || result) return {};
    std::istream in(&input_);
    std::string status, line;
    std::getline(in, status);
    while (std::getline(in, line) && line != "\r") {
    }
    return status;
  }

  // Sends one masked client frame (FIN set unless `final_fragment` is false).
  void send_frame(std::uint8_t opcode, const std::string& payload, bool final_fragment = true) {
    std::string frame;
    frame.push_back(static_cast<char>((final_fragment ? 0x80 : 0x00) | opcode));
    const std::size_t n = payload.size();
    if (n < 126) {
      frame.push_back(static_cast<char>(0x80 | n));
    } else if (n < 65536) {
      frame.push_back(static_cast<char>(0x80 | 126));
      frame.push_back(static_cast<char>(n >> 8));
      frame.push_back(static_cast<char>(n & 0xFF));
    } else {
      frame.push_back(static_cast<char>(0x80 | 127));
      for (int shift = 56; shift >= 0; shift -= 8) frame.push_back(static_cast<char>((n >> shift) & 0xFF));
    }
    const char mask[4] = {0x12, 0x34, 0x56, 0x78};
    frame.append(mask, 4);
    for (std::size_t i = 0; i < n; ++i) frame.push_back(static_cast<char>(payload[i] ^ mask[i % 4]));
    asio::write(socket_, asio::buffer(frame));
  }
  void send_text(const std::string& text) { send_frame(0x1, text); }
  // Bytes as they are: frames that break the rules.
  void send_raw(const std::string& bytes) { asio::write(socket_, asio::buffer(bytes)); }

  // Reads the next server frame (unmasked), or nothing within the timeout or
  // at the end of the stream.
  std::optional<Frame> read_frame(std::chrono::milliseconds timeout = wait_limit) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    auto read_at_least = [&](std::size_t n) {
      while (input_.size() < n) {
        auto result = read_before(io_, socket_, deadline, [&](auto handler) {
          asio::async_read(socket_, input_, asio::transfer_at_least(n - input_.size()), handler);
        });
        if (!result || *result) return false;
      }
      return true;
    };
    if (!read_at_least(2)) return std::nullopt;
    auto bytes = [&](std::size_t i) {
      return static_cast<std::uint8_t>(static_cast<const char*>(input_.data().data())[i]);
    };
    Frame f;
    f.opcode = bytes(0) & 0x0F;
    std::size_t length = bytes(1) & 0x7F, header = 2;
    if (length == 126) {
      if (!read_at_least(4)) return std::nullopt;
      length = (std::size_t(bytes(2)) << 8) | bytes(3);
      header = 4;
    } else if (length == 127) {
      if (!read_at_least(10)) return std::nullopt;
      length = 0;
      for (std::size_t i = 2; i < 10; ++i) length = (length << 8) | bytes(i);
      header = 10;
    }
    if (!read_at_least(header + length)) return std::nullopt;
    const char* data = static_cast<const char*>(input_.data().data());
    f.payload.assign(data + header, length);
    input_.consume(header + length);
    return f;
  }

  // Reads frames until a close frame and returns it (nothing when none came).
  std::optional<Frame> read_close_frame(std::chrono::milliseconds timeout = wait_limit) {
    while (auto f = read_frame(timeout))
      if (f->opcode == 0x8) return f;
    return std::nullopt;
  }
  // Reads frames until a close frame; returns its code (0 when none came).
  int read_close_code(std::chrono::milliseconds timeout = wait_limit) {
    auto f = read_close_frame(timeout);
    if (!f) return 0;
    if (f->payload.size() < 2) return 1005;
    return (static_cast<std::uint8_t>(f->payload[0]) << 8) | static_cast<std::uint8_t>(f->payload[1]);
  }

 private:
  std::string local_address_;
  asio::io_context io_;
  asio::ip::tcp::socket socket_{io_};
  asio::streambuf input_;
};

// A TCP connection that sends nothing: a client stuck before its handshake,
// or one the server refuses as soon as it takes it.
class SilentConnection {
 public:
  // From `local_address` when given (see RawWebSocket).
  explicit SilentConnection(std::uint16_t port, const std::string& local_address = {}) {
    socket_.open(asio::ip::tcp::v4());
    if (!local_address.empty()) socket_.bind({asio::ip::make_address(local_address), 0});
    socket_.connect({asio::ip::make_address("127.0.0.1"), port});
  }

  // True when the server ends the connection (end of stream or reset)
  // within the timeout; bytes it sends first are read and dropped.
  bool closed_by_server(std::chrono::milliseconds timeout = wait_limit) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    std::array<char, 4096> scratch;
    while (true) {
      auto result = read_before(io_, socket_, deadline,
                                [&](auto handler) { socket_.async_read_some(asio::buffer(scratch), handler); });
      if (!result) return false;
      if (*result) return *result != asio::error::operation_aborted;
    }
  }

 private:
  asio::io_context io_;
  asio::ip::tcp::socket socket_{io_};
};

// Sends `request` as it is on a new connection; returns the response's
// status line and headers (nothing when none came within the wait limit).
inline std::string http_response_head(std::uint16_t port, const std::string& request) {
  asio::io_context io;
  asio::ip::tcp::socket socket(io);
  socket.connect({asio::ip::make_address("127.0.0.1"), port});
  asio::write(socket, asio::buffer(request));
  std::string response;
  bool done = false;
  std::error_code result;
  asio::async_read_until(socket, asio::dynamic_buffer(response), "\r\n\r\n", [&](std::error_code ec, std::size_t) {
    result = ec;
    done = true;
  });
  if (!run_until(io, done) || result) return {};
  return response.substr(0, response.find("\r\n\r\n") + 4);
}

// A plain HTTP/1.1 GET; returns the whole response (status line, headers, body).
inline std::string http_get(std::uint16_t port, const std::string& target) {
  asio::io_context io;
  asio::ip::tcp::socket socket(io);
  socket.connect({asio::ip::make_address("127.0.0.1"), port});
  std::string request = "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  asio::write(socket, asio::buffer(request));
  std::string response;
  bool done = false;
  asio::async_read(socket, asio::dynamic_buffer(response), [&](std::error_code, std::size_t) { done = true; });
  if (!run_until(io, done)) return {};
  return response;
}

}  // namespace livecast_test
