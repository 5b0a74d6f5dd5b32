#include "websocket_admission.hpp"

#include "admission.hpp"
#include "engineio.hpp"
#include "http_counters.hpp"
#include "http_request_parser.hpp"
#include "http_response.hpp"

#include <livecast/socketio.hpp>

#include <cctype>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

LIVECAST_BEGIN_NAMESPACE
namespace detail::ws {

HandshakeRequest describe(Connection& con, const char* transport, const WebSocketSettings& settings) {
  HandshakeRequest r;
  r.transport = transport;
  const std::string_view target = origin_form(con.get_request().get_uri());
  std::size_t q = target.find('?');
  r.path = std::string(target.substr(0, q));
  if (q != std::string_view::npos) parse_query(target.substr(q + 1), r.query);
  for (const auto& [name, value] : con.get_request().get_headers()) {
    std::string lower = name;
    for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    r.headers.emplace(std::move(lower), value);
  }
  parse_cookies(r.header("cookie"), r.cookies);
  vouch_for_cookies(r, settings.allowed_origins);
  std::error_code ec;
  if (con.lean) {
    auto remote = con.lean->stream.remote_endpoint(ec);
    if (!ec) r.remote_address = remote.address().to_string();
  }
  return r;
}

// --- limits ---

AddressCounts::Entry* HandshakeAdmission::enter_limits(const asio::ip::tcp::socket& socket) {
  ConnectionLimits& limits = *limits_;
  bump(limits.taken);
  std::error_code ec;
  const asio::ip::tcp::endpoint remote = socket.remote_endpoint(ec);
  if (ec) return nullptr;  // the client is already gone
  if (limits.held.fetch_add(1) >= settings_->max_connections) {
    limits.held.fetch_sub(1);
    bump(limits.refused_too_many_connections);
    return nullptr;
  }
  AddressCounts::Entry* address = limits.addresses.acquire(remote.address(), settings_->max_connections_per_address);
  if (!address) {
    limits.held.fetch_sub(1);
    bump(limits.refused_per_address);
    return nullptr;
  }
  if (limits.handshaking.fetch_add(1) >= settings_->max_pending_handshakes) {
    leave_limits(address, true);
    bump(limits.refused_pending_handshakes);
    return nullptr;
  }
  return address;
}

void HandshakeAdmission::leave_limits(AddressCounts::Entry* address, bool handshaking) {
  if (handshaking) limits_->handshaking.fetch_sub(1);
  limits_->addresses.release(address);
  limits_->held.fetch_sub(1);
}

void HandshakeAdmission::leave_limits(LeanConnection& con) {
  if (!con.address) return;
  leave_limits(std::exchange(con.address, nullptr), std::exchange(con.handshaking, false));
}

void HandshakeAdmission::end_handshake(LeanConnection& con) {
  if (std::exchange(con.handshaking, false)) limits_->handshaking.fetch_sub(1);
}

// --- handshake ---

namespace {

std::string refusal_response(int status, std::string_view reason) {
  std::string body(reason);
  body += '\n';
  return "HTTP/1.1 " + std::to_string(status) + " " + reason_phrase(status) +
         "\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\n\r\n" + body;
}

}  // namespace

HandshakeAdmission::RequestHeadStep HandshakeAdmission::read_request_head(Connection& con, std::string_view bytes) {
  RequestHeadStep step;
  HttpRequestParser& parser = *con.request_head;
  const std::size_t used = parser.feed(bytes);
  if (parser.failed()) {
    step.refusal = refusal_response(parser.error_status(), parser.error_reason());
  } else if (parser.complete()) {
    const ParsedHttpRequest& request = parser.request();
    // HTTP/1.0 lets a request leave Host out; a WebSocket handshake is
    // HTTP/1.1 (RFC 6455 4.1), and websocketpp asks for it on every request.
    if (request.header("host").empty()) {
      step.refusal = refusal_response(400, "request without Host");
    } else {
      step.forward = format_request_head(request);
      step.forward += request.body;
      step.rest = std::string(bytes.substr(used));
    }
  }
  if (!step.refusal.empty() || !step.forward.empty()) con.request_head.reset();
  return step;
}

bool HandshakeAdmission::validate(Connection& con, bool stopped) {
  if (stopped || !host_.accepting()) {
    con.set_status(websocketpp::http::status_code::service_unavailable);
    // Draining: the client should come back (to another instance, which the
    // load balancer now prefers) after a while, not at once.
    if (auto retry_after = host_.draining(); retry_after && !stopped)
      con.replace_header("Retry-After", std::to_string(retry_after->count()));
    return false;
  }
  // websocketpp answers 101 to any key it finds; a malformed handshake is
  // refused before the host's code (origin rules, Authenticator) sees it.
  if (!valid_websocket_key(con.get_request_header("Sec-WebSocket-Key"))) {
    con.set_status(websocketpp::http::status_code::bad_request);
    return false;
  }
  HandshakeRequest request = describe(con, "websocket", *settings_);
  if (!origin_allowed(settings_->allowed_origins, request.header("origin"))) {
    con.set_status(websocketpp::http::status_code::forbidden);
    return false;
  }
  // Socket.IO's clients (Engine.IO's websocket transport) on their own path.
  std::optional<std::size_t> socketio;
  if (request.path == settings_->socketio_path) socketio = host_.find_protocol(socketio_protocol_name);
  if (request.path != settings_->path && !socketio) {
    con.set_status(websocketpp::http::status_code::not_found);
    return false;
  }
  // Shared prepared frames use RFC 6455 framing; refuse the 2010 drafts.
  if (con.get_request_header("Sec-WebSocket-Version") != "13") {
    con.set_status(websocketpp::http::status_code::upgrade_required);
    con.replace_header("Sec-WebSocket-Version", "13");
    return false;
  }
  if (socketio) return validate_engineio(con, std::move(request), *socketio);
  std::optional<std::size_t> protocol;
  const std::vector<std::string>& offered = con.get_requested_subprotocols();
  if (offered.empty()) protocol = 0;
  for (const std::string& name : offered) {
    if (name.empty()) continue;
    if (auto found = host_.find_protocol(name)) {
      std::error_code ignored;
      con.select_subprotocol(name, ignored);
      protocol = found;
      break;
    }
  }
  if (!protocol) {
    con.set_status(websocketpp::http::status_code::bad_request, "Unsupported Subprotocol");
    return false;
  }
  std::optional<AuthResult> verdict = host_.authenticate(request);
  if (!verdict) {
    con.set_status(websocketpp::http::status_code::internal_server_error);
    return false;
  }
  // A refused client still gets the upgrade, then a close with
  // CloseCode::unauthorized: a browser cannot read the status of a failed
  // handshake, but it can read a close code, and 4001 tells it not to
  // reconnect with the same token. No session is opened for it.
  con.pending = std::make_unique<PendingOpen>();
  con.pending->principal = std::move(verdict->principal);
  con.pending->refusal = std::move(verdict->reason);
  con.protocol = static_cast<std::uint32_t>(*protocol);
  return true;
}

bool HandshakeAdmission::validate_engineio(Connection& con, HandshakeRequest request, std::size_t protocol) {
  const EngineIoRequest eio = read_engineio_request(request);
  std::optional<EngineIoError> error = eio.error;
  if (!error && eio.transport != EngineIoRequest::Transport::websocket) error = EngineIoError::bad_request;
  // A sid asks to upgrade a polling session to this WebSocket: the HTTP
  // transport that handed the request over found it (on this shard), or
  // there is nothing to upgrade.
  const bool upgrade = !eio.sid.empty();
  if (!error && upgrade && !(con.pending && con.pending->upgrade_from)) error = EngineIoError::unknown_sid;
  if (error) {
    host_.count_error(Errc::bad_request);
    con.set_status(websocketpp::http::status_code::bad_request);
    con.replace_header("Content-Type", "application/json");
    con.set_body(engineio_error_body(*error));
    return false;
  }
  // No subprotocol is selected: Socket.IO's clients offer none.
  if (upgrade) return true;  // the session exists: on_open waits for the probe
  con.pending = std::make_unique<PendingOpen>();
  con.pending->in_band = std::make_unique<HandshakeRequest>(std::move(request));
  con.protocol = static_cast<std::uint32_t>(protocol);
  return true;
}

void HandshakeAdmission::serve_http(Connection& con) {
  HttpResponse response = host_.serve_http(settings_->http_handler, describe(con, "http", *settings_));
  con.set_status(static_cast<websocketpp::http::status_code::value>(response.status));
  // Malformed fields from the handler are left out (http_response.hpp):
  // websocketpp would emit a line break as it is, and throw on an invalid name.
  if (response_header_allowed("Content-Type", response.content_type))
    con.replace_header("Content-Type", response.content_type);
  for (const auto& [name, value] : response.headers)
    if (response_header_allowed(name, value)) con.append_header(name, value);
  con.set_body(response.body);
}

}  // namespace detail::ws
LIVECAST_END_NAMESPACE
