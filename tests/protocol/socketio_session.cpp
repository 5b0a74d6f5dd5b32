// The socket.io protocol inside a real Broker, on an in-memory connection
// opened as the transports open it (SessionHost::open_unauthenticated): the
// greeting, CONNECT and its authentication, a server-side join (which must
// send nothing), subscriptions and events with their acknowledgements,
// publications, refusals and farewells, byte for byte.
#include <livecast/broker.hpp>
#include <livecast/session_host.hpp>
#include <livecast/socketio.hpp>

#include <ostream>  // doctest prints std::error_code

#include <doctest/doctest.h>

#include <asio/io_context.hpp>
#include <asio/post.hpp>

#include <algorithm>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

using namespace livecast;

namespace {

// A client connection as a transport would hold it, its "socket" the list of
// frames the broker queued for it. The broker runs on the test's io_context
// (one shard, single-threaded): each read runs it until nothing is ready.
class InBandConnection final : public SessionConnection {
 public:
  InBandConnection(Broker& broker, asio::io_context& io, std::size_t protocol, const Greeting& greeting)
      : host_(broker.session_host()), io_(io) {
    session_ = host_.open_unauthenticated(0, protocol, *this, HandshakeRequest{}, greeting);
  }
  ~InBandConnection() override { host_.close_session(*session_); }

  void send(std::string message) {
    asio::post(io_, [this, m = std::move(message)] { host_.handle_message(*session_, m); });
  }
  std::uint64_t session_id() const { return session_->id(); }
  // The transport's heartbeat timer fired.
  bool heartbeat() { return host_.heartbeat(*session_); }

  // Every frame received so far.
  const std::vector<std::string>& received() {
    pump();
    return received_;
  }
  // The frame received `i`-th, or "(none)".
  std::string frame(std::size_t i) {
    pump();
    return i < received_.size() ? received_[i] : "(none)";
  }
  std::optional<CloseCode> close_code() {
    pump();
    return close_code_;
  }

  void frames_ready() override {
    asio::post(io_, [this] {
      std::vector<FramePtr> frames;
      host_.take_frames(*session_, frames);
      std::size_t bytes = 0;
      for (const FramePtr& f : frames) {
        received_.push_back(f->bytes);
        bytes += f->bytes.size();
      }
      host_.frames_written(*session_, bytes);
    });
  }
  void close(CloseCode code, std::string_view) override { close_code_ = code; }

 private:
  void pump() {
    io_.restart();
    io_.poll();
  }

  SessionHost& host_;
  asio::io_context& io_;
  std::shared_ptr<Session> session_;
  std::vector<std::string> received_;
  std::optional<CloseCode> close_code_;
};

Greeting greeting() {
  Greeting g;
  g.session_id = "eio-1";
  g.heartbeat_interval = std::chrono::milliseconds(25000);
  g.heartbeat_timeout = std::chrono::milliseconds(20000);
  g.max_message_bytes = 65536;
  g.upgrades = {"websocket"};
  return g;
}

// socket.io second, as a host that speaks both would list them.
BrokerSettings settings() {
  BrokerSettings s;
  s.protocols = {make_livecast_v1_protocol(), make_socketio_protocol()};
  s.authenticator = [](const HandshakeRequest& r) {
    if (r.auth_token != "good") return AuthResult::refuse("bad \"token\"");
    Principal p;
    p.id = "ada";
    return AuthResult::accept(p);
  };
  s.server_joins = [](const Principal&) { return std::vector<std::string>{"org:acme"}; };
  s.on_client_event = [](const ClientEvent& e) {
    if (e.name == "echo") return ClientEventReply::acknowledge(std::string(e.args));
    return ClientEventReply::refuse(Errc::forbidden, "not this one");
  };
  return s;
}

constexpr std::string_view open_packet =
    R"(0{"sid":"eio-1","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":65536})";

}  // namespace

TEST_CASE("socket.io through the broker: open, CONNECT, a silent join, subscribe, events, publications") {
  asio::io_context io;
  Broker broker(io, settings());
  auto index = broker.session_host().find_protocol("socket.io");
  REQUIRE(index.has_value());
  {
    InBandConnection client(broker, io, *index, greeting());
    CHECK(client.frame(0) == open_packet);

    client.send(R"(40{"token":"good"})");
    // The socket's name: the broker's instance tag, then the session's id.
    const std::string connected = client.frame(1);
    CHECK(connected.rfind(R"(40{"sid":")", 0) == 0);
    CHECK(connected.size() > 12);
    const std::string suffix = "-" + std::to_string(client.session_id()) + R"("})";
    CHECK(connected.compare(connected.size() - suffix.size(), suffix.size(), suffix) == 0);

    // The join of org:acme said nothing, yet the session is in the room.
    CHECK_FALSE(broker.publish("org:acme", R"({"v":1})"));
    CHECK(client.frame(2) == R"(42["org:acme",{"v":1}])");

    client.send(R"(420["subscribe","kpi"])");
    const std::string subscribed = client.frame(3);
    CHECK(subscribed.rfind(R"(430[{"topic":"kpi","epoch":")", 0) == 0);
    CHECK(subscribed.find(R"("recovered":false}])") != std::string::npos);

    client.send(R"(421["echo",{"a":[1,"x"]},null])");
    CHECK(client.frame(4) == R"(431[{"a":[1,"x"]},null])");
    client.send(R"(422["other"])");
    CHECK(client.frame(5) ==
          R"(432[{"error":{"code":"forbidden","message":"not this one"}}])");
    client.send(R"(42["other"])");  // no ack: the error event
    CHECK(client.frame(6) ==
          R"(42["livecast:error",{"code":"forbidden","message":"not this one"}])");
    client.send(R"(423["unsubscribe","nope"])");
    CHECK(client.frame(7) ==
          R"(433[{"error":{"code":"not_subscribed","message":"not subscribed"}}])");
    client.send("3");  // a pong: nothing answers it
    client.send(R"(424["unsubscribe","kpi"])");
    CHECK(client.frame(8) == R"(434[{"topic":"kpi"}])");
    CHECK(client.heartbeat());
    CHECK(client.frame(9) == "2");

    client.send("41");  // the client's goodbye: closed, with no farewell back
    CHECK(client.close_code() == CloseCode::normal);
    const std::vector<std::string>& all = client.received();
    CHECK(all.size() == 10);
    CHECK(all.back() == "2");
    CHECK(std::none_of(all.begin(), all.end(), [](const std::string& f) { return f.empty(); }));
  }
  broker.stop();
}

TEST_CASE("socket.io through the broker: a refused CONNECT is CONNECT_ERROR, then the end") {
  asio::io_context io;
  Broker broker(io, settings());
  const std::size_t index = *broker.session_host().find_protocol("socket.io");
  {
    InBandConnection client(broker, io, index, greeting());
    client.send(R"(40{"token":"bad"})");
    CHECK(client.close_code() == CloseCode::unauthorized);
    const std::vector<std::string>& got = client.received();
    REQUIRE(got.size() == 2);
    CHECK(got[1] == R"(44{"message":"bad \"token\""})");
  }
  {
    InBandConnection client(broker, io, index, greeting());
    // Refused in its namespace; the main namespace may still connect.
    client.send(R"(40/admin,{"token":"good"})");
    CHECK_FALSE(client.close_code().has_value());
    client.send(R"(40{"token":"good"})");
    CHECK_FALSE(client.close_code().has_value());
    const std::vector<std::string>& got = client.received();
    REQUIRE(got.size() == 3);
    CHECK(got[1] == R"(44/admin,{"message":"Invalid namespace"})");
    CHECK(got[2].rfind("40{\"sid\":", 0) == 0);
  }
  broker.stop();
}
