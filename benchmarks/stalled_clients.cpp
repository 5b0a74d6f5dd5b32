// livecast-stalled-clients: WebSocket clients that subscribe and then never
// read again, for scenario F of benchmarks/run (stalled readers beside normal
// ones). Each opens a livecast.v1 connection with a small kernel receive
// buffer (SO_RCVBUF, set before connect so the window it advertises stays
// small), subscribes to t0..t{K-1}, reads the K replies, and stops reading:
// what the server publishes from then on piles up in the session's send
// queue, the transport's hand-off to the socket and the two kernels' buffers,
// each bounded by a server setting. That is what the scenario measures.
//
//   livecast-stalled-clients --port P --connections N --topics K
//       [--receive-buffer BYTES] [--host H] [--path /ws] [--token T]
//       [--in-flight N] [--connect-timeout-seconds S]
//
// Prints one JSON line once every connection is subscribed (or has failed, or
// the connect timeout passed), then holds the connections, reading nothing and
// answering no ping, until SIGTERM or SIGINT. Exits 0 when all subscribed.
// One thread; source addresses rotate over 127.0.0.1-127.0.0.250.
#include "client_frame.hpp"
#include "client_handshake.hpp"
#include "command_line.hpp"
#include "loopback_source.hpp"
#include "open_files.hpp"
#include "server_frame.hpp"

#include <asio.hpp>

#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace {

struct Options {
  std::string host = "127.0.0.1";
  unsigned short port = 9000;
  std::string path = "/ws";
  std::string token;
  std::size_t connections = 1000;
  std::size_t topics = 1;
  int receive_buffer = 4096;
  std::size_t in_flight = 128;  // handshakes at once
  double connect_timeout_seconds = 60;
};

[[noreturn]] void usage(int code) {
  std::cerr << "usage: livecast-stalled-clients --port P [--connections N] [--topics K] [--receive-buffer BYTES]\n"
               "                                [--host H] [--path /ws] [--token T] [--in-flight N]\n"
               "                                [--connect-timeout-seconds S]\n";
  std::exit(code);
}

Options parse(int argc, char** argv) {
  Options o;
  livecast_bench::CommandLine flags;
  auto at_least_1 = [](const std::string& v) { return std::max<std::size_t>(1, std::stoul(v)); };
  flags.options["--host"] = [&](const std::string& v) { o.host = v; };
  flags.options["--port"] = [&](const std::string& v) { o.port = static_cast<unsigned short>(std::stoul(v)); };
  flags.options["--path"] = [&](const std::string& v) { o.path = v; };
  flags.options["--token"] = [&](const std::string& v) { o.token = v; };
  flags.options["--connections"] = [&](const std::string& v) { o.connections = std::stoul(v); };
  flags.options["--topics"] = [&](const std::string& v) { o.topics = at_least_1(v); };
  flags.options["--receive-buffer"] = [&](const std::string& v) { o.receive_buffer = std::stoi(v); };
  flags.options["--in-flight"] = [&](const std::string& v) { o.in_flight = at_least_1(v); };
  flags.options["--connect-timeout-seconds"] = [&](const std::string& v) { o.connect_timeout_seconds = std::stod(v); };
  flags.parse(argc, argv, usage);
  // Replies carry ids 1..K; livecast's default allows 100 subscriptions and
  // a burst of 100 messages per session.
  if (o.topics > 100 || o.receive_buffer <= 0) usage(2);
  if (!o.token.empty()) o.path += (o.path.find('?') == std::string::npos ? "?token=" : "&token=") + o.token;
  return o;
}

struct Counters {
  std::size_t connected = 0, subscribed = 0, failed = 0;
  int receive_buffer_bytes = 0;  // what the kernel made of --receive-buffer
};

class StalledClient : public std::enable_shared_from_this<StalledClient> {
 public:
  StalledClient(asio::io_context& io, const Options& o, Counters& c, std::size_t index)
      : socket_(io), options_(o), counters_(c), index_(index),
        mask_(static_cast<std::uint32_t>(index * 2654435761u) | 1u) {}

  // `done` runs once: subscribed to every topic, or failed.
  void start(std::function<void()> done) {
    done_ = std::move(done);
    std::error_code ec = livecast_bench::open_on_loopback_source(socket_, index_);
    // Before connect: the window scale is agreed in the SYN, from this size.
    if (!ec) socket_.set_option(asio::socket_base::receive_buffer_size(options_.receive_buffer), ec);
    if (ec) return finish(false);
    const asio::ip::tcp::endpoint server(asio::ip::make_address(options_.host), options_.port);
    socket_.async_connect(server, [self = shared_from_this()](std::error_code ec) {
      if (ec) return self->finish(false);
      self->write(livecast_bench::upgrade_request(self->options_.path, self->options_.host));
      self->read_upgrade();
    });
  }

  // The kernel's figure, which on Linux is twice the one asked for (room for
  // its bookkeeping); Asio's get_option would halve it back.
  int receive_buffer_bytes() {
    int size = 0;
    socklen_t length = sizeof size;
    return ::getsockopt(socket_.native_handle(), SOL_SOCKET, SO_RCVBUF, &size, &length) == 0 ? size : 0;
  }

  void close() {
    std::error_code ignored;
    socket_.close(ignored);
  }

 private:
  void write(std::string bytes) {
    auto out = std::make_shared<std::string>(std::move(bytes));
    asio::async_write(socket_, asio::buffer(*out), [self = shared_from_this(), out](std::error_code ec, std::size_t) {
      if (ec) self->finish(false);
    });
  }

  void read_upgrade() {
    asio::async_read_until(socket_, asio::dynamic_buffer(buffer_), "\r\n\r\n",
                           [self = shared_from_this()](std::error_code ec, std::size_t n) {
                             if (ec || !livecast_bench::upgrade_accepted(self->buffer_)) return self->finish(false);
                             ++self->counters_.connected;
                             self->buffer_.erase(0, n);
                             self->subscribe();
                           });
  }

  // Every subscribe in one write; the replies carry ids 1..K.
  void subscribe() {
    std::string frames;
    for (std::size_t t = 0; t < options_.topics; ++t)
      frames += livecast_bench::client_frame(livecast_bench::text_opcode,
                                             R"({"op":"subscribe","id":)" + std::to_string(t + 1) + R"(,"topic":"t)" +
                                                 std::to_string(t) + "\"}",
                                             mask_);
    write(std::move(frames));
    read_replies();
  }

  // Reads until every reply has come; publications and notices in between
  // are skipped. Then reads no more.
  void read_replies() {
    std::size_t consumed = 0;
    while (auto frame = livecast_bench::next_server_frame(std::string_view(buffer_).substr(consumed))) {
      consumed += frame->size;
      if (frame->close()) return finish(false);
      if (!frame->text() || frame->payload.substr(0, 6) != R"({"id":)") continue;
      if (frame->payload.find(R"("error")") != std::string_view::npos) return finish(false);
      if (++replies_ == options_.topics) return finish(true);
    }
    buffer_.erase(0, consumed);
    constexpr std::size_t chunk = 2048;
    const std::size_t old = buffer_.size();
    buffer_.resize(old + chunk);
    socket_.async_read_some(asio::buffer(&buffer_[old], chunk),
                            [self = shared_from_this(), old](std::error_code ec, std::size_t n) {
                              self->buffer_.resize(old + n);
                              if (ec) return self->finish(false);
                              self->read_replies();
                            });
  }

  void finish(bool subscribed) {
    auto done = std::move(done_);
    done_ = nullptr;
    if (!done) return;
    if (subscribed) {
      ++counters_.subscribed;
      if (counters_.receive_buffer_bytes == 0) counters_.receive_buffer_bytes = receive_buffer_bytes();
    } else {
      ++counters_.failed;
      close();
    }
    buffer_.clear();
    buffer_.shrink_to_fit();
    done();
  }

  asio::ip::tcp::socket socket_;
  const Options& options_;
  Counters& counters_;
  std::size_t index_;
  std::uint32_t mask_;
  std::string buffer_;
  std::size_t replies_ = 0;
  std::function<void()> done_;
};

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  const std::size_t open_files = livecast_bench::raise_open_file_limit();
  if (o.connections + 64 > open_files) {
    std::cerr << "livecast-stalled-clients: " << o.connections << " connections exceed the open-file limit "
              << open_files << "\n";
    return 2;
  }
  std::signal(SIGPIPE, SIG_IGN);

  asio::io_context io(1);
  Counters counters;
  std::vector<std::shared_ptr<StalledClient>> clients;
  clients.reserve(o.connections);
  const auto started = std::chrono::steady_clock::now();
  asio::steady_timer connect_deadline(io);

  bool reported = false;
  auto report = [&] {
    if (reported) return;
    reported = true;
    connect_deadline.cancel();
    const double setup_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    std::printf("{\"connections\":%zu,\"topics\":%zu,\"receive_buffer_requested\":%d,\"receive_buffer_bytes\":%d,"
                "\"connected\":%zu,\"subscribed\":%zu,\"failed\":%zu,\"setup_s\":%.2f}\n",
                o.connections, o.topics, o.receive_buffer, counters.receive_buffer_bytes, counters.connected,
                counters.subscribed, counters.failed, setup_s);
    std::fflush(stdout);
  };

  // At most in_flight handshakes at once, so the server's accept queue and
  // pending-handshake limit are not overrun; each finished one starts the next.
  std::size_t next = 0, finished = 0;
  std::function<void()> start_next = [&] {
    if (next >= o.connections) return;
    auto client = std::make_shared<StalledClient>(io, o, counters, next++);
    clients.push_back(client);
    client->start([&] {
      if (++finished == o.connections) report();
      asio::post(io, start_next);
    });
  };
  for (std::size_t i = 0; i < o.in_flight; ++i) start_next();
  if (o.connections == 0) report();
  connect_deadline.expires_after(std::chrono::milliseconds(static_cast<long>(o.connect_timeout_seconds * 1000)));
  connect_deadline.async_wait([&](std::error_code ec) {
    if (!ec) report();
  });

  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](std::error_code, int) {
    for (auto& c : clients) c->close();
    io.stop();
  });
  io.run();
  return counters.subscribed == o.connections ? 0 : 1;
}
