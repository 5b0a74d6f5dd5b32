// Error codes shared by the protocol, the hooks and the backends, and the
// WebSocket close codes livecast sends.
#pragma once

#include <livecast/config.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>

LIVECAST_BEGIN_NAMESPACE

// The fixed set of errors a client can be told about. Each has a stable wire
// name (see to_wire_name) used in `{"error":{"code":...}}` replies.
enum class Errc {
  ok = 0,
  bad_request,             // well-formed JSON but wrong shape or types
  invalid_json,            // not JSON at all
  unknown_op,              // "op" names nothing livecast knows
  forbidden,               // the Authorizer said no
  unauthorized,            // the Authenticator refused the handshake
  too_many_subscriptions,  // SessionSettings::max_subscriptions reached
  already_subscribed,      // subscribe twice to one topic
  not_subscribed,          // unsubscribe from a topic the session is not in
  message_too_large,       // frame over SessionSettings::max_message_bytes
  rate_limited,            // too many client messages per second
  invalid_topic,           // empty, too long or with control characters
  invalid_payload,         // a publication whose data is not valid JSON
  backend_unavailable,     // the backend could not take the publication
  shutting_down,           // the broker is stopping
  internal_error,          // the server failed on this request (a host hook threw); try again
  // Add new codes above this line, and to to_wire_name: per-code counters
  // (BrokerMetrics::errors_by_code) are sized from errc_count.
};

// How many Errc values there are; tests/core/error.cpp checks that it
// follows the last one.
inline constexpr std::size_t errc_count = static_cast<std::size_t>(Errc::internal_error) + 1;

inline const char* to_wire_name(Errc e) noexcept {
  switch (e) {
    case Errc::ok: return "ok";
    case Errc::bad_request: return "bad_request";
    case Errc::invalid_json: return "invalid_json";
    case Errc::unknown_op: return "unknown_op";
    case Errc::forbidden: return "forbidden";
    case Errc::unauthorized: return "unauthorized";
    case Errc::too_many_subscriptions: return "too_many_subscriptions";
    case Errc::already_subscribed: return "already_subscribed";
    case Errc::not_subscribed: return "not_subscribed";
    case Errc::message_too_large: return "message_too_large";
    case Errc::rate_limited: return "rate_limited";
    case Errc::invalid_topic: return "invalid_topic";
    case Errc::invalid_payload: return "invalid_payload";
    case Errc::backend_unavailable: return "backend_unavailable";
    case Errc::shutting_down: return "shutting_down";
    case Errc::internal_error: return "internal_error";
  }
  return "unknown";
}

class ErrcCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "livecast"; }
  std::string message(int value) const override { return to_wire_name(static_cast<Errc>(value)); }
};

inline const std::error_category& livecast_category() noexcept {
  static const ErrcCategory category;
  return category;
}

inline std::error_code make_error_code(Errc e) noexcept {
  return {static_cast<int>(e), livecast_category()};
}

// WebSocket close codes (RFC 6455 section 7.4). 1000-1015 are the standard
// ones; 4000-4999 are livecast's own, documented in docs/protocol.md. A client
// reconnects after any code except those for which should_reconnect is false.
enum class CloseCode : std::uint16_t {
  normal = 1000,
  going_away = 1001,          // server shutting down or restarting: reconnect
  protocol_error = 1002,
  unsupported_data = 1003,    // binary frame where text was expected
  invalid_payload = 1007,     // a text message that is not UTF-8
  policy_violation = 1008,
  message_too_large = 1009,   // frame over max_message_bytes
  internal_error = 1011,
  unauthorized = 4001,        // the Authenticator refused the token: do not reconnect
  forbidden_origin = 4003,    // Origin not in the allowed list: do not reconnect
  slow_consumer = 4008,       // the send queue overflowed under SlowConsumerPolicy::disconnect
  idle_timeout = 4009,        // no pong or message within SessionSettings::idle_timeout
  token_expired = 4011,       // Principal::expires_at passed with no refresh: get a new token, reconnect
  reconnect_after = 4012,     // drained or shed by the server: reconnect after the delay the reason names
  rate_limited = 4029,        // too many client messages
};

// Close codes after which reconnecting with the same credentials cannot help.
inline bool should_reconnect(CloseCode code) noexcept {
  return code != CloseCode::unauthorized && code != CloseCode::forbidden_origin &&
         code != CloseCode::message_too_large && code != CloseCode::unsupported_data;
}

// Close codes that end a session for good where a protocol can say so
// (Socket.IO's DISCONNECT, Protocol::encode_farewell): the host closed it on
// purpose (normal), or the client was refused in a way a new connection
// would be refused again. Any other close, and a connection that just
// dropped, leaves a resumable session for its client's return
// (Protocol::resumes_sessions).
inline bool ends_session_for_good(CloseCode code) noexcept {
  switch (code) {
    case CloseCode::normal:
    case CloseCode::unauthorized:
    case CloseCode::forbidden_origin:
    case CloseCode::policy_violation:
    case CloseCode::protocol_error:
    case CloseCode::rate_limited:
      return true;
    default:
      return false;
  }
}

LIVECAST_END_NAMESPACE

namespace std {
template <>
struct is_error_code_enum<livecast::Errc> : true_type {};
}  // namespace std
