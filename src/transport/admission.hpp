// What every transport checks about a request before it opens a session:
// where the request points, whether its Origin may connect, and what the
// Broker's Authenticator says. Shared by the WebSocket and HTTP transports so
// that one rule holds for both.
#pragma once

#include <livecast/broker.hpp>
#include <livecast/config.hpp>
#include <livecast/error.hpp>
#include <livecast/handshake.hpp>

#include <algorithm>
#include <exception>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

LIVECAST_BEGIN_NAMESPACE
namespace detail {

// A request target in origin form: an absolute-form target (as sent to
// proxies, "http://host/path?q") loses its scheme and authority.
inline std::string_view origin_form(std::string_view target) {
  if (auto scheme = target.find("://"); scheme != std::string_view::npos && scheme < target.find('/')) {
    auto path_start = target.find('/', scheme + 3);
    return path_start == std::string_view::npos ? std::string_view("/") : target.substr(path_start);
  }
  return target;
}

// Non-browser clients send no Origin and always pass; an empty list allows any.
inline bool origin_allowed(const std::vector<std::string>& allowed, const std::string& origin) {
  return origin.empty() || allowed.empty() || std::find(allowed.begin(), allowed.end(), origin) != allowed.end();
}

// The Authenticator's verdict (anonymous acceptance without one), or nullopt
// when it threw: a server fault, reported, not a verdict on the token.
inline std::optional<AuthResult> authenticate(Broker& broker, const HandshakeRequest& request) {
  try {
    const Authenticator& authenticator = broker.settings().authenticator;
    return authenticator ? authenticator(request) : AuthResult::accept(Principal{});
  } catch (const std::exception&) {
    broker.report_error("the authenticator threw", make_error_code(Errc::unauthorized));
    return std::nullopt;
  }
}

}  // namespace detail
LIVECAST_END_NAMESPACE
