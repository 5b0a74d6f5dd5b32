// livecast-react-dashboard: the dashboard demo's payments simulation and
// access rules (examples/dashboard) behind a page written with the React hooks
// of @livecast/react (web/src). The broker is a shard on this program's
// io_context, so connections, page and simulation share one thread; the
// Aggregator sums up on a thread of its own. Run it and open the printed URL.
#include "demo_access.hpp"
#include "payment_simulation.hpp"
#include "web_assets.hpp"
#include "web_server.hpp"

#include <livecast/livecast.hpp>

#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>

#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <string>
#include <string_view>
#include <system_error>

namespace react_dashboard {
// The page under web/ (index.html and dist/), generated into this namespace
// by examples/dashboard/embed_web_assets.cmake.
const dashboard::WebAsset* find_web_asset(std::string_view path) noexcept;
}  // namespace react_dashboard

namespace {

struct Options {
  std::string address = "127.0.0.1";
  std::uint16_t port = 8080;  // 0: any free port (the printed URL says which)
};

[[noreturn]] void usage_error(const std::string& problem) {
  std::cerr << "livecast-react-dashboard: " << problem << "\n"
            << "usage: livecast-react-dashboard [--port N] [--address ADDR]\n";
  std::exit(2);
}

Options parse_options(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::cout << "usage: livecast-react-dashboard [--port N] [--address ADDR]\n\n"
                   "  --port N        TCP port for the page and the WebSocket (/ws); 0 picks a free one\n"
                   "                  (default 8080)\n"
                   "  --address ADDR  address to bind (default 127.0.0.1; 0.0.0.0 for every interface)\n";
      std::exit(0);
    }
    if (arg != "--port" && arg != "--address") usage_error("unknown option '" + arg + "'");
    if (i + 1 >= argc) usage_error(arg + " needs a value");
    const std::string value = argv[++i];
    if (arg == "--address") {
      options.address = value;
      continue;
    }
    char* end = nullptr;
    const unsigned long port = std::strtoul(value.c_str(), &end, 10);
    if (value.empty() || *end != '\0' || port > 65535) usage_error("--port must be 0-65535, not '" + value + "'");
    options.port = static_cast<std::uint16_t>(port);
  }
  return options;
}

}  // namespace

int main(int argc, char** argv) {
  const Options options = parse_options(argc, argv);
  asio::io_context io;

  // The dashboard demo's tokens ("analyst-acme") and rules: analysts and
  // admins may read the aggregates the page charts, viewers may not.
  livecast::BrokerSettings settings;
  settings.authenticator = dashboard::demo_authenticator();
  settings.authorizer = dashboard::demo_authorizer();
  settings.on_error = [](const std::string& what, std::error_code ec) {
    std::fprintf(stderr, "livecast: %s: %s\n", what.c_str(), ec.message().c_str());
  };
  livecast::Broker broker(io, std::move(settings));

  // One port: the HTTP transport serves the page and /config.json, and hands
  // WebSocket upgrades on /ws to the WebSocket transport.
  livecast::WebSocketSettings ws;
  ws.listen = false;
  livecast::WebSocketTransport websocket(broker, std::move(ws));
  livecast::MetricsExporter exporter(broker);
  livecast::HttpTransportSettings http_settings;
  http_settings.address = options.address;
  http_settings.port = options.port;
  // The demo's handler, with this page's files: /config.json names the host
  // and port the page was loaded from, whatever --port picked.
  http_settings.http_handler =
      dashboard::make_web_handler(broker, exporter, dashboard::WebEndpoints{}, react_dashboard::find_web_asset);
  livecast::HttpTransport http(broker, std::move(http_settings));
  http.serve_websocket(websocket);
  exporter.add(websocket);
  exporter.add(http);
  try {
    websocket.start();
    http.start();
  } catch (const std::exception& e) {
    std::cerr << "livecast-react-dashboard: cannot listen on " << options.address << ":" << options.port << ": "
              << e.what() << "\n";
    return 1;
  }

  // Transactions, KPIs and, through the simulation's Aggregator, the
  // per-second summaries of amount and latency_ms on
  // org:<org>:agg.<metric>.<window>.
  dashboard::PaymentSimulation simulation(io, broker, dashboard::demo_org_profiles());
  simulation.start();

  std::string host = options.address;
  if (host == "0.0.0.0" || host == "::") host = "localhost";
  else if (host.find(':') != std::string::npos) host = "[" + host + "]";
  const std::string url = "http://" + host + ":" + std::to_string(http.port()) + "/";
  std::cout << "livecast-react-dashboard " << LIVECAST_VERSION_STRING << ": " << url << "?token=analyst-acme\n"
            << "Other demo users: ?token=<role>-<org>, role admin, analyst or viewer (no transactions, no\n"
            << "aggregates), org acme or globex.\n"
            << "Press Ctrl+C to stop." << std::endl;

  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](std::error_code, int) {
    simulation.stop();
    http.stop();       // ends the HTTP side, then
    websocket.stop();  // sends every WebSocket client 1001 "going away"; run() returns once all is closed
  });
  io.run();
  return 0;
}
