// The seam through which sessions arrive. A transport owns sockets, pings and
// idle timeouts and knows bytes and connections, not topics: it authenticates
// the handshake with the Broker's Authenticator, opens a Session with
// Broker::open_session, hands each client message to Broker::handle_message,
// writes what the session's SendQueue holds, and reports the end of the
// connection with Broker::close_session. WebSocketTransport is the first;
// SSE and HTTP long-polling come in beside it.
#pragma once

#include <livecast/config.hpp>
#include <livecast/handshake.hpp>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

LIVECAST_BEGIN_NAMESPACE

class MetricsWriter;

// A plain HTTP request that is not a transport's own (e.g. GET / for the
// dashboard page); described like a handshake.
using HttpRequest = HandshakeRequest;

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  // Extra headers. A field whose name is not an HTTP token, or whose value
  // (content_type's too) holds a line break or another control character,
  // is left out of the answer: it would split the response.
  std::vector<std::pair<std::string, std::string>> headers;

  static HttpResponse not_found() { return {404, "text/plain; charset=utf-8", "not found\n", {}}; }
};

// Serves plain HTTP requests beside a transport's endpoint. Runs on a shard
// thread: answer from memory, do not block.
using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

class Transport {
 public:
  virtual ~Transport() = default;
  virtual std::string_view name() const noexcept = 0;
  // Binds and starts accepting. Throws std::system_error when it cannot bind.
  virtual void start() = 0;
  // Stops accepting and closes every session with CloseCode::going_away.
  // Blocks until the sessions are closed; call it from outside the broker's
  // threads, or from the host's io_context thread in host mode.
  virtual void stop() = 0;
  // The bound port (useful after binding port 0).
  virtual std::uint16_t port() const noexcept = 0;
  // Writes the transport's counters as Prometheus metrics, labelled
  // transport="<name()>" (MetricsExporter, metrics.hpp). Any thread.
  virtual void write_metrics(MetricsWriter& /*out*/) const {}
};

LIVECAST_END_NAMESPACE
