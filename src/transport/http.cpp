// HttpTransport: one acceptor per broker shard on one port (SO_REUSEPORT),
// every connection on its shard's thread, so nothing here takes a lock but
// the count of connections per address (when one starts and ends). This
// file is the router: what a request may do (origin, method, path, CORS,
// topics, cursor, protocol, token) and who serves it:
//   GET /sse            SseStream       (http_exchanges.hpp)
//   GET /poll           LongPoll
//   POST /poll          PostedMessage
//   POST /publish       PublishExchange (publish_exchange.hpp)
//   GET, POST /socket.io/  EngineIoPolling (engineio_polling.hpp), when the
//                       broker speaks socket.io
//   WebSocket upgrade   the attached WebSocketTransport (serve_websocket)
//   anything else       the host's HttpHandler
// HTTP/1.1 itself (framing, keep-alive, timers) is HttpConnection's.
#include <livecast/http_transport.hpp>

#include <livecast/session_host.hpp>
#include <livecast/socketio.hpp>
#include <livecast/websocket_transport.hpp>

#include "address_counts.hpp"
#include "admission.hpp"
#include "client_rate.hpp"
#include "engineio_polling.hpp"
#include "engineio_session.hpp"
#include "http_connection.hpp"
#include "http_counters.hpp"
#include "http_exchanges.hpp"
#include "http_request_parser.hpp"
#include "http_response.hpp"
#include "publish_exchange.hpp"
#include "byte_stream.hpp"
#include "shard_listeners.hpp"
#include "tls_context.hpp"
#include "websocket_handover.hpp"

#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <charconv>
#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

LIVECAST_BEGIN_NAMESPACE

namespace {

using asio::ip::tcp;
using detail::bump;
using detail::HttpConnection;
using detail::HttpCounters;
using detail::HttpExchangeContext;
using detail::ParsedHttpRequest;
using detail::StreamCursor;

bool equals_ignoring_case(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

// "Upgrade: websocket" with "Connection: ... upgrade ...".
bool is_websocket_upgrade(const ParsedHttpRequest& r) {
  if (!equals_ignoring_case(r.header("upgrade"), "websocket")) return false;
  std::string connection = r.header("connection");
  for (auto& c : connection) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return connection.find("upgrade") != std::string::npos;
}

// One shard's listener, connections and router.
class ShardServer final : public HttpConnection::RequestHandler, public std::enable_shared_from_this<ShardServer> {
 public:
  ShardServer(Broker& broker, SessionHost& host, std::size_t index, std::shared_ptr<const HttpTransportSettings> settings,
              std::shared_ptr<HttpCounters> counters, std::shared_ptr<detail::AddressCounts> addresses,
              std::shared_ptr<detail::ClientRate> rate, WebSocketTransport* websocket,
              std::shared_ptr<detail::TlsContext> tls, std::shared_ptr<detail::EngineIoPolling> engineio)
      : broker_(broker),
        settings_(std::move(settings)),
        tls_(std::move(tls)),
        counters_(std::move(counters)),
        addresses_(std::move(addresses)),
        rate_(std::move(rate)),
        context_{host, index, *settings_, *counters_},
        websocket_(websocket),
        engineio_(std::move(engineio)),
        acceptor_(host.shard_context(index)) {}

  void listen(const tcp::endpoint& where) {
    acceptor_.listen(where, settings_->listen_backlog, [this](tcp::socket socket) { on_accept(std::move(socket)); });
  }
  std::uint16_t local_port() const { return acceptor_.local_port(); }

  void stop() {
    if (stopped_) return;
    stopped_ = true;
    acceptor_.close();
    // Every listed connection is alive (it is unlisted when it ends); hold
    // them while shut_down() may let go of their last handler.
    std::vector<std::shared_ptr<HttpConnection>> all;
    all.reserve(connections_.size());
    for (const auto& weak : connections_)
      if (auto c = weak.lock()) all.push_back(std::move(c));
    for (auto& c : all) c->shut_down();
  }

  void on_request(HttpConnection& c) override;

 private:
  void on_accept(tcp::socket socket) {
    std::error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    if (settings_->socket_send_buffer_bytes > 0)
      socket.set_option(asio::socket_base::send_buffer_size(static_cast<int>(settings_->socket_send_buffer_bytes)),
                        ignored);
    bump(counters_->connections);
    // A refused connection still holds a place in connections_active until
    // its 503 is out and it closes (bounded by the lingering close).
    std::atomic<std::uint64_t>* refusal = nullptr;
    detail::AddressSlot address;
    if (counters_->connections_active.fetch_add(1, std::memory_order_relaxed) >= settings_->max_connections) {
      refusal = &counters_->refused_too_many_connections;
    } else {
      std::error_code ec;
      const tcp::endpoint remote = socket.remote_endpoint(ec);
      // Without an address the client is gone; its first read says so.
      if (!ec) {
        address = detail::AddressSlot(addresses_, remote.address(), settings_->max_connections_per_address);
        if (!address) refusal = &counters_->refused_per_address;
      }
    }
    const HttpConnection::Limits limits{
        {settings_->max_request_line_bytes, settings_->max_header_bytes, settings_->max_header_fields,
         settings_->max_body_bytes},
        settings_->request_timeout, settings_->write_timeout};
    if (tls_ && refusal) {
      // Closed before its TLS handshake, unanswered: under a flood the
      // cheapest refusal (and no TLS state for it).
      bump(*refusal);
      detail::drop(counters_->connections_active);
      return;  // the socket closes as it goes out of scope
    }
    detail::ByteStream stream = tls_ ? detail::ByteStream(std::move(socket), tls_->current())
                                     : detail::ByteStream(std::move(socket));
    auto c = std::make_shared<HttpConnection>(std::move(stream), shared_from_this(), limits, *counters_,
                                              std::move(address));
    remember(c);
    c->start(refusal);
  }

  // Weak: a connection lives as long as its pending handlers, so that
  // destroying the io_context with work pending frees everything. Expired
  // entries are dropped as new ones come.
  void remember(const std::shared_ptr<HttpConnection>& c) {
    if (connections_.size() >= 2 * live_estimate_ + 64) {
      connections_.erase(std::remove_if(connections_.begin(), connections_.end(),
                                        [](const std::weak_ptr<HttpConnection>& w) { return w.expired(); }),
                         connections_.end());
      live_estimate_ = connections_.size();
    }
    connections_.push_back(c);
  }

  HandshakeRequest describe(const HttpConnection& c, std::string_view path, std::string_view query,
                            const char* transport) const;
  std::optional<Principal> authenticate(HttpConnection& c, const HandshakeRequest& request);
  bool within_rate(HttpConnection& c, const Principal& principal);
  std::optional<std::vector<std::string>> topics_of(HttpConnection& c, std::string_view query);
  std::optional<std::size_t> protocol_of(HttpConnection& c, const HandshakeRequest& request);
  std::optional<detail::RecentRequests> recent_of(HttpConnection& c, const HandshakeRequest& request);
  void start_sse(HttpConnection& c, std::string_view query, const HandshakeRequest& request);
  void start_poll(HttpConnection& c, std::string_view query, const HandshakeRequest& request);
  void start_post(HttpConnection& c, const HandshakeRequest& request);
  void serve_publish(HttpConnection& c, std::string_view path, std::string_view query);
  void serve_handler(HttpConnection& c, std::string_view path, std::string_view query);
  void serve_engineio(HttpConnection& c, std::string_view path, std::string_view query,
                      std::optional<std::chrono::seconds> draining);
  void hand_over_engineio_upgrade(detail::ByteStream stream, std::string received, std::string_view query);

  Broker& broker_;
  std::shared_ptr<const HttpTransportSettings> settings_;
  std::shared_ptr<detail::TlsContext> tls_;  // null: plain TCP
  std::shared_ptr<HttpCounters> counters_;
  std::shared_ptr<detail::AddressCounts> addresses_;  // shared by the shards: the limit is over all of them
  std::shared_ptr<detail::ClientRate> rate_;          // likewise
  HttpExchangeContext context_;
  WebSocketTransport* websocket_;  // upgrades on its path go to it; null: none
  std::shared_ptr<detail::EngineIoPolling> engineio_;  // null: socketio_path is not special
  detail::ShardAcceptor acceptor_;
  std::vector<std::weak_ptr<HttpConnection>> connections_;
  std::size_t live_estimate_ = 0;
  bool stopped_ = false;
};

void ShardServer::on_request(HttpConnection& c) {
  const ParsedHttpRequest& r = c.request();
  const std::string_view target = detail::origin_form(r.target);
  if (target.empty() || (target.front() != '/' && !(r.method == "OPTIONS" && target == "*"))) {
    c.no_keep_alive();
    c.refuse(400, "bad_request", "malformed request target", counters_->refused_malformed);
    return;
  }
  const std::size_t q = target.find('?');
  const std::string_view path = target.substr(0, q);
  const std::string_view query = q == std::string_view::npos ? std::string_view() : target.substr(q + 1);

  const std::string& origin = r.header("origin");
  if (!detail::origin_allowed(settings_->allowed_origins, origin)) {
    c.refuse(403, "forbidden", "origin not allowed", counters_->refused_origin);
    return;
  }
  if (!origin.empty()) {
    std::string cors = "Access-Control-Allow-Origin: " + origin + "\r\nVary: Origin\r\n";
    // Credentials (cookies) only for origins the operator listed: with an
    // empty list any site could otherwise read answers meant for the user
    // (and the token is never taken from a cookie then: vouch_for_cookies).
    if (!settings_->allowed_origins.empty()) cors += "Access-Control-Allow-Credentials: true\r\n";
    c.set_response_headers(std::move(cors));
  }
  // Draining (Broker::drain): no new sessions (every SSE stream, poll, POST
  // and upgrade would be one), but the host's handler still answers, so that
  // /readyz can say why. Stopped: nothing.
  std::optional<std::chrono::seconds> draining;
  if (stopped_ || !context_.host.accepting()) {
    draining = stopped_ ? std::nullopt : context_.host.draining();
    if (!draining) {
      c.no_keep_alive();
      c.refuse(503, "unavailable", "server shutting down", counters_->refused_shutting_down);
      return;
    }
  }
  const bool is_sse = path == settings_->sse_path;
  const bool is_poll = path == settings_->poll_path;
  const bool is_upgrade = websocket_ && r.method == "GET" && is_websocket_upgrade(r);
  if (draining && (is_upgrade || ((is_sse || is_poll) && r.method != "OPTIONS"))) {
    c.no_keep_alive();
    c.refuse(503, "unavailable", "server draining", counters_->refused_shutting_down,
             "Retry-After: " + std::to_string(draining->count()) + "\r\n");
    return;
  }

  // One port for everything: the WebSocket transport takes its upgrades
  // with the socket, and does its own checks (origin, version, token).
  if (is_upgrade) {
    bump(counters_->websocket_upgrades);
    std::string received;
    detail::ByteStream stream = c.take_stream(received);
    if (engineio_ && path == settings_->socketio_path) {
      hand_over_engineio_upgrade(std::move(stream), std::move(received), query);
      return;
    }
    detail::WebSocketHandover::adopt(*websocket_, context_.shard, std::move(stream), received);
    return;
  }

  if (engineio_ && path == settings_->socketio_path) {
    serve_engineio(c, path, query, draining);
    return;
  }
  if (is_sse || is_poll) {
    const char* allow = is_sse ? "Allow: GET, OPTIONS\r\n" : "Allow: GET, POST, OPTIONS\r\n";
    if (r.method == "OPTIONS") {
      bump(counters_->preflights);
      std::string headers = allow;
      headers += "Access-Control-Allow-Methods: ";
      headers += is_sse ? "GET" : "GET, POST";
      headers += "\r\nAccess-Control-Allow-Headers: Content-Type, Authorization, Last-Event-ID\r\n"
                 "Access-Control-Max-Age: 600\r\n";
      c.respond(204, {}, {}, headers);
    } else if (r.method == "GET" && is_sse) {
      start_sse(c, query, describe(c, path, query, "sse"));
    } else if (r.method == "GET") {
      start_poll(c, query, describe(c, path, query, "long-poll"));
    } else if (r.method == "POST" && is_poll) {
      start_post(c, describe(c, path, query, "long-poll"));
    } else {
      c.refuse(405, "method_not_allowed", "method not allowed here", counters_->refused_method, allow);
    }
    return;
  }
  if (!settings_->publish_path.empty() && path == settings_->publish_path) {
    serve_publish(c, path, query);
    return;
  }
  if (r.method != "GET" && r.method != "HEAD") {
    c.refuse(405, "method_not_allowed", "method not allowed here", counters_->refused_method, "Allow: GET, HEAD\r\n");
    return;
  }
  serve_handler(c, path, query);
}

void ShardServer::serve_publish(HttpConnection& c, std::string_view path, std::string_view query) {
  const std::string& method = c.request().method;
  if (method == "OPTIONS") {
    bump(counters_->preflights);
    c.respond(204, {}, {},
              "Allow: POST, OPTIONS\r\nAccess-Control-Allow-Methods: POST\r\n"
              "Access-Control-Allow-Headers: Content-Type, Authorization\r\nAccess-Control-Max-Age: 600\r\n");
  } else if (method == "POST") {
    auto principal = authenticate(c, describe(c, path, query, "http-publish"));
    if (principal) detail::PublishExchange::start(context_, c, broker_, *principal);
  } else {
    c.refuse(405, "method_not_allowed", "method not allowed here", counters_->refused_method,
             "Allow: POST, OPTIONS\r\n");
  }
}

void ShardServer::serve_handler(HttpConnection& c, std::string_view path, std::string_view query) {
  HttpResponse response = context_.host.serve_http(settings_->http_handler, describe(c, path, query, "http"));
  bump(settings_->http_handler ? counters_->handler_requests : counters_->refused_not_found);
  // Malformed fields from the handler are left out (http_response.hpp).
  std::string extra;
  for (const auto& [name, value] : response.headers)
    if (detail::response_header_allowed(name, value)) extra += name + ": " + value + "\r\n";
  const bool typed = detail::response_header_allowed("Content-Type", response.content_type);
  c.respond(response.status, typed ? std::string_view(response.content_type) : std::string_view(), response.body,
            extra);
}

// Engine.IO's upgrade (`transport=websocket&sid=S`): the WebSocket must live
// on the shard of the polling session it takes over, where the sid's
// session is looked up and handed to the WebSocket transport with the
// stream. A plain socket from another shard moves there (its descriptor, on
// that shard's io_context); a TLS stream cannot leave its shard, so its
// upgrade is refused (unknown sid) and the client goes on polling.
void ShardServer::hand_over_engineio_upgrade(detail::ByteStream stream, std::string received,
                                             std::string_view query) {
  std::map<std::string, std::string> params;
  detail::parse_query(query, params);
  const std::string sid = params.count("sid") ? params["sid"] : std::string();
  const std::size_t owner = detail::engineio_sid_shard(sid);
  WebSocketTransport& websocket = *websocket_;
  std::shared_ptr<detail::EngineIoPolling> engineio = engineio_;
  auto adopt_on_owner = [&websocket, engineio, sid, owner](detail::ByteStream s, const std::string& bytes) {
    std::shared_ptr<detail::EngineIoUpgradeSource> source = engineio->find(owner, sid);
    detail::WebSocketHandover::adopt(websocket, owner, std::move(s), bytes, std::move(source));
  };
  if (sid.empty() || owner >= context_.host.shard_count() || (owner != context_.shard && stream.is_tls())) {
    detail::WebSocketHandover::adopt(websocket, context_.shard, std::move(stream), received);
    return;
  }
  if (owner == context_.shard) {
    adopt_on_owner(std::move(stream), received);
    return;
  }
  std::error_code ec;
  asio::ip::tcp::socket& socket = stream.socket();
  const asio::ip::tcp::endpoint local = socket.local_endpoint(ec);
  if (ec) return;
  const int fd = socket.release(ec);
  if (ec) return;
  asio::io_context& target = context_.host.shard_context(owner);
  asio::post(target, [&target, fd, protocol = local.protocol(), bytes = std::move(received),
                      adopt_on_owner = std::move(adopt_on_owner)]() mutable {
    asio::ip::tcp::socket moved(target);
    std::error_code assign_error;
    moved.assign(protocol, fd, assign_error);
    if (assign_error) {
      ::close(fd);
      return;
    }
    adopt_on_owner(detail::ByteStream(std::move(moved)), bytes);
  });
}

// Engine.IO polling: only the handshake opens a session, so only it is
// refused while draining and counted against the client's request rate;
// the session's own requests are bounded by its message rate and heartbeat.
void ShardServer::serve_engineio(HttpConnection& c, std::string_view path, std::string_view query,
                                 std::optional<std::chrono::seconds> draining) {
  const std::string& method = c.request().method;
  if (method == "OPTIONS") {
    bump(counters_->preflights);
    c.respond(204, {}, {},
              "Allow: GET, POST, OPTIONS\r\nAccess-Control-Allow-Methods: GET, POST\r\n"
              "Access-Control-Allow-Headers: Content-Type, Authorization\r\nAccess-Control-Max-Age: 600\r\n");
    return;
  }
  HandshakeRequest request = describe(c, path, query, "socketio-polling");
  const detail::EngineIoRequest target = detail::read_engineio_request(request);
  if (target.error) {
    detail::refuse_engineio(c, *counters_, *target.error);
  } else if (target.transport != detail::EngineIoRequest::Transport::polling) {
    // transport=websocket without an upgrade (upgrades went to the WebSocket transport).
    detail::refuse_engineio(c, *counters_, detail::EngineIoError::bad_request);
  } else if (!target.sid.empty()) {
    if (method == "GET")
      engineio_->poll(c, context_.shard, target.sid);
    else if (method == "POST")
      engineio_->post(c, context_.shard, target.sid);
    else
      detail::refuse_engineio(c, *counters_, detail::EngineIoError::bad_request);
  } else if (method != "GET") {
    detail::refuse_engineio(c, *counters_, detail::EngineIoError::bad_handshake_method);
  } else if (draining) {
    c.no_keep_alive();
    c.refuse(503, "unavailable", "server draining", counters_->refused_shutting_down,
             "Retry-After: " + std::to_string(draining->count()) + "\r\n");
  } else if (within_rate(c, Principal{})) {
    engineio_->handshake(c, context_.shard, std::move(request));
  }
}

HandshakeRequest ShardServer::describe(const HttpConnection& c, std::string_view path, std::string_view query,
                                       const char* transport) const {
  const ParsedHttpRequest& r = c.request();
  HandshakeRequest h;
  h.transport = transport;
  h.path = std::string(path);
  detail::parse_query(query, h.query);
  h.headers = r.headers;
  detail::parse_cookies(r.header("cookie"), h.cookies);
  detail::vouch_for_cookies(h, settings_->allowed_origins);
  h.remote_address = c.remote_address();
  return h;
}

std::optional<Principal> ShardServer::authenticate(HttpConnection& c, const HandshakeRequest& request) {
  if (detail::cookie_credentials_ignored(request)) bump(counters_->ignored_cookie_credentials);
  std::optional<AuthResult> verdict = context_.host.authenticate(request);
  if (!verdict) {
    // A server fault, not a verdict on the token: the client may retry.
    c.refuse(500, "internal_error", "authentication failed", counters_->refused_unauthorized);
    return std::nullopt;
  }
  if (verdict->accepted()) {
    if (!within_rate(c, *verdict->principal)) return std::nullopt;
    return std::move(verdict->principal);
  }
  context_.host.count_error(Errc::unauthorized);
  c.refuse(401, "unauthorized", verdict->reason.empty() ? "unauthorized" : verdict->reason,
           counters_->refused_unauthorized);
  return std::nullopt;
}

// Every SSE stream, poll and POST is a new session: the allowance is the
// client's (its principal, or its address when anonymous), not the request's.
bool ShardServer::within_rate(HttpConnection& c, const Principal& principal) {
  std::string client;
  if (!principal.id.empty()) {
    client = "principal " + principal.id;
  } else {
    std::error_code ec;
    const asio::ip::address address = asio::ip::make_address(c.remote_address(), ec);
    const detail::AddressCounts::Key key = ec ? detail::AddressCounts::Key{} : detail::AddressCounts::key_of(address);
    client.assign("address ");
    client.append(reinterpret_cast<const char*>(key.data()), key.size());
  }
  std::chrono::milliseconds retry_after{0};
  if (rate_->allow(client, std::chrono::steady_clock::now(), retry_after)) return true;
  context_.host.count_error(Errc::rate_limited);
  const auto seconds = (retry_after.count() + 999) / 1000;
  c.refuse(429, "rate_limited", "too many requests", counters_->refused_rate_limited,
           "Retry-After: " + std::to_string(seconds) + "\r\n");
  return false;
}

std::optional<std::vector<std::string>> ShardServer::topics_of(HttpConnection& c, std::string_view query) {
  auto raw = detail::raw_query_parameter(query, "topics");
  std::optional<std::vector<std::string>> topics;
  if (raw) topics = detail::parse_topic_list(*raw);
  if (!topics) c.refuse(400, "bad_request", "missing or malformed \"topics\"", counters_->refused_bad_parameters);
  return topics;
}

// `recent=<topic>:<count>:<seconds>,...`: recent history on subscribe.
std::optional<detail::RecentRequests> ShardServer::recent_of(HttpConnection& c, const HandshakeRequest& request) {
  auto recent = detail::parse_recent(request.query_param("recent"));
  if (!recent) c.refuse(400, "bad_request", "malformed \"recent\"", counters_->refused_bad_parameters);
  return recent;
}

// `protocol=<name>` picks one of the broker's protocols; none: its default.
std::optional<std::size_t> ShardServer::protocol_of(HttpConnection& c, const HandshakeRequest& request) {
  std::optional<std::size_t> found = context_.host.find_protocol(request.query_param("protocol"));
  if (!found) c.refuse(400, "bad_request", "unknown \"protocol\"", counters_->refused_bad_parameters);
  return found;
}

void ShardServer::start_sse(HttpConnection& c, std::string_view query, const HandshakeRequest& request) {
  auto topics = topics_of(c, query);
  if (!topics) return;
  // EventSource's own reconnect sends the id of the last event it saw.
  const ParsedHttpRequest& r = c.request();
  auto cursor = detail::parse_cursor(r.headers.count("last-event-id") ? r.header("last-event-id")
                                                                       : request.query_param("cursor"));
  if (!cursor) {
    c.refuse(400, "bad_request", "malformed cursor", counters_->refused_bad_parameters);
    return;
  }
  auto recent = recent_of(c, request);
  if (!recent) return;
  auto protocol = protocol_of(c, request);
  if (!protocol) return;
  auto principal = authenticate(c, request);
  if (!principal) return;
  detail::SseStream::start(context_, c, *protocol, std::move(*principal),
                           {std::move(*topics), std::move(*cursor), std::move(*recent)});
}

void ShardServer::start_poll(HttpConnection& c, std::string_view query, const HandshakeRequest& request) {
  auto topics = topics_of(c, query);
  if (!topics) return;
  auto cursor = detail::parse_cursor(request.query_param("cursor"));
  if (!cursor) {
    c.refuse(400, "bad_request", "malformed cursor", counters_->refused_bad_parameters);
    return;
  }
  auto recent = recent_of(c, request);
  if (!recent) return;
  std::chrono::milliseconds timeout = settings_->poll_timeout;
  if (request.query.count("timeout")) {
    const std::string& text = request.query_param("timeout");
    std::uint64_t ms = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), ms);
    if (text.empty() || ec != std::errc() || end != text.data() + text.size()) {
      c.refuse(400, "bad_request", "malformed \"timeout\"", counters_->refused_bad_parameters);
      return;
    }
    const auto most = static_cast<std::uint64_t>(settings_->max_poll_timeout.count());
    const auto least = static_cast<std::uint64_t>(settings_->min_poll_timeout.count());
    timeout = std::chrono::milliseconds(static_cast<std::int64_t>(std::max(std::min(ms, most), least)));
  }
  auto protocol = protocol_of(c, request);
  if (!protocol) return;
  auto principal = authenticate(c, request);
  if (!principal) return;
  detail::LongPoll::start(context_, c, *protocol, std::move(*principal),
                          {std::move(*topics), std::move(*cursor), std::move(*recent)}, timeout);
}

void ShardServer::start_post(HttpConnection& c, const HandshakeRequest& request) {
  auto protocol = protocol_of(c, request);
  if (!protocol) return;
  auto principal = authenticate(c, request);
  if (!principal) return;
  detail::PostedMessage::start(context_, c, *protocol, std::move(*principal));
}

}  // namespace

struct HttpTransport::Impl {
  Impl(Broker& b, HttpTransportSettings s)
      : broker(b),
        host(b.session_host()), settings(std::make_shared<const HttpTransportSettings>(std::move(s))), shards(host, "http") {}

  Broker& broker;
  SessionHost& host;
  std::shared_ptr<const HttpTransportSettings> settings;
  std::shared_ptr<HttpCounters> counters = std::make_shared<HttpCounters>();
  std::shared_ptr<detail::AddressCounts> addresses = std::make_shared<detail::AddressCounts>();
  std::shared_ptr<detail::ClientRate> rate =
      std::make_shared<detail::ClientRate>(settings->max_session_requests_per_second);
  WebSocketTransport* websocket = nullptr;
  std::shared_ptr<detail::TlsContext> tls;  // from start() on, with settings->tls
  std::shared_ptr<detail::EngineIoPolling> engineio;  // from start() on, when the broker speaks socket.io
  detail::TransportShards<ShardServer> shards;
};

HttpTransport::HttpTransport(Broker& broker, HttpTransportSettings settings)
    : impl_(std::make_unique<Impl>(broker, std::move(settings))) {}

HttpTransport::~HttpTransport() { stop(); }

void HttpTransport::serve_websocket(WebSocketTransport& websocket) { impl_->websocket = &websocket; }

void HttpTransport::start() {
  Impl& d = *impl_;
  // The certificate and key load before anything binds: a bad pair throws here.
  if (d.settings->tls && !d.tls) {
    SessionHost& host = d.host;
    d.tls = std::make_shared<detail::TlsContext>(
        *d.settings->tls, [&host](const std::string& what, std::error_code ec) { host.report_error(what, ec); });
  }
  if (!d.engineio || d.engineio->stopping())
    if (auto socketio = d.host.find_protocol(socketio_protocol_name))
      d.engineio = std::make_shared<detail::EngineIoPolling>(d.host, *socketio, d.settings, d.counters,
                                                             /*upgrades=*/d.websocket != nullptr);
  d.shards.start(d.settings->address, d.settings->port, /*listen=*/true, [&](std::size_t shard) {
    return std::make_shared<ShardServer>(d.broker, d.host, shard, d.settings, d.counters, d.addresses, d.rate, d.websocket,
                                         d.tls, d.engineio);
  });
}

void HttpTransport::stop() {
  Impl& d = *impl_;
  // Engine.IO sessions outlive their connections, so the connections'
  // shutdown would not reach them: they end first, each on its shard,
  // answering their waiting GETs (which the shutdown then writes).
  if (d.engineio)
    for (std::size_t i = 0; i < d.host.shard_count(); ++i)
      d.host.execute_on_shard(i, [&] { d.engineio->close_all(i); });
  d.shards.stop();
}

std::uint16_t HttpTransport::port() const noexcept { return impl_->shards.port(); }

HttpTransportMetrics HttpTransport::metrics() const {
  const HttpCounters& c = *impl_->counters;
  auto get = [](const std::atomic<std::uint64_t>& a) { return a.load(std::memory_order_relaxed); };
  HttpTransportMetrics m;
  m.connections = get(c.connections);
  m.connections_active = get(c.connections_active);
  m.requests = get(c.requests);
  m.sse_streams = get(c.sse_streams);
  m.sse_active = get(c.sse_active);
  m.polls = get(c.polls);
  m.posts = get(c.posts);
  m.publish_requests = get(c.publish_requests);
  m.publish_publications = get(c.publish_publications);
  m.preflights = get(c.preflights);
  m.handler_requests = get(c.handler_requests);
  m.websocket_upgrades = get(c.websocket_upgrades);
  m.write_timeouts = get(c.write_timeouts);
  m.refused_malformed = get(c.refused_malformed);
  m.refused_bad_parameters = get(c.refused_bad_parameters);
  m.refused_too_large = get(c.refused_too_large);
  m.refused_method = get(c.refused_method);
  m.refused_unauthorized = get(c.refused_unauthorized);
  m.refused_origin = get(c.refused_origin);
  m.refused_not_found = get(c.refused_not_found);
  m.refused_timeout = get(c.refused_timeout);
  m.refused_too_many_connections = get(c.refused_too_many_connections);
  m.refused_per_address = get(c.refused_per_address);
  m.refused_shutting_down = get(c.refused_shutting_down);
  m.refused_rate_limited = get(c.refused_rate_limited);
  m.refused_forbidden = get(c.refused_forbidden);
  m.refused_unavailable = get(c.refused_unavailable);
  m.refused_unknown_session = get(c.refused_unknown_session);
  m.refused_engineio = get(c.refused_engineio);
  m.engineio_sessions = get(c.engineio_sessions);
  m.engineio_sessions_active = get(c.engineio_sessions_active);
  m.engineio_polls = get(c.engineio_polls);
  m.engineio_posts = get(c.engineio_posts);
  m.ignored_cookie_credentials = get(c.ignored_cookie_credentials);
  if (impl_->tls) {
    m.tls = impl_->tls->metrics();
    m.tls.handshakes_failed += get(c.tls_handshakes_failed);
  }
  return m;
}

std::error_code HttpTransport::reload_tls() {
  if (!impl_->tls) return std::make_error_code(std::errc::operation_not_supported);
  return impl_->tls->reload();
}

LIVECAST_END_NAMESPACE
