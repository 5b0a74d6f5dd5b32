// A compact JWS (RFC 7515) taken apart, sans-I/O: strict base64url, the three
// parts, the JOSE header and the claims set as RapidJSON objects. Nothing
// here knows a key or a clock; jwt_verifier.cpp decides what the parts mean.
#pragma once

#include <livecast/config.hpp>
#include <livecast/jwt.hpp>

#include <rapidjson/document.h>

#include <optional>
#include <string>
#include <string_view>

LIVECAST_BEGIN_NAMESPACE
namespace detail {

// Why a token was refused, one per JwtMetrics counter.
enum class JwtRefusal {
  missing,
  oversized,
  malformed,
  algorithm,
  unknown_kid,
  signature,
  expired,
  not_yet_valid,
  audience,
  issuer,
  claims,
};
inline constexpr std::size_t jwt_refusal_count = static_cast<std::size_t>(JwtRefusal::claims) + 1;

// Decodes unpadded base64url (RFC 7515 section 2, RFC 4648 section 5) into
// `out`. Strict: any character outside the alphabet, '=' padding, a length
// of 1 modulo 4, or set bits after the last whole byte (a second spelling of
// the same bytes) fail it.
bool base64url_decode(std::string_view text, std::string& out);

// The compact serialization's three parts, still encoded.
struct JwsParts {
  std::string_view header;
  std::string_view payload;
  std::string_view signature;
  std::string_view signing_input;  // header '.' payload: what the signature covers
};

// Splits at exactly two dots; a JWE (five parts) or anything else is nullopt.
std::optional<JwsParts> split_jws(std::string_view token);

// Parses `json` as one JSON object of strict UTF-8 with no two members of one
// name (which a second parser could read differently), into `document`.
bool parse_json_object(std::string_view json, rapidjson::Document& document);

// What the JOSE header says.
struct JoseHeader {
  std::string alg;
  std::optional<std::string> kid;
};

// Reads the decoded header. nullopt with `refusal` set: malformed (no `alg`
// string, a kid that is not a string) or algorithm (`crit`, which names
// extensions livecast does not implement, RFC 7515 section 4.1.11).
std::optional<JoseHeader> read_jose_header(std::string_view json, JwtRefusal& refusal);

// The algorithm an `alg` names, when it is one livecast implements.
std::optional<JwtAlgorithm> algorithm_named(std::string_view alg);

}  // namespace detail
LIVECAST_END_NAMESPACE
