// Who a session is: what the Authenticator decided at the handshake.
#pragma once

#include <livecast/config.hpp>

#include <algorithm>
#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

LIVECAST_BEGIN_NAMESPACE

struct Principal {
  std::string id;                             // user or service id; empty for anonymous
  std::vector<std::string> roles;             // e.g. {"admin"}; matched by Authorizer rules
  std::map<std::string, std::string> claims;  // e.g. {"org": "acme"}; substituted into `{org}` in patterns
  // When the credential behind this principal stops being valid (a JWT's
  // `exp`). The broker closes the session then (CloseCode::token_expired)
  // unless the client sent a `refresh` with a newer token; none: never.
  std::optional<std::chrono::system_clock::time_point> expires_at{};

  bool has_role(const std::string& role) const {
    return std::find(roles.begin(), roles.end(), role) != roles.end();
  }
  // The claim's value, or an empty string when absent.
  const std::string& claim(const std::string& key) const {
    static const std::string empty;
    auto it = claims.find(key);
    return it == claims.end() ? empty : it->second;
  }
};

LIVECAST_END_NAMESPACE
