#include "demo_access.hpp"

#include <algorithm>

namespace dashboard {

std::vector<std::string> demo_tokens() {
  std::vector<std::string> tokens;
  for (const std::string& org : demo_orgs())
    for (const std::string& role : demo_roles()) tokens.push_back(role + "-" + org);
  return tokens;
}

std::optional<livecast::Principal> principal_for_token(const std::string& token) {
  const auto dash = token.find('-');
  if (dash == std::string::npos) return std::nullopt;
  std::string role = token.substr(0, dash);
  std::string org = token.substr(dash + 1);
  const auto& roles = demo_roles();
  const auto& orgs = demo_orgs();
  if (std::find(roles.begin(), roles.end(), role) == roles.end()) return std::nullopt;
  if (std::find(orgs.begin(), orgs.end(), org) == orgs.end()) return std::nullopt;

  livecast::Principal principal;
  principal.id = role + "@" + org;
  principal.roles = {role};
  principal.claims = {{"org", org}};
  return principal;
}

livecast::Authenticator demo_authenticator() {
  return [](const livecast::HandshakeRequest& request) {
    if (auto principal = principal_for_token(request.token())) return livecast::AuthResult::accept(*principal);
    return livecast::AuthResult::refuse("unknown token; use one of the demo tokens, e.g. analyst-acme");
  };
}

livecast::Authorizer demo_authorizer() {
  livecast::Authorizer authorizer;
  authorizer.allow_subscribe("org:{org}")
      .allow_subscribe("org:{org}:*")
      .deny_subscribe("org:{org}:transactions", "viewer");
  return authorizer;
}

std::vector<std::string> demo_server_joins(const livecast::Principal& principal) {
  const std::string& org = principal.claim("org");
  if (org.empty()) return {};
  return {"org:" + org};
}

}  // namespace dashboard
