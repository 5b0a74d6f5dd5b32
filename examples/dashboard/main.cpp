// livecast-dashboard: a simulated payments service that pushes live KPIs,
// transactions and alerts to browser dashboards, with per-org topics and
// role-based access. Run it and open the printed URL.
#include "demo_access.hpp"
#include "payment_simulation.hpp"
#include "web_server.hpp"

#include <livecast/livecast.hpp>
#ifdef LIVECAST_DASHBOARD_WITH_REDIS
#include <livecast/redis_backend.hpp>
#endif

#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/signal_set.hpp>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

namespace {

struct Options {
  std::string address = "0.0.0.0";
  std::uint16_t port = 8080;
  std::uint16_t http_port = 0;             // SSE and long-polling on a second port too; 0: none
  bool refuse_websocket = false;           // lets a browser test check the HTTP fallbacks
  bool refuse_sse = false;                 // and, with both, long-polling
  std::size_t threads = std::max(1u, std::thread::hardware_concurrency());
  std::string backend = "inprocess";  // or "redis": several instances share one Redis
  std::string redis_url = "redis://127.0.0.1:6379";
  std::string jwt_secret;                     // HS256 JWTs instead of the demo tokens
  std::vector<std::string> allowed_origins;   // empty: any page may connect
  std::string tls_cert, tls_key;              // both: https:// and wss:// on every port
  unsigned long drain_seconds = 10;           // SIGTERM/SIGINT: close sessions over this long (Broker::drain); 0: at once
  double max_session_share = 0;               // RebalanceSettings::max_session_share; 0: off
};

void print_usage(std::ostream& out) {
  out << "usage: livecast-dashboard [--port N] [--http-port N] [--refuse-websocket] [--refuse-sse] [--address ADDR]\n"
         "                          [--threads N] [--drain-seconds N] [--max-session-share F]"
#ifdef LIVECAST_DASHBOARD_WITH_REDIS
         " [--backend inprocess|redis] [--redis URL]"
#endif
         "\n\n"
         "  --port N        TCP port for everything: the page, the WebSocket (/ws), SSE (/sse),\n"
         "                  long-polling (/poll) and Socket.IO (/socket.io/) (default 8080)\n"
         "  --http-port N   a second port with the page, SSE and long-polling (default 0: none)\n"
         "  --refuse-websocket  refuse every WebSocket upgrade, so browsers fall back to SSE or polling\n"
         "  --refuse-sse    refuse SSE streams too (404), so browsers fall back to long-polling\n"
         "  --address ADDR  address to bind (default 0.0.0.0; 127.0.0.1 for this machine only)\n"
         "  --threads N     broker threads (default: the number of cores)\n"
         "  --drain-seconds N  on SIGTERM or SIGINT, close the sessions over N seconds, each told to\n"
         "                  reconnect after a delay of its own, then stop (default 10; 0 closes\n"
         "                  them all at once with 1001; a second signal stops at once)\n"
         "  --max-session-share F  with instances sharing Redis: shed sessions (4012) while this one\n"
         "                  holds more than F (0-1) of them all (default 0: off)\n"
#ifdef LIVECAST_DASHBOARD_WITH_REDIS
         "  --backend NAME  inprocess (default) or redis: instances on different ports share one Redis\n"
         "  --redis URL     the Redis server for --backend redis (default redis://127.0.0.1:6379)\n"
#endif
         "  --jwt-secret S  accept HS256 JWTs signed with S (32 bytes or more; claims sub, org, role)\n"
         "                  instead of the demo tokens; prints a token for each demo user\n"
         "  --allowed-origin O  a page origin allowed to connect, e.g. https://dash.example.com\n"
         "                  (repeatable; default: any)\n"
         "  --tls-cert F --tls-key F  serve https:// and wss:// with this certificate chain and key\n"
         "                  (PEM; reloaded when the files change)\n"
         "  --help          show this help\n";
}

std::optional<unsigned long> parse_number(const std::string& text, unsigned long min, unsigned long max) {
  if (text.empty() || text.find_first_not_of("0123456789") != std::string::npos || text.size() > 9)
    return std::nullopt;
  unsigned long value = std::stoul(text);
  if (value < min || value > max) return std::nullopt;
  return value;
}

// Accepts "--flag value" and "--flag=value". Exits on --help or a bad flag.
Options parse_options(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i], value;
    if (arg == "--help" || arg == "-h") {
      print_usage(std::cout);
      std::exit(0);
    }
    if (auto eq = arg.find('='); eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg.resize(eq);
    } else if (arg == "--port" || arg == "--http-port" || arg == "--address" || arg == "--threads" ||
               arg == "--drain-seconds" || arg == "--max-session-share" ||
               arg == "--backend" || arg == "--redis" || arg == "--jwt-secret" || arg == "--allowed-origin" ||
               arg == "--tls-cert" || arg == "--tls-key") {
      if (i + 1 >= argc) {
        std::cerr << "livecast-dashboard: " << arg << " needs a value\n";
        std::exit(2);
      }
      value = argv[++i];
    }
    if (arg == "--port") {
      auto port = parse_number(value, 1, 65535);
      if (!port) {
        std::cerr << "livecast-dashboard: --port must be 1-65535, not '" << value << "'\n";
        std::exit(2);
      }
      options.port = static_cast<std::uint16_t>(*port);
    } else if (arg == "--http-port") {
      auto port = parse_number(value, 0, 65535);
      if (!port) {
        std::cerr << "livecast-dashboard: --http-port must be 0-65535, not '" << value << "'\n";
        std::exit(2);
      }
      options.http_port = static_cast<std::uint16_t>(*port);
    } else if (arg == "--refuse-websocket") {
      options.refuse_websocket = true;
    } else if (arg == "--refuse-sse") {
      options.refuse_sse = true;
    } else if (arg == "--threads") {
      auto threads = parse_number(value, 1, 1024);
      if (!threads) {
        std::cerr << "livecast-dashboard: --threads must be 1-1024, not '" << value << "'\n";
        std::exit(2);
      }
      options.threads = *threads;
    } else if (arg == "--drain-seconds") {
      auto seconds = parse_number(value, 0, 3600);
      if (!seconds) {
        std::cerr << "livecast-dashboard: --drain-seconds must be 0-3600, not '" << value << "'\n";
        std::exit(2);
      }
      options.drain_seconds = *seconds;
    } else if (arg == "--max-session-share") {
      char* end = nullptr;
      const double share = std::strtod(value.c_str(), &end);
      if (value.empty() || *end != '\0' || !(share >= 0) || !(share < 1)) {
        std::cerr << "livecast-dashboard: --max-session-share must be in [0, 1), not '" << value << "'\n";
        std::exit(2);
      }
      options.max_session_share = share;
    } else if (arg == "--address" && !value.empty()) {
      options.address = value;
    } else if (arg == "--jwt-secret") {
      if (value.size() < 32) {
        std::cerr << "livecast-dashboard: --jwt-secret must be at least 32 bytes (RFC 7518 for HS256)\n";
        std::exit(2);
      }
      options.jwt_secret = value;
    } else if (arg == "--allowed-origin" && !value.empty()) {
      options.allowed_origins.push_back(value);
    } else if (arg == "--tls-cert" && !value.empty()) {
      options.tls_cert = value;
    } else if (arg == "--tls-key" && !value.empty()) {
      options.tls_key = value;
#ifdef LIVECAST_DASHBOARD_WITH_REDIS
    } else if (arg == "--backend") {
      if (value != "inprocess" && value != "redis") {
        std::cerr << "livecast-dashboard: --backend must be inprocess or redis, not '" << value << "'\n";
        std::exit(2);
      }
      options.backend = value;
    } else if (arg == "--redis" && !value.empty()) {
      options.redis_url = value;
#endif
    } else {
      std::cerr << "livecast-dashboard: unknown option '" << argv[i] << "'\n";
      print_usage(std::cerr);
      std::exit(2);
    }
  }
  if (options.tls_cert.empty() != options.tls_key.empty()) {
    std::cerr << "livecast-dashboard: --tls-cert and --tls-key go together\n";
    std::exit(2);
  }
  return options;
}

// Where a browser on this machine reaches a server bound to `address`.
std::string page_url(const Options& options, std::uint16_t port) {
  std::string host = options.address;
  if (host == "0.0.0.0" || host == "::" || host.empty()) host = "localhost";
  else if (host.find(':') != std::string::npos) host = "[" + host + "]";
  return (options.tls_cert.empty() ? "http://" : "https://") + host + ":" + std::to_string(port) + "/";
}

}  // namespace

int main(int argc, char** argv) {
  const Options options = parse_options(argc, argv);

  // Socket.IO clients (socket.io-client 4.x, Engine.IO v4) are served here,
  // on the port's WebSocket upgrades and, with the HTTP transport, polling.
  const std::string socketio_path = "/socket.io/";

  livecast::BrokerSettings settings;
  settings.threads = options.threads;
  // livecast.v1 stays the default; Socket.IO clients are told apart by their
  // path, and a publication reaches them as the event named after its topic.
  // With Socket.IO's connection state recovery: a client whose connection
  // dropped for less than two minutes gets what it missed (socket.recovered).
  livecast::SocketIoSettings socketio;
  socketio.connection_state_recovery = true;
  settings.protocols = {livecast::make_livecast_v1_protocol(), livecast::make_socketio_protocol(std::move(socketio))};
  // A Socket.IO client's token comes in its CONNECT's `auth: {token}`, which
  // HandshakeRequest::token() returns first: the same Authenticator serves both.
  settings.authenticator = dashboard::mark_socketio_clients(
      options.jwt_secret.empty() ? dashboard::demo_authenticator()
                                 : dashboard::demo_jwt_authenticator(options.jwt_secret),
      socketio_path);
  settings.authorizer = dashboard::demo_authorizer();
  settings.server_joins = dashboard::demo_server_joins;
  settings.rebalance.max_session_share = options.max_session_share;
  settings.on_error = [](const std::string& what, std::error_code ec) {
    std::fprintf(stderr, "livecast: %s: %s\n", what.c_str(), ec.message().c_str());
  };
  std::unique_ptr<livecast::Backend> backend;  // null: in-process
#ifdef LIVECAST_DASHBOARD_WITH_REDIS
  if (options.backend == "redis") {
    livecast::RedisBackendSettings redis;
    redis.url = options.redis_url;
    std::unique_ptr<livecast::RedisBackend> r;
    try {
      r = std::make_unique<livecast::RedisBackend>(redis);
    } catch (const std::exception& e) {
      std::cerr << "livecast-dashboard: " << e.what() << "\n";
      return 2;
    }
    backend = std::move(r);
  }
#endif
  livecast::Broker broker(std::move(settings), std::move(backend));
  broker.start();
#ifdef LIVECAST_DASHBOARD_WITH_REDIS
  if (options.backend == "redis" &&
      !static_cast<livecast::RedisBackend&>(broker.backend()).wait_connected(std::chrono::seconds(5)))
    std::cerr << "livecast-dashboard: no answer from " << options.redis_url << " yet; retrying in the background\n";
#endif

  // One port for everything: the HTTP transport takes every request and
  // hands WebSocket upgrades to the WebSocket transport, which has no port
  // of its own.
  livecast::WebSocketSettings ws;
  ws.listen = false;
  // No upgrade is ever asked for on these paths, so every one to /ws or
  // /socket.io/ gets 404.
  ws.path = options.refuse_websocket ? "/ws-refused" : "/ws";
  ws.socketio_path = options.refuse_websocket ? "/socket.io-refused/" : socketio_path;
  ws.allowed_origins = options.allowed_origins;
  livecast::WebSocketTransport websocket(broker, std::move(ws));
  // /metrics (Prometheus), /healthz and /readyz; the transports join below.
  livecast::MetricsExporter exporter(broker);
  const dashboard::WebEndpoints endpoints{options.port, options.http_port, !options.tls_cert.empty()};
  auto http_settings = [&](std::uint16_t port) {
    livecast::HttpTransportSettings h;
    h.address = options.address;
    h.port = port;
    h.http_handler = dashboard::make_web_handler(broker, exporter, endpoints);
    if (options.refuse_sse) h.sse_path = "/sse-refused";  // GET /sse then gets the page handler's 404
    h.socketio_path = socketio_path;
    h.allowed_origins = options.allowed_origins;
    // TLS ends here, on the HTTP transport; WebSocket upgrades are handed
    // over with their TLS stream.
    if (!options.tls_cert.empty()) {
      livecast::TlsSettings tls;
      tls.cert_file = options.tls_cert;
      tls.key_file = options.tls_key;
      h.tls = tls;
    }
    return h;
  };
  livecast::HttpTransport http(broker, http_settings(options.port));
  http.serve_websocket(websocket);
  exporter.add(websocket);
  exporter.add(http);
  // A second port with the page and the HTTP fallbacks, if asked for.
  std::optional<livecast::HttpTransport> second;
  if (options.http_port != 0) {
    second.emplace(broker, http_settings(options.http_port));
    exporter.add(*second);
  }
  try {
    websocket.start();
    http.start();
  } catch (const std::exception& e) {
    std::cerr << "livecast-dashboard: cannot listen on " << options.address << ":" << options.port << ": "
              << e.what() << "\n";
    return 1;
  }
  try {
    if (second) second->start();
  } catch (const std::exception& e) {
    std::cerr << "livecast-dashboard: cannot listen on " << options.address << ":" << options.http_port << ": "
              << e.what() << "\n";
    return 1;
  }

  // The host's own thread runs the simulation and waits for signals; the
  // broker's threads carry the connections.
  asio::io_context io;
  // Payments recorded into an Aggregator, summed up each second, 5 s and
  // minute (org:<org>:agg.<metric>.<window>) on its own thread; the KPI
  // tiles and charts are made from those summaries.
  dashboard::PaymentSimulation simulation(io, broker, dashboard::demo_org_profiles());
  simulation.start();

  const std::string url = page_url(options, options.port);
  std::cout << "livecast-dashboard " << LIVECAST_VERSION_STRING << ": " << url
            << (options.refuse_websocket ? " (WebSocket upgrades refused, " : " (WebSocket on /ws, ")
            << (options.refuse_sse ? "SSE refused, " : "SSE on /sse, ") << "long-polling on /poll, Socket.IO on "
            << socketio_path << ", "
            << (second ? "the fallbacks also on " + page_url(options, options.http_port) + ", " : std::string())
            << options.threads << (options.threads == 1 ? " thread" : " threads")
            << (options.backend == "redis" ? ", Redis backend " + options.redis_url : std::string()) << ")\n\n"
            << "Open the dashboard as one of the demo users:\n";
  for (const std::string& user : dashboard::demo_tokens()) {
    // With --jwt-secret, what an identity provider would issue: valid 8 h.
    const std::string token = options.jwt_secret.empty()
                                  ? user
                                  : dashboard::mint_demo_jwt(options.jwt_secret, user, std::chrono::hours(8));
    std::cout << "  " << url << "?token=" << token;
    if (!options.jwt_secret.empty()) std::cout << "   (" << user << ")";
    if (user.rfind("viewer-", 0) == 0) std::cout << "   (no transaction feed)";
    std::cout << "\n";
  }
  std::cout << "\nThe same page on socket.io-client: add &client=socketio to any of these URLs.\n"
            << "\nPress Ctrl+C to stop." << std::endl;

  // The first SIGTERM or SIGINT drains: readiness turns false, new clients
  // get 503, and the sessions are closed over --drain-seconds, each told
  // when to come back (4012), so that a restart is not a stampede. The
  // second stops at once.
  asio::signal_set signals(io, SIGINT, SIGTERM);
  bool stopped = false;
  auto stop = [&] {
    if (stopped) return;
    stopped = true;
    signals.cancel();
    simulation.stop();
    if (second) second->stop();
    http.stop();        // ends what is left of SSE streams and polls with 1001 "going away"
    websocket.stop();   // and of WebSocket sessions
    broker.stop();
  };
  std::function<void(std::error_code, int)> on_signal = [&](std::error_code ec, int) {
    if (ec || stopped) return;
    if (broker.metrics().draining || options.drain_seconds == 0) {
      std::cout << "stopping now" << std::endl;
      stop();
      return;
    }
    std::cout << "\ndraining over " << options.drain_seconds << " s (signal again to stop at once)..." << std::endl;
    livecast::DrainSettings drain;
    drain.duration = std::chrono::seconds(options.drain_seconds);
    // `done` may run on a broker thread, which must not stop the broker.
    broker.drain(drain, [&io, &stop, &stopped] {
      asio::post(io, [&stop, &stopped] {
        if (stopped) return;
        std::cout << "drained; stopping" << std::endl;
        stop();
      });
    });
    signals.async_wait(on_signal);
  };
  signals.async_wait(on_signal);
  io.run();
  return 0;
}
