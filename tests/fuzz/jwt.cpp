// Fuzzes JwtVerifier: tokens as they come (any bytes), and tokens whose JOSE
// header and claims set are the input's JSON, signed here with the keys the
// verifier trusts, so that the header, key choice and claims code is reached
// past the signature check.
//
// Input layout (FuzzedDataProvider takes the parameters from the end):
//   raw:    <token> <mode>
//   signed: <header JSON>\ <claims JSON> <mode>
// mode bits 0-1: 0 the input is the token; 1 HS256, 2 ES256, 3 RS256 (the
// header and claims signed with the verifier's key for that algorithm);
// bit 2: the strict verifier (aud and iss required) rather than the lax one
// (no exp required).
//
// Properties: verify() never throws, and a refusal has a reason. A signed
// token that is accepted had the `alg` it was signed with; its claims pass
// the checks written here from jwt.hpp (exp and nbf against the clock and
// leeway, aud, iss), and its Principal holds only values safe for Authorizer
// patterns (no ':', '*', '?', '{', '}', control characters). The same token
// with its signature altered, with alg "none" and no signature, or HMAC-signed
// with the RSA key's PEM (algorithm confusion) is refused.
#include "fuzz_check.hpp"

#include "jwt_signer.hpp"

#include <livecast/jwt.hpp>

#include <fuzzer/FuzzedDataProvider.h>

#include <rapidjson/document.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

using namespace livecast;
using livecast_test::base64url;
using livecast_test::SigningKey;

namespace {

constexpr std::int64_t now_s = 1'800'000'000;  // the verifiers' clock
constexpr std::int64_t leeway_s = 30;
const std::string secret = "0123456789abcdef0123456789abcdef";

struct Fixture {
  SigningKey rsa = SigningKey::rsa2048();
  SigningKey ec = SigningKey::p256();
  std::unique_ptr<JwtVerifier> strict;
  std::unique_ptr<JwtVerifier> lax;

  Fixture() {
    JwtSettings s;
    s.keys.push_back(JwtKey::hs256_secret(secret));
    s.keys.push_back(JwtKey::hs256_secret(secret + "-rotated", "hs-2"));
    s.keys.push_back(JwtKey::rs256_public_pem(rsa.public_pem(), "rsa-1"));
    s.keys.push_back(JwtKey::es256_public_pem(ec.public_pem()));
    s.clock = [] { return std::chrono::system_clock::time_point(std::chrono::seconds(now_s)); };
    s.leeway = std::chrono::seconds(leeway_s);
    s.claims = {"org", "team"};
    JwtSettings lax_settings = s;
    lax_settings.require_exp = false;
    s.audiences = {"dashboard", "api"};
    s.issuer = "https://idp.example";
    strict = std::make_unique<JwtVerifier>(std::move(s));
    lax = std::make_unique<JwtVerifier>(std::move(lax_settings));
  }
};

const Fixture& fixture() {
  static const Fixture f;
  return f;
}

bool safe_for_patterns(const std::string& value) {
  for (char c : value) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7F || c == ':' || c == '*' || c == '?' || c == '{' || c == '}') return false;
  }
  return true;
}

AuthResult verify(const JwtVerifier& verifier, std::string_view token) {
  AuthResult r = verifier.verify(token);
  if (!r.accepted()) FUZZ_CHECK(!r.reason.empty());
  return r;
}

const rapidjson::Value* member(const rapidjson::Document& d, const char* name) {
  auto it = d.FindMember(name);
  return it == d.MemberEnd() ? nullptr : &it->value;
}

// What jwt.hpp promises of an accepted token's claims set and Principal.
void check_accepted(const std::string& header_json, const std::string& claims_json, const char* alg, bool strict,
                    const Principal& p) {
  rapidjson::Document header, claims;
  header.Parse(header_json.data(), header_json.size());
  claims.Parse(claims_json.data(), claims_json.size());
  FUZZ_CHECK(header.IsObject() && claims.IsObject());
  const rapidjson::Value* a = member(header, "alg");
  FUZZ_CHECK(a && a->IsString() && std::string_view(a->GetString(), a->GetStringLength()) == alg);
  FUZZ_CHECK(!member(header, "crit"));

  const double now = static_cast<double>(now_s), leeway = static_cast<double>(leeway_s);
  if (const rapidjson::Value* exp = member(claims, "exp")) {
    FUZZ_CHECK(exp->IsNumber() && now < exp->GetDouble() + leeway);
    FUZZ_CHECK(p.expires_at.has_value());
  } else {
    FUZZ_CHECK(!strict);
    FUZZ_CHECK(!p.expires_at.has_value());
  }
  if (const rapidjson::Value* nbf = member(claims, "nbf")) FUZZ_CHECK(nbf->IsNumber() && nbf->GetDouble() <= now + leeway);
  if (const rapidjson::Value* iat = member(claims, "iat")) FUZZ_CHECK(iat->IsNumber() && iat->GetDouble() <= now + leeway);
  if (strict) {
    const rapidjson::Value* iss = member(claims, "iss");
    FUZZ_CHECK(iss && iss->IsString() && std::string_view(iss->GetString(), iss->GetStringLength()) == "https://idp.example");
    const rapidjson::Value* aud = member(claims, "aud");
    FUZZ_CHECK(aud != nullptr);
    auto names_ours = [](const rapidjson::Value& v) {
      if (!v.IsString()) return false;
      const std::string_view s(v.GetString(), v.GetStringLength());
      return s == "dashboard" || s == "api";
    };
    bool ours = names_ours(*aud);
    if (aud->IsArray())
      for (const auto& v : aud->GetArray()) ours = ours || names_ours(v);
    FUZZ_CHECK(ours);
  }

  FUZZ_CHECK(!p.id.empty());
  FUZZ_CHECK(safe_for_patterns(p.id));
  const rapidjson::Value* sub = member(claims, "sub");
  FUZZ_CHECK(sub && (sub->IsString() || sub->IsNumber()));
  if (sub->IsString()) FUZZ_CHECK(p.id == std::string(sub->GetString(), sub->GetStringLength()));
  for (const auto& [name, value] : p.claims) {
    FUZZ_CHECK(name == "org" || name == "team");
    FUZZ_CHECK(safe_for_patterns(value));
    const rapidjson::Value* v = member(claims, name.c_str());
    FUZZ_CHECK(v && (v->IsString() || v->IsNumber()));
    if (v->IsString()) FUZZ_CHECK(value == std::string(v->GetString(), v->GetStringLength()));
  }
}

void check_signed(FuzzedDataProvider& in, int algorithm, bool strict) {
  const Fixture& f = fixture();
  const JwtVerifier& verifier = strict ? *f.strict : *f.lax;
  const std::string header_json = in.ConsumeRandomLengthString(512);
  const std::string claims_json = in.ConsumeRemainingBytesAsString();
  const std::string input = base64url(header_json) + "." + base64url(claims_json);

  std::string signature;
  const char* alg = "HS256";
  if (algorithm == 1) {
    signature = livecast_test::hs256(secret, input);
  } else if (algorithm == 2) {
    alg = "ES256";
    signature = f.ec.sign(input);
  } else {
    alg = "RS256";
    signature = f.rsa.sign(input);
  }
  const std::string token = input + "." + base64url(signature);
  const AuthResult result = verify(verifier, token);
  if (result.accepted()) check_accepted(header_json, claims_json, alg, strict, *result.principal);

  // Whatever the header and claims, these never pass.
  std::string altered = token;
  char& first = altered[input.size() + 1];
  first = first == 'A' ? 'B' : 'A';
  FUZZ_CHECK(!verify(verifier, altered).accepted());
  FUZZ_CHECK(!verify(verifier, input + ".").accepted());
  if (algorithm == 1) {
    const std::string confused = input + "." + base64url(livecast_test::hs256(f.rsa.public_pem(), input));
    FUZZ_CHECK(!verify(verifier, confused).accepted());
  }
  const std::string none = base64url(R"({"alg":"none"})") + "." + base64url(claims_json) + ".";
  FUZZ_CHECK(!verify(verifier, none).accepted());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
  FuzzedDataProvider in(bytes, size);
  const std::uint8_t mode = in.ConsumeIntegral<std::uint8_t>();
  const int algorithm = mode & 3;
  const bool strict = (mode & 4) != 0;
  if (algorithm == 0) {
    const std::string token = in.ConsumeRemainingBytesAsString();
    const AuthResult r = verify(strict ? *fixture().strict : *fixture().lax, token);
    // Seeds carry HS256 tokens signed with the fixed secret, so some pass.
    if (r.accepted()) {
      FUZZ_CHECK(!r.principal->id.empty() && safe_for_patterns(r.principal->id));
      for (const auto& [name, value] : r.principal->claims) FUZZ_CHECK(safe_for_patterns(value));
    }
    return 0;
  }
  check_signed(in, algorithm, strict);
  return 0;
}
