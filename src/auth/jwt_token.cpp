#include "jwt_token.hpp"

#include <array>
#include <cstdint>
#include <set>

LIVECAST_BEGIN_NAMESPACE
namespace detail {

namespace {

// 0-63 for the base64url alphabet, -1 for everything else ('=' and the
// standard alphabet's '+' and '/' included).
constexpr std::array<std::int8_t, 256> make_base64url_table() {
  std::array<std::int8_t, 256> t{};
  for (auto& v : t) v = -1;
  for (int i = 0; i < 26; ++i) {
    t[static_cast<std::size_t>('A' + i)] = static_cast<std::int8_t>(i);
    t[static_cast<std::size_t>('a' + i)] = static_cast<std::int8_t>(26 + i);
  }
  for (int i = 0; i < 10; ++i) t[static_cast<std::size_t>('0' + i)] = static_cast<std::int8_t>(52 + i);
  t[static_cast<std::size_t>('-')] = 62;
  t[static_cast<std::size_t>('_')] = 63;
  return t;
}
constexpr std::array<std::int8_t, 256> base64url_table = make_base64url_table();

}  // namespace

bool base64url_decode(std::string_view text, std::string& out) {
  out.clear();
  if (text.size() % 4 == 1) return false;  // 6 bits cannot end a byte
  out.reserve(text.size() / 4 * 3 + 2);
  std::uint32_t bits = 0;
  int bit_count = 0;
  for (char c : text) {
    const std::int8_t v = base64url_table[static_cast<unsigned char>(c)];
    if (v < 0) return false;
    bits = (bits << 6) | static_cast<std::uint32_t>(v);
    bit_count += 6;
    if (bit_count >= 8) {
      bit_count -= 8;
      out.push_back(static_cast<char>((bits >> bit_count) & 0xFF));
    }
  }
  // 2 or 4 bits left over must be zero: "QQ" and "QR" would both be "A".
  return (bits & ((1u << bit_count) - 1)) == 0;
}

std::optional<JwsParts> split_jws(std::string_view token) {
  const std::size_t first = token.find('.');
  if (first == std::string_view::npos) return std::nullopt;
  const std::size_t second = token.find('.', first + 1);
  if (second == std::string_view::npos || token.find('.', second + 1) != std::string_view::npos) return std::nullopt;
  JwsParts parts;
  parts.header = token.substr(0, first);
  parts.payload = token.substr(first + 1, second - first - 1);
  parts.signature = token.substr(second + 1);
  parts.signing_input = token.substr(0, second);
  return parts;
}

bool parse_json_object(std::string_view json, rapidjson::Document& document) {
  // Iterative: nesting depth costs heap, not stack. Encoding validated: a
  // claim value must be UTF-8 to be compared or copied.
  constexpr unsigned flags = rapidjson::kParseIterativeFlag | rapidjson::kParseValidateEncodingFlag;
  document.Parse<flags>(json.data(), json.size());
  if (document.HasParseError() || !document.IsObject()) return false;
  std::set<std::string_view> names;
  for (const auto& member : document.GetObject())
    if (!names.emplace(member.name.GetString(), member.name.GetStringLength()).second) return false;
  return true;
}

std::optional<JoseHeader> read_jose_header(std::string_view json, JwtRefusal& refusal) {
  refusal = JwtRefusal::malformed;
  rapidjson::Document d;
  if (!parse_json_object(json, d)) return std::nullopt;
  auto alg = d.FindMember("alg");
  if (alg == d.MemberEnd() || !alg->value.IsString()) return std::nullopt;
  JoseHeader header;
  header.alg.assign(alg->value.GetString(), alg->value.GetStringLength());
  if (auto kid = d.FindMember("kid"); kid != d.MemberEnd()) {
    if (!kid->value.IsString()) return std::nullopt;
    // An empty kid names no key: the token is treated as having none.
    if (kid->value.GetStringLength() > 0) header.kid.emplace(kid->value.GetString(), kid->value.GetStringLength());
  }
  if (d.HasMember("crit")) {
    refusal = JwtRefusal::algorithm;
    return std::nullopt;
  }
  return header;
}

std::optional<JwtAlgorithm> algorithm_named(std::string_view alg) {
  // Case-sensitive, as RFC 7515 asks: "hs256" and "None" name nothing.
  if (alg == "HS256") return JwtAlgorithm::hs256;
  if (alg == "RS256") return JwtAlgorithm::rs256;
  if (alg == "ES256") return JwtAlgorithm::es256;
  return std::nullopt;
}

}  // namespace detail
LIVECAST_END_NAMESPACE
