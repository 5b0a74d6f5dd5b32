// livecast-bench-naive: the "before" picture for benchmarks/run. The broadcast
// server most people write first with websocketpp: the default asio config, a
// std::map<topic, std::set<connection_hdl>>, and server.send(hdl, string) per
// subscriber, which copies and frames the payload once per subscriber. One
// thread. It serves the same workload as livecast-bench-server:
//
//   livecast-bench-naive --port 9000 --topics 1 --rate 20 --payload 100
//
// Clients send the livecast.v1 subscribe op ({"op":"subscribe","id":1,
// "topic":"t0"}) and get {"id":1,"ok":{"topic":"t0"}}; publications are
// {"topic":"t0","offset":N,"data":{"ts":...,"seq":...,"pad":"..."}}.
// SIGUSR2 doubles the rate, like livecast-bench-server; with --paused the
// first SIGUSR2 starts the publications.
#include <websocketpp/config/asio_no_tls.hpp>
#include <websocketpp/server.hpp>

#include <asio/signal_set.hpp>

#include <csignal>
#include <cstdio>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "command_line.hpp"
#include "grid_publisher.hpp"

namespace {

using Server = websocketpp::server<websocketpp::config::asio>;

struct Options {
  std::uint16_t port = 9000;
  std::size_t topics = 1;
  double rate = 20;
  std::size_t payload = 100;
  bool print_port = false;
  bool paused = false;
};

[[noreturn]] void usage(int code) {
  std::cerr << "usage: livecast-bench-naive [--port N] [--topics K] [--rate R] [--payload BYTES] [--print-port]\n"
               "                            [--paused]\n";
  std::exit(code);
}

Options parse(int argc, char** argv) {
  Options o;
  livecast_bench::CommandLine flags;
  flags.switches["--print-port"] = [&] { o.print_port = true; };
  flags.switches["--paused"] = [&] { o.paused = true; };
  flags.options["--port"] = [&](const std::string& v) { o.port = static_cast<std::uint16_t>(std::stoul(v)); };
  flags.options["--topics"] = [&](const std::string& v) { o.topics = std::stoul(v); };
  flags.options["--rate"] = [&](const std::string& v) { o.rate = std::stod(v); };
  flags.options["--payload"] = [&](const std::string& v) { o.payload = std::stoul(v); };
  flags.parse(argc, argv, usage);
  return o;
}

// The string value of "topic" in a subscribe request; "" when absent. A
// benchmark peer, so no JSON parser: the load generator sends one fixed shape.
std::string topic_of(const std::string& request) {
  const std::string key = "\"topic\":\"";
  auto at = request.find(key);
  if (at == std::string::npos) return {};
  at += key.size();
  auto end = request.find('"', at);
  return end == std::string::npos ? std::string() : request.substr(at, end - at);
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  Server server;
  // Default settings otherwise; only the console logging goes, since it would
  // print a line per connection.
  server.clear_access_channels(websocketpp::log::alevel::all);
  server.clear_error_channels(websocketpp::log::elevel::all);
  server.init_asio();
  server.set_reuse_addr(true);

  std::map<std::string, std::set<websocketpp::connection_hdl, std::owner_less<websocketpp::connection_hdl>>> topics;
  std::map<websocketpp::connection_hdl, std::string, std::owner_less<websocketpp::connection_hdl>> topic_of_connection;

  server.set_message_handler([&](websocketpp::connection_hdl hdl, Server::message_ptr msg) {
    std::string topic = topic_of(msg->get_payload());
    if (topic.empty()) return;
    topics[topic].insert(hdl);
    topic_of_connection[hdl] = topic;
    websocketpp::lib::error_code ec;
    server.send(hdl, "{\"id\":1,\"ok\":{\"topic\":\"" + topic + "\"}}", websocketpp::frame::opcode::text, ec);
  });
  server.set_close_handler([&](websocketpp::connection_hdl hdl) {
    auto it = topic_of_connection.find(hdl);
    if (it == topic_of_connection.end()) return;
    topics[it->second].erase(hdl);
    topic_of_connection.erase(it);
  });

  server.listen(asio::ip::tcp::v4(), o.port);
  server.start_accept();
  if (o.print_port) {
    websocketpp::lib::asio::error_code ec;
    std::printf("%u\n", static_cast<unsigned>(server.get_local_endpoint(ec).port()));
    std::fflush(stdout);
  }
  std::fprintf(stderr, "livecast-bench-naive on port %u, %zu topics x %.1f/s, %zu B payloads\n",
               static_cast<unsigned>(o.port), o.topics, o.rate, o.payload);

  asio::io_context& io = server.get_io_service();
  std::uint64_t offset = 0;
  livecast_bench::GridPublisher publisher(io, o.rate, o.payload, o.paused, [&](const std::string& data) {
    ++offset;
    for (std::size_t t = 0; t < o.topics; ++t) {
      const std::string topic = "t" + std::to_string(t);
      const std::string message =
          "{\"topic\":\"" + topic + "\",\"offset\":" + std::to_string(offset) + ",\"data\":" + data + "}";
      auto it = topics.find(topic);
      if (it == topics.end()) continue;
      for (const auto& hdl : it->second) {
        websocketpp::lib::error_code ec;
        server.send(hdl, message, websocketpp::frame::opcode::text, ec);
      }
    }
  });

  asio::signal_set stop(io, SIGINT, SIGTERM);
  stop.async_wait([&](const asio::error_code&, int) {
    publisher.stop();
    server.stop_listening();
    websocketpp::lib::error_code ec;
    for (auto& [hdl, topic] : topic_of_connection) server.close(hdl, websocketpp::close::status::going_away, "", ec);
    io.stop();
  });
  server.run();
}
