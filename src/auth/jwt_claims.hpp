// A verified token's claims set: the checks of RFC 7519 section 4.1 (exp,
// nbf, iat, aud, iss) and the mapping to a Principal. Sans-I/O: the time is
// an argument.
#pragma once

#include "jwt_token.hpp"

#include <livecast/config.hpp>
#include <livecast/jwt.hpp>
#include <livecast/principal.hpp>

#include <rapidjson/document.h>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

LIVECAST_BEGIN_NAMESPACE
namespace detail {

// A principal, or why not (with the reason the client is told).
struct ClaimsVerdict {
  std::optional<Principal> principal;
  JwtRefusal refusal = JwtRefusal::claims;
  std::string reason;
};

ClaimsVerdict principal_from_claims(const rapidjson::Value& claims, const JwtSettings& settings,
                                    std::chrono::system_clock::time_point now);

// Whether a value may become Principal::id or a Principal claim: it will be
// put into Authorizer patterns, so no separator (':'), no pattern character
// ('*', '?', '{', '}') and no control character.
bool safe_for_patterns(std::string_view value) noexcept;

// A JSON number as the decimal a claim holds: integers as integers, others in
// their shortest round-trip form. For strings of digits that compare equal.
std::string canonical_number(const rapidjson::Value& number);

}  // namespace detail
LIVECAST_END_NAMESPACE
