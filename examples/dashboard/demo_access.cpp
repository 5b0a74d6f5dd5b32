#include "demo_access.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <memory>
#include <stdexcept>
#include <utility>

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

livecast::Authenticator demo_jwt_authenticator(const std::string& secret) {
  livecast::JwtSettings jwt;
  jwt.keys.push_back(livecast::JwtKey::hs256_secret(secret));
  jwt.algorithms = {livecast::JwtAlgorithm::hs256};
  jwt.roles_claim = "role";
  jwt.claims = {"org"};
  return livecast::jwt_authenticator(std::make_shared<livecast::JwtVerifier>(std::move(jwt)));
}

namespace {

std::string base64url(const unsigned char* data, std::size_t size) {
  std::string out(4 * ((size + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data, static_cast<int>(size));
  out.resize(static_cast<std::size_t>(n));
  while (!out.empty() && out.back() == '=') out.pop_back();
  for (char& c : out) c = c == '+' ? '-' : c == '/' ? '_' : c;
  return out;
}
std::string base64url(const std::string& text) {
  return base64url(reinterpret_cast<const unsigned char*>(text.data()), text.size());
}

}  // namespace

std::string mint_demo_jwt(const std::string& secret, const std::string& demo_token, std::chrono::seconds lifetime) {
  const auto principal = principal_for_token(demo_token);
  if (!principal) throw std::invalid_argument("not a demo user: " + demo_token);
  const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch()).count();
  livecast::Json claims = livecast::Json::object();
  claims.set("sub", principal->id);
  claims.set("org", principal->claim("org"));
  claims.set("role", principal->roles.front());
  claims.set("iat", static_cast<std::int64_t>(now));
  claims.set("exp", static_cast<std::int64_t>(now + lifetime.count()));
  const std::string signing_input = base64url(R"({"alg":"HS256","typ":"JWT"})") + "." + base64url(claims.dump());
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_size = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(signing_input.data()), signing_input.size(), mac, &mac_size);
  return signing_input + "." + base64url(mac, mac_size);
}

livecast::Authorizer demo_authorizer() {
  livecast::Authorizer authorizer;
  authorizer.allow_subscribe("org:{org}")
      .allow_subscribe("org:{org}:*")
      .deny_subscribe("org:{org}:transactions", "viewer")
      .deny_subscribe("org:{org}:agg.*", "viewer");
  return authorizer;
}

livecast::Authenticator mark_socketio_clients(livecast::Authenticator inner, std::string socketio_path) {
  return [inner = std::move(inner), path = std::move(socketio_path)](const livecast::HandshakeRequest& request) {
    livecast::AuthResult verdict = inner(request);
    if (verdict.principal && request.path == path) verdict.principal->claims[client_claim] = socketio_client;
    return verdict;
  };
}

std::vector<std::string> demo_server_joins(const livecast::Principal& principal) {
  const std::string& org = principal.claim("org");
  if (org.empty()) return {};
  std::vector<std::string> joins{"org:" + org};
  if (principal.claim(client_claim) != socketio_client) return joins;
  // The same rules the broker applies to every join: a join they refuse
  // would only be reported to on_error.
  static const livecast::Authorizer rules = demo_authorizer();
  for (const char* name : {"kpi.revenue", "kpi.tps", "kpi.active_users", "kpi.error_rate", "kpi.viewers", "alerts",
                           "transactions"}) {
    std::string topic = "org:" + org + ":" + name;
    if (rules.allowed(livecast::Action::subscribe, topic, principal)) joins.push_back(std::move(topic));
  }
  return joins;
}

}  // namespace dashboard
