#include "jwt_claims.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>

LIVECAST_BEGIN_NAMESPACE
namespace detail {

namespace {

// The latest `exp` turned into Principal::expires_at; later ones are clamped
// to it (2255-03-14): libstdc++'s system_clock counts nanoseconds in 64 bits,
// which ends in 2262, and "never" is a fine reading of either.
constexpr double latest_expiry_seconds = 9.0e9;

ClaimsVerdict refuse(JwtRefusal why, std::string reason) {
  ClaimsVerdict v;
  v.refusal = why;
  v.reason = std::move(reason);
  return v;
}

std::string_view string_of(const rapidjson::Value& v) { return {v.GetString(), v.GetStringLength()}; }

const rapidjson::Value* member(const rapidjson::Value& object, std::string_view name) {
  auto it = object.FindMember(rapidjson::Value(rapidjson::StringRef(name.data(), name.size())));
  return it == object.MemberEnd() ? nullptr : &it->value;
}

// A NumericDate (RFC 7519 section 2): seconds since the epoch, fractions allowed.
struct NumericDate {
  bool present = false;
  bool valid = true;
  double seconds = 0;
};
NumericDate numeric_date(const rapidjson::Value& claims, const char* name) {
  NumericDate d;
  const rapidjson::Value* v = member(claims, name);
  if (!v) return d;
  d.present = true;
  d.valid = v->IsNumber() && std::isfinite(v->GetDouble());
  if (d.valid) d.seconds = v->GetDouble();
  return d;
}

// A claim value as text for the Principal: a string, or a number written out.
std::optional<std::string> claim_text(const rapidjson::Value& v) {
  if (v.IsString()) return std::string(string_of(v));
  if (v.IsNumber()) return canonical_number(v);
  return std::nullopt;
}

bool audience_matches(const rapidjson::Value& aud, const std::vector<std::string>& accepted) {
  auto accepted_one = [&](const rapidjson::Value& v) {
    return v.IsString() && std::find(accepted.begin(), accepted.end(), string_of(v)) != accepted.end();
  };
  if (aud.IsString()) return accepted_one(aud);
  if (!aud.IsArray()) return false;
  const auto values = aud.GetArray();
  return std::any_of(values.begin(), values.end(), accepted_one);
}

}  // namespace

bool safe_for_patterns(std::string_view value) noexcept {
  for (char c : value) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7F) return false;
    if (c == ':' || c == '*' || c == '?' || c == '{' || c == '}') return false;
  }
  return true;
}

std::string canonical_number(const rapidjson::Value& number) {
  if (number.IsInt64()) return std::to_string(number.GetInt64());
  if (number.IsUint64()) return std::to_string(number.GetUint64());
  const double d = number.GetDouble();
  // 2^53: every integer below it is a double exactly, so "42.0" and "4.2e1"
  // read as the claim "42", as they would have been written by most issuers.
  if (std::trunc(d) == d && std::fabs(d) < 9007199254740992.0)
    return std::to_string(static_cast<std::int64_t>(d));
  char buffer[32];
  auto result = std::to_chars(buffer, buffer + sizeof buffer, d);
  return std::string(buffer, result.ptr);
}

ClaimsVerdict principal_from_claims(const rapidjson::Value& claims, const JwtSettings& settings,
                                    std::chrono::system_clock::time_point now) {
  const double now_seconds = std::chrono::duration<double>(now.time_since_epoch()).count();
  const double leeway = static_cast<double>(settings.leeway.count());

  const NumericDate exp = numeric_date(claims, "exp");
  const NumericDate nbf = numeric_date(claims, "nbf");
  const NumericDate iat = numeric_date(claims, "iat");
  if (!exp.valid || !nbf.valid || !iat.valid) return refuse(JwtRefusal::claims, "exp, nbf or iat is not a number");
  if (!exp.present && settings.require_exp) return refuse(JwtRefusal::claims, "token has no exp");
  if (exp.present && !(now_seconds < exp.seconds + leeway)) return refuse(JwtRefusal::expired, "token expired");
  if (nbf.present && now_seconds + leeway < nbf.seconds)
    return refuse(JwtRefusal::not_yet_valid, "token not yet valid");
  if (iat.present && iat.seconds > now_seconds + leeway)
    return refuse(JwtRefusal::not_yet_valid, "token issued in the future");

  if (!settings.audiences.empty()) {
    const rapidjson::Value* aud = member(claims, "aud");
    if (!aud || !audience_matches(*aud, settings.audiences)) return refuse(JwtRefusal::audience, "wrong audience");
  }
  if (!settings.issuer.empty()) {
    const rapidjson::Value* iss = member(claims, "iss");
    if (!iss || !iss->IsString() || string_of(*iss) != settings.issuer)
      return refuse(JwtRefusal::issuer, "wrong issuer");
  }

  Principal p;
  const rapidjson::Value* id = member(claims, settings.id_claim);
  std::optional<std::string> id_text = id ? claim_text(*id) : std::nullopt;
  if (!id_text || id_text->empty()) return refuse(JwtRefusal::claims, "token has no usable " + settings.id_claim);
  if (!safe_for_patterns(*id_text))
    return refuse(JwtRefusal::claims, settings.id_claim + " holds a reserved character");
  p.id = std::move(*id_text);

  if (!settings.roles_claim.empty()) {
    if (const rapidjson::Value* roles = member(claims, settings.roles_claim)) {
      if (roles->IsString()) {
        p.roles.emplace_back(string_of(*roles));
      } else if (roles->IsArray()) {
        for (const auto& role : roles->GetArray()) {
          if (!role.IsString()) return refuse(JwtRefusal::claims, settings.roles_claim + " holds a non-string");
          p.roles.emplace_back(string_of(role));
        }
      } else {
        return refuse(JwtRefusal::claims, settings.roles_claim + " is not a string or an array");
      }
    }
  }

  for (const std::string& name : settings.claims) {
    const rapidjson::Value* v = member(claims, name);
    if (!v) continue;
    std::optional<std::string> text = claim_text(*v);
    if (!text) return refuse(JwtRefusal::claims, "claim " + name + " is not a string or a number");
    if (!safe_for_patterns(*text)) return refuse(JwtRefusal::claims, "claim " + name + " holds a reserved character");
    p.claims[name] = std::move(*text);
  }

  if (exp.present) {
    // The session lasts as long as the token would still be accepted: a
    // token let in within the leeway after its `exp` must not be closed for
    // expiry the moment its session opens.
    const double seconds = std::clamp(exp.seconds + leeway, 0.0, latest_expiry_seconds);
    p.expires_at = std::chrono::system_clock::time_point(
        std::chrono::duration_cast<std::chrono::system_clock::duration>(std::chrono::duration<double>(seconds)));
  }
  ClaimsVerdict accepted;
  accepted.principal = std::move(p);
  return accepted;
}

}  // namespace detail
LIVECAST_END_NAMESPACE
