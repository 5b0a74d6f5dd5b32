// The handshake request a transport hands to the Authenticator, and the
// Authenticator hook itself.
#pragma once

#include <livecast/config.hpp>
#include <livecast/principal.hpp>

#include <cctype>
#include <functional>
#include <map>
#include <optional>
#include <string>

LIVECAST_BEGIN_NAMESPACE

// What a client sent when it connected, decoded by the transport. Header names
// are lower-case; query values and cookies are percent-decoded.
struct HandshakeRequest {
  std::string transport;  // "websocket", later "sse" or "long-poll"
  std::string path;       // without the query string
  std::map<std::string, std::string> query;
  std::map<std::string, std::string> headers;
  std::map<std::string, std::string> cookies;
  std::string remote_address;
  // Whether a `livecast_token` cookie may stand for the user: set by the
  // transport when its allowed_origins list is not empty and the request's
  // Origin is on it. A browser attaches cookies to requests any page can make
  // (a WebSocket handshake, a text/plain POST), so a cookie alone says nothing
  // about which site is asking; `cookies` stays readable either way.
  bool cookie_credentials_allowed = false;

  const std::string& query_param(const std::string& name) const { return find(query, name); }
  const std::string& header(std::string name) const {
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return find(headers, name);
  }
  const std::string& cookie(const std::string& name) const { return find(cookies, name); }

  // The bearer token from `?token=`, an `Authorization: Bearer` header, or a
  // `livecast_token` cookie, in that order; the cookie only when
  // cookie_credentials_allowed. Browsers cannot set headers on a WebSocket,
  // hence the query parameter.
  std::string token() const {
    if (auto& q = query_param("token"); !q.empty()) return q;
    const std::string& auth = header("authorization");
    if (auth.size() > 7 && (auth.compare(0, 7, "Bearer ") == 0 || auth.compare(0, 7, "bearer ") == 0))
      return auth.substr(7);
    return cookie_credentials_allowed ? cookie("livecast_token") : std::string();
  }

 private:
  static const std::string& find(const std::map<std::string, std::string>& m, const std::string& k) {
    static const std::string empty;
    auto it = m.find(k);
    return it == m.end() ? empty : it->second;
  }
};

// An Authenticator's verdict: a Principal, or a refusal with a reason the
// client is told (close code CloseCode::unauthorized).
struct AuthResult {
  std::optional<Principal> principal;
  std::string reason;

  static AuthResult accept(Principal p) { return {std::move(p), {}}; }
  static AuthResult refuse(std::string why) { return {std::nullopt, std::move(why)}; }
  bool accepted() const noexcept { return principal.has_value(); }
};

// Called once per connection, on the thread of the shard that owns it; must
// not block (verify a token, look it up in memory; do no network I/O here).
using Authenticator = std::function<AuthResult(const HandshakeRequest&)>;

// Accepts everyone as an anonymous principal: the default, for demos and
// services behind their own gateway.
inline Authenticator allow_anonymous() {
  return [](const HandshakeRequest&) { return AuthResult::accept(Principal{}); };
}

LIVECAST_END_NAMESPACE
