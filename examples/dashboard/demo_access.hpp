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

// Every session joins its org's announcement topic "org:<org>" on connect.
std::vector<std::string> demo_server_joins(const livecast::Principal& principal);

}  // namespace dashboard
