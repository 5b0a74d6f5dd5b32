// What every transport checks about a request before it opens a session:
// where the request points and whether its Origin may connect (the
// Authenticator's verdict comes from SessionHost::authenticate). Shared by
// the WebSocket and HTTP transports so that one rule holds for both.
#pragma once

#include <livecast/config.hpp>

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

}  // namespace detail
LIVECAST_END_NAMESPACE
