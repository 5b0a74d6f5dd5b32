// Who may see what in the demo: tokens of the form "<role>-<org>" stand in
// for a real identity provider, and every topic is scoped to an org.
#pragma once

#include <livecast/livecast.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace dashboard {

inline const std::vector<std::string>& demo_orgs() {
  static const std::vector<std::string> orgs{"acme", "globex"};
  return orgs;
}
inline const std::vector<std::string>& demo_roles() {
  static const std::vector<std::string> roles{"admin", "analyst", "viewer"};
  return roles;
}

// Every demo token, "admin-acme" first.
std::vector<std::string> demo_tokens();

// The principal a demo token stands for: id "<role>@<org>", roles {role},
// claims {org}; nullopt for anything that is not a demo token.
std::optional<livecast::Principal> principal_for_token(const std::string& token);

// Refuses every token that is not a demo token.
livecast::Authenticator demo_authenticator();

// With --jwt-secret: JWTs signed with HS256 under `secret` (32 bytes or
// more), whose claims `sub`, `org` and `role` make the principal; through
// livecast's JwtVerifier, as a real deployment would. Throws
// std::invalid_argument for a secret that is too short.
livecast::Authenticator demo_jwt_authenticator(const std::string& secret);

// A token for the demo user `demo_token` ("analyst-acme") valid for
// `lifetime`, signed with `secret`: what an identity provider would issue.
std::string mint_demo_jwt(const std::string& secret, const std::string& demo_token, std::chrono::seconds lifetime);

// Everyone reads their own org's topics; viewers do not see raw transactions.
livecast::Authorizer demo_authorizer();

// The claim that marks the sessions of Socket.IO clients, and its value.
inline constexpr const char* client_claim = "client";
inline constexpr const char* socketio_client = "socket.io";

// `inner`, with the principals of clients that connect at `socketio_path`
// (Socket.IO's, over its websocket or polling transport) given the claim
// client_claim = socketio_client, which demo_server_joins reads.
livecast::Authenticator mark_socketio_clients(livecast::Authenticator inner, std::string socketio_path);

// The rooms a session is put in on connect. Every session joins its org's
// announcement topic "org:<org>". A Socket.IO client (marked by
// mark_socketio_clients) also joins the org's KPI topics, its alerts and,
// where demo_authorizer() allows the role, its transaction feed: a Socket.IO
// server puts sockets in their rooms on connect (seed 000), and a
// socket.io-client page only listens for events. A livecast.v1 page
// subscribes to those topics itself, with the positions to resume from.
std::vector<std::string> demo_server_joins(const livecast::Principal& principal);

}  // namespace dashboard
