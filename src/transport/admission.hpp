// What every transport checks about a request before it opens a session:
// where the request points, whether its Origin may connect, and whether its
// cookies may stand for the user (the Authenticator's verdict comes from
// SessionHost::authenticate). Shared by the WebSocket and HTTP transports so
// that one rule holds for both.
#pragma once

#include <livecast/config.hpp>
#include <livecast/handshake.hpp>

#include <algorithm>
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

// Whether a request's cookies may stand for the user. A browser attaches them
// to requests any page can make: a WebSocket handshake (no CORS applies), a
// text/plain POST or a GET (no preflight). Only an Origin the operator listed
// says the page is one of theirs, so an empty list, whose origin_allowed()
// lets every site in, vouches for none. A request without Origin is refused
// too: browsers send it on every WebSocket handshake and cross-site request,
// and a non-browser holds no one's ambient cookies, so it can send its token
// as a query parameter or Authorization header instead. "null" never
// vouches, even when listed: any site can send it from a sandboxed frame.
inline bool cookie_credentials_allowed(const std::vector<std::string>& allowed, const std::string& origin) {
  return !origin.empty() && origin != "null" && std::find(allowed.begin(), allowed.end(), origin) != allowed.end();
}

// Every transport's HandshakeRequest goes through here once its headers are
// in, before the Authenticator or an HttpHandler sees it, so that
// HandshakeRequest::token() follows one rule.
inline void vouch_for_cookies(HandshakeRequest& request, const std::vector<std::string>& allowed_origins) {
  request.cookie_credentials_allowed = cookie_credentials_allowed(allowed_origins, request.header("origin"));
}

// A `livecast_token` cookie the request carried that token() ignored for want
// of an allowed Origin, where it would have been the token: worth counting,
// since the Authenticator then sees no token at all.
inline bool cookie_credentials_ignored(const HandshakeRequest& request) {
  return !request.cookie_credentials_allowed && request.token().empty() && !request.cookie("livecast_token").empty();
}

}  // namespace detail
LIVECAST_END_NAMESPACE
