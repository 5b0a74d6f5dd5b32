// livecast-socketio-test-server: livecast embedded as a host would embed it
// for Socket.IO clients, for the end-to-end tests in tests/socketio (the real
// socket.io-client, in Node and in headless Chromium). Public API only.
//
//   livecast-socketio-test-server [--port 0] [--redis host:port] [--ping-interval-ms N] ...
//
// One port (HttpTransport with a WebSocketTransport attached) serves
// /socket.io/ over WebSocket and Engine.IO polling, and livecast.v1 on /ws.
// When it listens it prints one JSON line on stdout,
//   {"ready":true,"port":<port>,"backend":"in-process"|"redis","tls":false,"pid":<pid>}
// and SIGTERM or SIGINT stops it (transports first, then the broker).
//
// What a test can rely on:
//  - auth: the token "good-<user>" (Socket.IO's `auth: {token}`, or any
//    place HandshakeRequest::token() reads) is principal <user>; anything
//    else is refused with the reason "invalid token";
//  - every principal is joined to "room:all", "room:user:<user>" and
//    "metrics" (a client that only listens for "metrics-update", as seed
//    003's hook does, receives it); anyone may subscribe to "room:*" and
//    "metrics";
//  - topic "metrics" arrives as the event "metrics-update" (the seed 003
//    hook pattern); every other topic as its own name;
//  - client events:
//      echo ...args         -> acknowledged with the same arguments
//      boom                 -> the handler throws (the client gets an error)
//      publish {topic,data} -> broker.publish(topic, data); ack [{"ok":true}]
//      kick user | {user, code, reason}
//                           -> broker.close_sessions(user, code (default
//                              1000), reason (default "kicked")); ack [{"ok":true}]
//      burst {topic, count} -> publishes {"i":0} .. {"i":count-1} on topic
//                              (count <= 10000); ack [{"ok":true}]
//      drain {duration_ms, reconnect_delay_max_ms}
//                           -> broker.drain(...): every session closed with
//                              4012 over duration_ms; ack [{"ok":true}]
//      stats                -> ack [{sessions_active, messages_received,
//                              errors_sent, callback_errors, errors:{code:n}}]
//      sessions user        -> ack [{opened, closed, last_close}]: the user's
//                              sessions as SessionHooks saw them; last_close
//                              is the server's close code, null when the
//                              client or the network ended the last one
//    anything else is refused (Errc::unknown_op).
#include <livecast/livecast.hpp>
#ifdef LIVECAST_SOCKETIO_TEST_WITH_REDIS
#include <livecast/redis_backend.hpp>
#endif

#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace {

struct Options {
  std::string address = "127.0.0.1";
  std::uint16_t port = 0;
  std::size_t threads = 2;
  std::string redis;  // host:port; empty: the in-process backend
  std::chrono::milliseconds ping_interval{25000};
  std::chrono::milliseconds idle_timeout{45000};
  std::chrono::milliseconds connect_timeout{10000};
  std::size_t max_message_bytes = 64 * 1024;
  unsigned max_messages_per_second = 50;
  std::string tls_cert, tls_key;  // both: https:// and wss:// on the one port
  bool recovery = false;           // Socket.IO's connection state recovery
};

[[noreturn]] void usage(int code) {
  (code == 0 ? std::cout : std::cerr)
      << "usage: livecast-socketio-test-server [--address A] [--port N] [--threads N] [--redis host:port]\n"
         "                                     [--ping-interval-ms N] [--idle-timeout-ms N]\n"
         "                                     [--connect-timeout-ms N] [--max-message-bytes N]\n"
         "                                     [--max-messages-per-second N] [--tls-cert F --tls-key F]\n"
         "                                     [--recovery]\n";
  std::exit(code);
}

Options parse(int argc, char** argv) {
  Options o;
  std::map<std::string, std::function<void(const std::string&)>> options{
      {"--address", [&](const std::string& v) { o.address = v; }},
      {"--port", [&](const std::string& v) { o.port = static_cast<std::uint16_t>(std::stoul(v)); }},
      {"--threads", [&](const std::string& v) { o.threads = std::stoul(v); }},
      {"--redis", [&](const std::string& v) { o.redis = v; }},
      {"--ping-interval-ms", [&](const std::string& v) { o.ping_interval = std::chrono::milliseconds(std::stoul(v)); }},
      {"--idle-timeout-ms", [&](const std::string& v) { o.idle_timeout = std::chrono::milliseconds(std::stoul(v)); }},
      {"--connect-timeout-ms",
       [&](const std::string& v) { o.connect_timeout = std::chrono::milliseconds(std::stoul(v)); }},
      {"--max-message-bytes", [&](const std::string& v) { o.max_message_bytes = std::stoul(v); }},
      {"--max-messages-per-second",
       [&](const std::string& v) { o.max_messages_per_second = static_cast<unsigned>(std::stoul(v)); }},
      {"--tls-cert", [&](const std::string& v) { o.tls_cert = v; }},
      {"--tls-key", [&](const std::string& v) { o.tls_key = v; }},
  };
  for (int i = 1; i < argc; ++i) {
    const std::string name = argv[i];
    if (name == "--help") usage(0);
    if (name == "--recovery") {
      o.recovery = true;
      continue;
    }
    auto it = options.find(name);
    if (it == options.end() || i + 1 >= argc) usage(2);
    try {
      it->second(argv[++i]);
    } catch (const std::exception&) {
      usage(2);
    }
  }
  if (o.threads == 0 || o.tls_cert.empty() != o.tls_key.empty()) usage(2);
  return o;
}

std::string to_json(const rapidjson::Value& value) {
  rapidjson::StringBuffer out;
  rapidjson::Writer<rapidjson::StringBuffer> writer(out);
  value.Accept(writer);
  return {out.GetString(), out.GetSize()};
}

// A JSON string literal for `s` (the test's topics and codes are ASCII, but
// escape what JSON requires anyway).
std::string quoted(std::string_view s) {
  rapidjson::Value v(rapidjson::StringRef(s.data(), s.size()));
  return to_json(v);
}

// What SessionHooks saw of each principal's sessions (hooks run on every
// shard's thread; the control event reads it from any of them).
class SessionLedger {
 public:
  void opened(const livecast::Session& s) {
    std::lock_guard<std::mutex> lock(mutex_);
    ++users_[s.principal().id].opened;
  }
  void closed(const livecast::Session& s, std::optional<livecast::CloseCode> code) {
    std::lock_guard<std::mutex> lock(mutex_);
    Entry& e = users_[s.principal().id];
    ++e.closed;
    e.last_close = code;
  }
  std::string json(const std::string& user) const {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = users_.find(user);
    const Entry e = it == users_.end() ? Entry{} : it->second;
    return "[{\"opened\":" + std::to_string(e.opened) + ",\"closed\":" + std::to_string(e.closed) +
           ",\"last_close\":" + (e.last_close ? std::to_string(static_cast<unsigned>(*e.last_close)) : "null") +
           "}]";
  }

 private:
  struct Entry {
    std::uint64_t opened = 0;
    std::uint64_t closed = 0;
    std::optional<livecast::CloseCode> last_close;
  };
  mutable std::mutex mutex_;
  std::map<std::string, Entry> users_;
};

livecast::ClientEventReply bad_request(std::string why) {
  return livecast::ClientEventReply::refuse(livecast::Errc::bad_request, std::move(why));
}

livecast::ClientEventReply ok() { return livecast::ClientEventReply::acknowledge(R"([{"ok":true}])"); }

// publish {topic, data}
livecast::ClientEventReply control_publish(livecast::Broker& broker, const rapidjson::Document& args) {
  if (args.Size() < 1 || !args[0].IsObject()) return bad_request("publish takes {topic, data}");
  const auto& request = args[0];
  auto topic = request.FindMember("topic");
  auto data = request.FindMember("data");
  if (topic == request.MemberEnd() || !topic->value.IsString() || data == request.MemberEnd())
    return bad_request("publish takes {topic, data}");
  const std::error_code ec =
      broker.publish(std::string_view(topic->value.GetString(), topic->value.GetStringLength()), to_json(data->value));
  if (!ec) return ok();
  const auto code = ec.category() == livecast::livecast_category() ? static_cast<livecast::Errc>(ec.value())
                                                                   : livecast::Errc::internal_error;
  return livecast::ClientEventReply::refuse(code, "publish failed: " + ec.message());
}

// kick user | {user, code, reason}
livecast::ClientEventReply control_kick(livecast::Broker& broker, const rapidjson::Document& args) {
  if (args.Size() < 1) return bad_request("kick takes a user or {user, code, reason}");
  std::string user, reason = "kicked";
  auto code = livecast::CloseCode::normal;
  if (args[0].IsString()) {
    user = args[0].GetString();
  } else if (args[0].IsObject()) {
    const auto& request = args[0];
    if (auto u = request.FindMember("user"); u != request.MemberEnd() && u->value.IsString()) user = u->value.GetString();
    if (auto c = request.FindMember("code"); c != request.MemberEnd() && c->value.IsUint())
      code = static_cast<livecast::CloseCode>(c->value.GetUint());
    if (auto r = request.FindMember("reason"); r != request.MemberEnd() && r->value.IsString())
      reason = r->value.GetString();
  }
  if (user.empty()) return bad_request("kick takes a user or {user, code, reason}");
  // close_sessions may be called from any thread, this shard's included; the
  // closes happen on each session's shard, after this handler returns.
  broker.close_sessions(user, code, reason);
  return ok();
}

// burst {topic, count}: many publications at once, from the server's side
// (a client's own publishing is rate limited).
livecast::ClientEventReply control_burst(livecast::Broker& broker, const rapidjson::Document& args) {
  if (args.Size() < 1 || !args[0].IsObject()) return bad_request("burst takes {topic, count}");
  const auto& request = args[0];
  auto topic = request.FindMember("topic");
  auto count = request.FindMember("count");
  if (topic == request.MemberEnd() || !topic->value.IsString() || count == request.MemberEnd() ||
      !count->value.IsUint() || count->value.GetUint() > 10000)
    return bad_request("burst takes {topic, count <= 10000}");
  const std::string_view name(topic->value.GetString(), topic->value.GetStringLength());
  for (unsigned i = 0; i < count->value.GetUint(); ++i) {
    if (const std::error_code ec = broker.publish(name, "{\"i\":" + std::to_string(i) + "}"))
      return livecast::ClientEventReply::refuse(livecast::Errc::internal_error, "burst failed: " + ec.message());
  }
  return ok();
}

// drain {duration_ms, reconnect_delay_max_ms}: Broker::drain, which never
// ends for this process (new clients get 503 from then on).
livecast::ClientEventReply control_drain(livecast::Broker& broker, const rapidjson::Document& args) {
  livecast::DrainSettings drain;
  drain.duration = std::chrono::milliseconds(300);
  drain.reconnect_delay_min = std::chrono::milliseconds(0);
  drain.reconnect_delay_max = std::chrono::milliseconds(200);
  if (args.Size() >= 1 && args[0].IsObject()) {
    const auto& request = args[0];
    if (auto d = request.FindMember("duration_ms"); d != request.MemberEnd() && d->value.IsUint())
      drain.duration = std::chrono::milliseconds(d->value.GetUint());
    if (auto d = request.FindMember("reconnect_delay_max_ms"); d != request.MemberEnd() && d->value.IsUint())
      drain.reconnect_delay_max = std::chrono::milliseconds(d->value.GetUint());
  }
  broker.drain(drain);
  return ok();
}

livecast::ClientEventReply control_stats(livecast::Broker& broker) {
  const livecast::BrokerMetrics m = broker.metrics();
  std::string errors;
  for (std::size_t e = 1; e < livecast::errc_count; ++e) {
    if (m.errors_by_code[e] == 0) continue;
    if (!errors.empty()) errors += ',';
    errors += quoted(livecast::to_wire_name(static_cast<livecast::Errc>(e))) + ":" + std::to_string(m.errors_by_code[e]);
  }
  return livecast::ClientEventReply::acknowledge(
      "[{\"sessions_active\":" + std::to_string(m.sessions_active) +
      ",\"messages_received\":" + std::to_string(m.messages_received) +
      ",\"errors_sent\":" + std::to_string(m.errors_sent) + ",\"callback_errors\":" + std::to_string(m.callback_errors) +
      ",\"errors\":{" + errors + "}}]");
}

livecast::ClientEventHandler make_event_handler(livecast::Broker*& broker, const SessionLedger& ledger) {
  return [&broker, &ledger](const livecast::ClientEvent& event) -> livecast::ClientEventReply {
    if (event.name == "echo") return livecast::ClientEventReply::acknowledge(std::string(event.args));
    if (event.name == "boom") throw std::runtime_error("boom: the test server's handler throws on purpose");
    if (event.name == "stats") return control_stats(*broker);
    if (event.name == "sessions") {
      rapidjson::Document args;
      args.Parse(event.args.data(), event.args.size());
      if (args.HasParseError() || !args.IsArray() || args.Size() < 1 || !args[0].IsString())
        return bad_request("sessions takes a user");
      return livecast::ClientEventReply::acknowledge(ledger.json(args[0].GetString()));
    }
    using Control = livecast::ClientEventReply (*)(livecast::Broker&, const rapidjson::Document&);
    static const std::map<std::string_view, Control> controls{
        {"publish", control_publish}, {"kick", control_kick}, {"burst", control_burst}, {"drain", control_drain}};
    auto control = controls.find(event.name);
    if (control == controls.end())
      return livecast::ClientEventReply::refuse(livecast::Errc::unknown_op,
                                                "no such event: " + std::string(event.name));
    rapidjson::Document args;
    args.Parse(event.args.data(), event.args.size());
    if (args.HasParseError() || !args.IsArray()) return bad_request("arguments are not a JSON array");
    return control->second(*broker, args);
  };
}

livecast::BrokerSettings broker_settings(const Options& o, livecast::Broker*& broker, SessionLedger& ledger) {
  livecast::BrokerSettings settings;
  settings.threads = o.threads;
  settings.session.ping_interval = o.ping_interval;
  settings.session.idle_timeout = o.idle_timeout;
  settings.session.connect_timeout = o.connect_timeout;
  settings.session.max_message_bytes = o.max_message_bytes;
  settings.session.max_messages_per_second = o.max_messages_per_second;
  settings.authenticator = [](const livecast::HandshakeRequest& request) {
    static constexpr std::string_view prefix = "good-";
    const std::string token = request.token();
    if (token.size() <= prefix.size() || token.compare(0, prefix.size(), prefix) != 0)
      return livecast::AuthResult::refuse("invalid token");
    livecast::Principal principal;
    principal.id = token.substr(prefix.size());
    return livecast::AuthResult::accept(std::move(principal));
  };
  settings.authorizer = livecast::Authorizer().allow_subscribe("room:*").allow_subscribe("metrics");
  settings.server_joins = [](const livecast::Principal& p) {
    return std::vector<std::string>{"room:all", "room:user:" + p.id, "metrics"};
  };
  settings.on_client_event = make_event_handler(broker, ledger);
  settings.hooks.on_open = [&ledger](const livecast::Session& s) { ledger.opened(s); };
  settings.hooks.on_close = [&ledger](const livecast::Session& s, std::optional<livecast::CloseCode> code) {
    ledger.closed(s, code);
  };
  settings.on_error = [](const std::string& what, std::error_code ec) {
    std::fprintf(stderr, "livecast-socketio-test-server: %s: %s\n", what.c_str(), ec.message().c_str());
  };
  livecast::SocketIoSettings socketio;
  socketio.event_name = [](std::string_view topic) {
    return topic == "metrics" ? std::string("metrics-update") : std::string();
  };
  socketio.connection_state_recovery = o.recovery;
  settings.protocols = {livecast::make_livecast_v1_protocol(), livecast::make_socketio_protocol(std::move(socketio))};
  return settings;
}

std::unique_ptr<livecast::Backend> make_backend(const Options& o) {
  if (o.redis.empty()) return nullptr;
#ifdef LIVECAST_SOCKETIO_TEST_WITH_REDIS
  livecast::RedisBackendSettings redis;
  redis.url = "redis://" + o.redis;
  return std::make_unique<livecast::RedisBackend>(redis);
#else
  throw std::invalid_argument("--redis: this build has no Redis backend (no hiredis)");
#endif
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  livecast::Broker* broker_for_events = nullptr;  // set before any session can send an event
  SessionLedger ledger;                            // outlives the broker, whose hooks write it
  std::unique_ptr<livecast::Broker> broker;
  try {
    broker = std::make_unique<livecast::Broker>(broker_settings(o, broker_for_events, ledger), make_backend(o));
  } catch (const std::exception& e) {
    std::cerr << "livecast-socketio-test-server: " << e.what() << "\n";
    return 2;
  }
  broker_for_events = broker.get();
  broker->start();
#ifdef LIVECAST_SOCKETIO_TEST_WITH_REDIS
  if (auto* redis = dynamic_cast<livecast::RedisBackend*>(&broker->backend());
      redis && !redis->wait_connected(std::chrono::seconds(10))) {
    std::cerr << "livecast-socketio-test-server: Redis at " << o.redis << " did not answer within 10 s\n";
    return 1;
  }
#endif

  livecast::WebSocketSettings ws;
  ws.listen = false;  // upgrades arrive through the HTTP transport's port
  livecast::WebSocketTransport websocket(*broker, ws);
  livecast::HttpTransportSettings http_settings;
  http_settings.address = o.address;
  http_settings.port = o.port;
  if (!o.tls_cert.empty()) {
    // TLS ends on the HTTP transport; upgrades are handed over with their TLS stream.
    livecast::TlsSettings tls;
    tls.cert_file = o.tls_cert;
    tls.key_file = o.tls_key;
    http_settings.tls = tls;
  }
  livecast::HttpTransport http(*broker, http_settings);
  http.serve_websocket(websocket);
  try {
    websocket.start();
    http.start();
  } catch (const std::exception& e) {
    std::cerr << "livecast-socketio-test-server: cannot listen on " << o.address << ":" << o.port << ": " << e.what()
              << "\n";
    return 1;
  }

  std::cout << "{\"ready\":true,\"port\":" << http.port() << ",\"backend\":\""
            << (o.redis.empty() ? "in-process" : "redis") << "\",\"tls\":" << (o.tls_cert.empty() ? "false" : "true")
            << ",\"pid\":" << ::getpid() << "}" << std::endl;

  asio::io_context io;
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](std::error_code, int) {
    http.stop();
    websocket.stop();
    broker->stop();
  });
  io.run();
  return 0;
}
