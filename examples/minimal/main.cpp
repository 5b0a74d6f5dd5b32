// The smallest service that embeds livecast: the host's io_context runs the
// broker and the WebSocket transport, and a timer publishes a counter.
// Subscribe with: {"op":"subscribe","id":1,"topic":"counter"} on ws://localhost:8080/ws
#include <livecast/livecast.hpp>

#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>

#include <chrono>
#include <csignal>
#include <functional>

int main() {
  asio::io_context io;
  livecast::Broker broker(io);  // one shard on the host's io_context
  livecast::WebSocketTransport transport(broker, livecast::WebSocketSettings{});  // 0.0.0.0:8080, path /ws
  transport.start();

  asio::steady_timer timer(io);
  long count = 0;
  std::function<void()> tick = [&] {
    broker.publish("counter", livecast::Json::object({{"value", ++count}}));
    timer.expires_after(std::chrono::seconds(1));
    timer.async_wait([&](std::error_code ec) { if (!ec) tick(); });
  };
  tick();

  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](std::error_code, int) {
    timer.cancel();
    transport.stop();  // sends every client 1001 "going away"; run() returns once they are closed
  });
  io.run();
}
