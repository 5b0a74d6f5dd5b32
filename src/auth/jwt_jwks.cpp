#include "jwt_jwks.hpp"

#include "jwt_token.hpp"

#include <livecast/jwt.hpp>

#include <rapidjson/document.h>

#include <sys/stat.h>
#include <sys/types.h>

#include <algorithm>
#include <fstream>
#include <set>

LIVECAST_BEGIN_NAMESPACE
namespace detail {

namespace {

enum class Use { sign, skip, invalid };

std::string_view string_of(const rapidjson::Value& v) { return {v.GetString(), v.GetStringLength()}; }

// Whether a member, when present, is a string; its value in `out`.
bool optional_string(const rapidjson::Value& key, const char* name, std::optional<std::string_view>& out) {
  auto it = key.FindMember(name);
  if (it == key.MemberEnd()) return true;
  if (!it->value.IsString()) return false;
  out = string_of(it->value);
  return true;
}

// Whether the key says it is for verifying signatures (RFC 7517 sections 4.2
// and 4.3): no `use` or "sig", no `key_ops` or one that lists "verify".
Use intended_for_signatures(const rapidjson::Value& key) {
  std::optional<std::string_view> use;
  if (!optional_string(key, "use", use)) return Use::invalid;
  if (use && *use != "sig") return Use::skip;
  auto ops = key.FindMember("key_ops");
  if (ops == key.MemberEnd()) return Use::sign;
  if (!ops->value.IsArray()) return Use::invalid;
  for (const auto& op : ops->value.GetArray())
    if (op.IsString() && string_of(op) == "verify") return Use::sign;
  return Use::skip;
}

// The key's `alg` against the one its kty implies: absent or equal, use it;
// another algorithm livecast implements contradicts the kty (an error); one
// it does not (RS384, PS256, RSA-OAEP) is for someone else.
Use algorithm_fits(const rapidjson::Value& key, JwtAlgorithm implied, const std::vector<JwtAlgorithm>& allowed) {
  std::optional<std::string_view> alg;
  if (!optional_string(key, "alg", alg)) return Use::invalid;
  if (alg) {
    auto named = algorithm_named(*alg);
    if (!named) return Use::skip;
    if (*named != implied) return Use::invalid;
  }
  return std::find(allowed.begin(), allowed.end(), implied) == allowed.end() ? Use::skip : Use::sign;
}

// A member holding base64url, decoded into `out`.
bool base64url_member(const rapidjson::Value& key, const char* name, std::string& out) {
  auto it = key.FindMember(name);
  return it != key.MemberEnd() && it->value.IsString() && !string_of(it->value).empty() &&
         base64url_decode(string_of(it->value), out);
}

}  // namespace

JwksKeys parse_jwks(std::string_view json, const std::vector<JwtAlgorithm>& allowed) {
  JwksKeys result;
  auto fail = [&result](std::error_code ec, std::string detail) {
    result.keys.clear();
    result.error = ec;
    result.detail = std::move(detail);
    return std::move(result);
  };
  rapidjson::Document d;
  if (!parse_json_object(json, d)) return fail(JwksErrc::not_jwks, "not a JSON object (or a name twice in it)");
  auto keys = d.FindMember("keys");
  if (keys == d.MemberEnd() || !keys->value.IsArray()) return fail(JwksErrc::not_jwks, "no \"keys\" array");

  std::set<std::string, std::less<>> kids;
  std::size_t index = 0;
  for (const auto& key : keys->value.GetArray()) {
    const std::string name = "key " + std::to_string(index++);
    if (!key.IsObject()) return fail(JwksErrc::not_jwks, name + " is not an object");
    std::optional<std::string_view> kty, kid, crv;
    if (!optional_string(key, "kty", kty) || !kty) return fail(JwksErrc::invalid_key, name + ": no kty");
    if (!optional_string(key, "kid", kid)) return fail(JwksErrc::invalid_key, name + ": kid is not a string");
    const std::string described = kid ? name + " (kid '" + std::string(*kid) + "')" : name;

    Use use = intended_for_signatures(key);
    JwtAlgorithm implied = JwtAlgorithm::rs256;
    if (use == Use::sign) {
      if (*kty == "RSA") {
        implied = JwtAlgorithm::rs256;
      } else if (*kty == "EC") {
        if (!optional_string(key, "crv", crv) || !crv) return fail(JwksErrc::invalid_key, described + ": no crv");
        implied = JwtAlgorithm::es256;
        if (*crv != "P-256") use = Use::skip;
      } else {
        use = Use::skip;  // "oct" secrets have no place in a published key set; OKP is not implemented
      }
    }
    if (use == Use::sign) use = algorithm_fits(key, implied, allowed);
    if (use == Use::invalid) return fail(JwksErrc::invalid_key, described + ": use, key_ops or alg do not fit its kty");
    if (use == Use::skip) continue;

    std::string error;
    JwtVerificationKey::Ptr built;
    if (implied == JwtAlgorithm::rs256) {
      std::string n, e;
      if (!base64url_member(key, "n", n) || !base64url_member(key, "e", e))
        return fail(JwksErrc::invalid_key, described + ": n or e is not base64url");
      built = JwtVerificationKey::rsa_from_components(n, e, kid ? std::string(*kid) : std::string(), error);
    } else {
      std::string x, y;
      if (!base64url_member(key, "x", x) || !base64url_member(key, "y", y))
        return fail(JwksErrc::invalid_key, described + ": x or y is not base64url");
      built = JwtVerificationKey::p256_from_coordinates(x, y, kid ? std::string(*kid) : std::string(), error);
    }
    if (!built) return fail(JwksErrc::invalid_key, described + ": " + error);
    if (kid && !kids.emplace(*kid).second) return fail(JwksErrc::duplicate_kid, described + ": its kid is taken");
    result.keys.push_back(std::move(built));
  }
  return result;
}

FileVersion file_version(const std::string& path) {
  FileVersion v;
  struct stat s {};
  if (::stat(path.c_str(), &s) != 0) return v;
  v.exists = true;
  v.size = static_cast<std::uint64_t>(s.st_size);
  v.inode = static_cast<std::uint64_t>(s.st_ino);
  v.device = static_cast<std::uint64_t>(s.st_dev);
  v.modified_seconds = static_cast<std::int64_t>(s.st_mtime);
#if defined(__linux__)
  v.modified_nanoseconds = static_cast<std::int64_t>(s.st_mtim.tv_nsec);
#endif
  return v;
}

std::optional<std::string> read_small_file(const std::string& path, std::size_t max_bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::string text;
  char chunk[4096];
  while (in.read(chunk, sizeof chunk) || in.gcount() > 0) {
    text.append(chunk, static_cast<std::size_t>(in.gcount()));
    if (text.size() > max_bytes) return std::nullopt;
  }
  if (in.bad()) return std::nullopt;
  return text;
}

}  // namespace detail
LIVECAST_END_NAMESPACE
