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
  std::string transport;  // "websocket", "sse", "long-poll", "refresh"
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
  // Credentials sent in band, after the transport connected (Socket.IO's
  // CONNECT `auth` object): that JSON object's text, "" when none, and its
  // "token" string member.
  std::string auth;
  std::string auth_token;

  const std::string& query_param(const std::string& name) const { return find(query, name); }
  const std::string& header(std::string name) const {
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return find(headers, name);
  }
  const std::string& cookie(const std::string& name) const { return find(cookies, name); }

  // The bearer token, from the first of:
  //  0. the in-band credentials' token (auth_token), when the protocol sends one;
  //  1. an `Authorization: Bearer <token>` header (clients that can set one);
  //  2. a `Sec-WebSocket-Protocol` entry `livecast.bearer.<token>`: browsers
  //     cannot set headers on a WebSocket, but they can offer subprotocols.
  //     The client offers its real protocol too (`livecast.v1`), which is the
  //     one the server selects; the bearer entry is never echoed back;
  //  3. `?token=`: the last resort, since URLs reach access logs and proxies;
  //  4. a `livecast_token` cookie, only when cookie_credentials_allowed.
  std::string token() const {
    if (!auth_token.empty()) return auth_token;
    const std::string& auth = header("authorization");
    if (auth.size() > 7 && (auth.compare(0, 7, "Bearer ") == 0 || auth.compare(0, 7, "bearer ") == 0))
      return auth.substr(7);
    if (std::string from_protocol = bearer_subprotocol(header("sec-websocket-protocol")); !from_protocol.empty())
      return from_protocol;
    if (auto& q = query_param("token"); !q.empty()) return q;
    return cookie_credentials_allowed ? cookie("livecast_token") : std::string();
  }

  // The prefix of a subprotocol entry that carries a bearer token.
  static constexpr const char* bearer_subprotocol_prefix = "livecast.bearer.";

 private:
  // The token of the first `livecast.bearer.<token>` entry of a
  // comma-separated Sec-WebSocket-Protocol value (repeated headers arrive
  // joined with commas), or an empty string.
  static std::string bearer_subprotocol(const std::string& offered) {
    const std::string prefix = bearer_subprotocol_prefix;
    std::size_t start = 0;
    while (start <= offered.size()) {
      std::size_t end = offered.find(',', start);
      if (end == std::string::npos) end = offered.size();
      std::size_t first = start, last = end;
      while (first < last && (offered[first] == ' ' || offered[first] == '\t')) ++first;
      while (last > first && (offered[last - 1] == ' ' || offered[last - 1] == '\t')) --last;
      if (last - first > prefix.size() && offered.compare(first, prefix.size(), prefix) == 0)
        return offered.substr(first + prefix.size(), last - first - prefix.size());
      start = end + 1;
    }
    return {};
  }

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
