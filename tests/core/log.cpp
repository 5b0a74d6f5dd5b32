// BrokerSettings::log: the events a broker and its HTTP transport emit, with
// their fields, through a sink that collects them; a sink that throws kills
// nothing; no event carries a token a client sent; and stderr_log()'s lines.
#include "http_test_client.hpp"
#include "in_process_wrapper.hpp"
#include "transport_server.hpp"

#include <livecast/broker.hpp>
#include <livecast/http_transport.hpp>
#include <livecast/log.hpp>
#include <livecast/websocket_transport.hpp>

#include <doctest/doctest.h>

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

using namespace livecast;
using namespace std::chrono_literals;
using livecast_test::HttpClient;

namespace {

// What a sink saw, copied (the event's views live for the call only).
struct SeenEvent {
  LogLevel level;
  std::string name;
  std::vector<std::pair<std::string, std::string>> fields;

  const std::string* field(const std::string& n) const {
    for (const auto& [k, v] : fields)
      if (k == n) return &v;
    return nullptr;
  }
};

class CollectedEvents {
 public:
  LogSink sink() {
    return [this](const LogEvent& e) {
      SeenEvent seen{e.level, std::string(e.name), {}};
      for (const LogField& f : e.fields) seen.fields.emplace_back(std::string(f.name), f.value);
      std::lock_guard<std::mutex> lock(mutex_);
      events_.push_back(std::move(seen));
    };
  }
  std::vector<SeenEvent> all() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return events_;
  }
  std::vector<SeenEvent> named(const std::string& name) const {
    std::vector<SeenEvent> out;
    for (auto& e : all())
      if (e.name == name) out.push_back(e);
    return out;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<SeenEvent> events_;
};

// A backend whose connection the test loses and regains by hand.
class FlakyBackend final : public livecast_test::InProcessWrapper {
 public:
  void start(BackendListener& l) override {
    listener = &l;
    InProcessWrapper::start(l);
  }
  void read(const std::string& topic, const std::optional<StreamPosition>& since, std::size_t most,
            ReadHandler done) override {
    inner_->read(topic, since, most, std::move(done));
  }
  BackendListener* listener = nullptr;
};

using Server = livecast_test::TransportServer<HttpTransport, HttpTransportSettings>;

HttpTransportSettings loopback() { return livecast_test::loopback_settings<HttpTransportSettings>(); }

int status_of_poll(std::uint16_t port, const std::string& headers = {}) {
  HttpClient c(port);
  c.get("/poll?topics=t&timeout=10", headers);
  auto r = c.response();
  REQUIRE(r);
  return r->status;
}

}  // namespace

TEST_CASE("log: broker and transports start and stop, with the shards, the address and the port") {
  CollectedEvents events;
  BrokerSettings b = livecast_test::with_threads(2);
  b.log = events.sink();
  std::uint16_t port = 0;
  {
    Broker broker(std::move(b));
    WebSocketSettings w;
    w.listen = false;  // upgrades come through the HTTP transport's port
    WebSocketTransport ws(broker, w);
    HttpTransport http(broker, loopback());
    http.serve_websocket(ws);
    broker.start();
    ws.start();
    http.start();
    port = http.port();
    http.stop();
    ws.stop();
    broker.stop();
  }
  auto all = events.all();
  std::vector<std::string> names;
  for (auto& e : all) names.push_back(e.name);
  CHECK(names == std::vector<std::string>{"broker.started", "transport.started", "transport.started",
                                          "transport.stopped", "transport.stopped", "broker.stopped"});
  REQUIRE(all.size() == 6);
  for (auto& e : all) CHECK(e.level == LogLevel::info);
  CHECK(*all[0].field("shards") == "2");
  CHECK(*all[1].field("transport") == "websocket");
  CHECK(*all[1].field("address") == "-");
  CHECK(*all[1].field("port") == "-");
  CHECK(*all[2].field("transport") == "http");
  CHECK(*all[2].field("address") == "127.0.0.1");
  CHECK(*all[2].field("port") == std::to_string(port));
  CHECK(*all[3].field("transport") == "http");
  CHECK(*all[4].field("transport") == "websocket");
}

TEST_CASE("log: a hook that throws is hook.failed, and on_error still hears of it") {
  CollectedEvents events;
  std::vector<std::string> reported;
  std::mutex reported_mutex;
  BrokerSettings b = livecast_test::with_threads(1);
  b.log = events.sink();
  b.on_error = [&](const std::string& what, std::error_code) {
    std::lock_guard<std::mutex> lock(reported_mutex);
    reported.push_back(what);
  };
  b.authenticator = [](const HandshakeRequest&) -> AuthResult { throw std::runtime_error("authenticator exploded"); };
  Server server(std::move(b));
  CHECK(status_of_poll(server.port()) == 500);
  auto failed = events.named("hook.failed");
  REQUIRE(failed.size() == 1);
  CHECK(failed[0].level == LogLevel::error);
  CHECK(*failed[0].field("hook") == "the authenticator");
  CHECK(*failed[0].field("error") == "authenticator exploded");
  std::lock_guard<std::mutex> lock(reported_mutex);
  CHECK(reported == std::vector<std::string>{"the authenticator threw: authenticator exploded"});
}

TEST_CASE("log: an error for on_error is error.reported (a refused server-side join)") {
  CollectedEvents events;
  BrokerSettings b = livecast_test::with_threads(1);
  b.log = events.sink();
  b.server_joins = [](const Principal&) { return std::vector<std::string>{"secret"}; };
  b.authorizer = Authorizer{};
  b.authorizer.allow_subscribe("t");
  Server server(std::move(b));
  CHECK(status_of_poll(server.port()) == 200);
  auto reported = events.named("error.reported");
  REQUIRE(reported.size() == 1);
  CHECK(reported[0].level == LogLevel::error);
  CHECK(reported[0].field("what")->find("server-side join of 'secret' refused") != std::string::npos);
  CHECK(*reported[0].field("error") == "forbidden");
}

TEST_CASE("log: the backend lost is logged once, and once when it is back") {
  CollectedEvents events;
  int on_error_calls = 0;
  BrokerSettings b = livecast_test::with_threads(1);
  b.log = events.sink();
  b.on_error = [&](const std::string& what, std::error_code) {
    if (what == "backend") ++on_error_calls;
  };
  auto backend = std::make_unique<FlakyBackend>();
  FlakyBackend& flaky = *backend;
  Broker broker(std::move(b), std::move(backend));
  REQUIRE(flaky.listener);
  const std::error_code lost = std::make_error_code(std::errc::connection_refused);
  flaky.listener->on_backend_error(lost);
  flaky.listener->on_backend_error(lost);  // still down: a reconnect failed
  CHECK(events.named("backend.available").empty());
  flaky.listener->on_backend_error({});
  flaky.listener->on_backend_error({});  // nothing new

  auto unavailable = events.named("backend.unavailable");
  REQUIRE(unavailable.size() == 1);
  CHECK(unavailable[0].level == LogLevel::warning);
  CHECK(*unavailable[0].field("error") == lost.message());
  auto back = events.named("backend.available");
  REQUIRE(back.size() == 1);
  CHECK(back[0].level == LogLevel::info);
  REQUIRE(back[0].field("unavailable_ms"));
  CHECK(std::stoll(*back[0].field("unavailable_ms")) >= 0);
  CHECK(broker.metrics().backend_errors == 2);
  CHECK(on_error_calls == 2);  // on_error as before: every report
}

TEST_CASE("log: a sink that throws kills nothing") {
  int calls = 0;
  std::mutex mutex;
  std::vector<std::string> reported;
  BrokerSettings b = livecast_test::with_threads(2);
  b.log = [&](const LogEvent&) {
    std::lock_guard<std::mutex> lock(mutex);
    ++calls;
    throw std::runtime_error("sink broken");
  };
  b.on_error = [&](const std::string& what, std::error_code) {
    std::lock_guard<std::mutex> lock(mutex);
    reported.push_back(what);
  };
  b.authenticator = [](const HandshakeRequest& r) -> AuthResult {
    if (r.token() == "boom") throw std::runtime_error("authenticator exploded");
    return AuthResult::accept(Principal{});
  };
  {
    Server server(std::move(b));
    CHECK(status_of_poll(server.port(), "Authorization: Bearer boom\r\n") == 500);  // hook.failed, thrown away
    CHECK(status_of_poll(server.port()) == 200);                                   // still serving
    CHECK(server.broker.publish("t", "1") == std::error_code());
    server.transport.stop();
    server.broker.stop();
  }
  std::lock_guard<std::mutex> lock(mutex);
  CHECK(calls >= 5);  // started x2, hook.failed, stopped x2
  CHECK(reported == std::vector<std::string>{"the authenticator threw: authenticator exploded"});
}

TEST_CASE("log: no event carries a token a client sent") {
  // Shaped like a JWT; each part is checked, as a sink might log a part.
  const std::string header = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";
  const std::string claims = "eyJzdWIiOiJ1MSIsIm9yZyI6ImFjbWUifQ";
  const std::string signature = "c2lnbmF0dXJlLW5vdC1yZWFsbHktY2hlY2tlZA";
  const std::string token = header + "." + claims + "." + signature;
  CollectedEvents events;
  BrokerSettings b = livecast_test::with_threads(2);
  b.log = events.sink();
  b.authenticator = [&](const HandshakeRequest& r) -> AuthResult {
    const std::string t = r.token();
    if (r.query_param("case") == "throw") throw std::runtime_error("verifier failed");
    if (r.query_param("case") == "refuse") return AuthResult::refuse("token expired");
    return AuthResult::accept(Principal{"u1", {}, {}});
  };
  b.server_joins = [](const Principal&) -> std::vector<std::string> { throw std::runtime_error("joins failed"); };
  {
    Server server(std::move(b));
    const std::string bearer = "Authorization: Bearer " + token + "\r\n";
    for (const char* c : {"throw", "refuse", "accept"}) {
      HttpClient client(server.port());
      client.get(std::string("/poll?topics=t&timeout=10&case=") + c, bearer);
      REQUIRE(client.response());
      HttpClient in_query(server.port());
      in_query.get(std::string("/poll?topics=t&timeout=10&case=") + c + "&token=" + token);
      REQUIRE(in_query.response());
    }
    HttpClient publish(server.port());
    publish.post("/publish", R"({"topic":"t","data":1})", bearer);
    REQUIRE(publish.response());
    server.transport.stop();
  }
  auto all = events.all();
  CHECK(all.size() >= 5);  // started x2, hook.failed (authenticator, joins), stopped
  CHECK_FALSE(events.named("hook.failed").empty());
  for (const auto& e : all) {
    CHECK(e.name.find(signature) == std::string::npos);
    for (const auto& [name, value] : e.fields) {
      CAPTURE(e.name);
      CAPTURE(name);
      for (const std::string* part : {&token, &header, &claims, &signature})
        CHECK(value.find(*part) == std::string::npos);
    }
  }
}

TEST_CASE("stderr_log: one line per event at the level and above, values quoted when needed") {
  char path[] = "/tmp/livecast_log_XXXXXX";
  const int file = ::mkstemp(path);
  REQUIRE(file >= 0);
  std::fflush(stderr);
  const int saved = ::dup(2);
  REQUIRE(::dup2(file, 2) >= 0);
  LogSink sink = stderr_log(LogLevel::warning);
  sink(LogEvent{LogLevel::info, "below.level", {{"x", "1"}}});
  sink(LogEvent{LogLevel::warning, "backend.unavailable",
                {{"error", "Connection refused"}, {"n", "3"}, {"odd", "a\"b\nc"}, {"empty", ""}}});
  sink(LogEvent{LogLevel::error, "hook.failed", {}});
  std::fflush(stderr);
  ::dup2(saved, 2);
  ::close(saved);
  ::close(file);
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  std::remove(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(text, line);) lines.push_back(line);
  REQUIRE(lines.size() == 2);
  // 2026-12-07T01:02:03.456Z warning backend.unavailable error="Connection refused" ...
  REQUIRE(lines[0].size() > 25);
  CHECK(lines[0][4] == '-');
  CHECK(lines[0][10] == 'T');
  CHECK(lines[0][23] == 'Z');
  CHECK(lines[0][24] == ' ');
  CHECK(lines[0].substr(25) ==
        R"(warning backend.unavailable error="Connection refused" n=3 odd="a\"b\nc" empty="")");
  CHECK(lines[1].substr(25) == "error hook.failed");
}
