// Who may see what in the demo: tokens of the form "<role>-<org>" stand in
// for a real identity provider, and every topic is scoped to an org.
#pragma once

#include <livecast/livecast.hpp>

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

// Everyone reads their own org's topics; viewers do not see raw transactions.
livecast::Authorizer demo_authorizer();

// Every session joins its org's announcement topic "org:<org>" on connect.
std::vector<std::string> demo_server_joins(const livecast::Principal& principal);

}  // namespace dashboard
