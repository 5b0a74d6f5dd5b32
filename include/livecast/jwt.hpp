// JwtVerifier: livecast's built-in Authenticator for JSON Web Tokens
// (RFC 7519) signed with HS256, RS256 or ES256.
//
//   livecast::JwtSettings jwt;
//   jwt.keys.push_back(livecast::JwtKey::rs256_public_pem(read_file("idp.pem"), "2026-01"));
//   jwt.jwks_file = "/etc/livecast/jwks.json";      // and/or a JWKS file, reloaded on change
//   jwt.issuer = "https://idp.example";
//   jwt.audiences = {"dashboard"};
//   jwt.claims = {"org"};                            // for `org:{org}:*` rules
//   auto verifier = std::make_shared<livecast::JwtVerifier>(std::move(jwt));  // throws on bad settings
//   broker_settings.authenticator = livecast::jwt_authenticator(verifier);
//
// What a token must be to be accepted, in the order it is checked (the first
// failure refuses it, is counted in JwtMetrics under the name in brackets, and
// the client is told a short reason, never the token or a key):
//  1. at most max_token_bytes long, before anything is parsed [oversized];
//     not empty [missing];
//  2. three parts of strict base64url (no padding, no stray characters or
//     bits), a header and a claims set that are JSON objects without
//     duplicate names [malformed];
//  3. a header `alg` among `algorithms` (HS256, RS256, ES256 at most: `none`,
//     and everything else, is refused) and no `crit` [algorithm];
//  4. a key: with a `kid` in the header, the key of that kid [unknown_kid],
//     whose algorithm must be the token's [algorithm]; without one, the keys
//     that have no kid and the token's algorithm [algorithm, or unknown_kid
//     when only keys with a kid have it]. A key belongs to one algorithm, so
//     an HS256 token "signed" with an RSA public key as HMAC secret never
//     meets that key (algorithm confusion);
//  5. a signature one of those keys verifies, through OpenSSL [signature];
//  6. `exp` in the future (required unless require_exp is false) [expired];
//     `nbf` and `iat` not in the future [not_yet_valid]; each with `leeway`;
//  7. when `audiences` is set, an `aud` (a string or an array) naming one of
//     them [audience]; when `issuer` is set, that `iss` [issuer];
//  8. the id claim, the roles claim and the copied claims in a usable form
//     [claims]: see JwtSettings.
//
// The Principal: `id` from the id claim (`sub`), `roles` from the roles claim,
// `claims` from the claims named in JwtSettings::claims, `expires_at` from
// `exp` plus the leeway (the session lasts while the token would still be
// accepted; then the broker closes it with 4011 unless it was refreshed). Values that end up in Principal::claims or Principal::id are put into
// Authorizer patterns (`org:{org}:*`), so a value holding ':', '*', '?', '{',
// '}' or a control character is refused rather than copied: "acme:payroll"
// would otherwise make `org:{org}` match org acme's "payroll" topic.
//
// Threads. verify() and metrics() may be called from any thread at once
// (every shard calls verify); so may reload(). Keys are swapped whole: a
// verify sees the keys before a reload or after it, never a mix.
#pragma once

#include <livecast/config.hpp>
#include <livecast/handshake.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

LIVECAST_BEGIN_NAMESPACE

// The signature algorithms (RFC 7518 section 3.1) livecast verifies.
enum class JwtAlgorithm {
  hs256,  // HMAC with SHA-256: a secret shared with the token issuer
  rs256,  // RSASSA-PKCS1-v1_5 with SHA-256: the issuer's RSA public key (2048 bits or more)
  es256,  // ECDSA on P-256 with SHA-256: the issuer's EC public key
};

// The name a JOSE header's `alg` gives it: "HS256", "RS256", "ES256".
inline const char* to_jose_name(JwtAlgorithm a) noexcept {
  switch (a) {
    case JwtAlgorithm::hs256: return "HS256";
    case JwtAlgorithm::rs256: return "RS256";
    case JwtAlgorithm::es256: return "ES256";
  }
  return "?";
}

// One verification key, bound to one algorithm. `kid` (empty: none) is what a
// token's header names to pick it; tokens without a kid are tried against
// the keys without one.
struct JwtKey {
  JwtAlgorithm algorithm = JwtAlgorithm::hs256;
  std::string kid;
  // hs256: the secret's bytes (32 or more, as RFC 7518 asks for HS256).
  // rs256, es256: a PEM "BEGIN PUBLIC KEY" block (SubjectPublicKeyInfo).
  std::string material;

  static JwtKey hs256_secret(std::string secret, std::string kid = {}) {
    return {JwtAlgorithm::hs256, std::move(kid), std::move(secret)};
  }
  static JwtKey rs256_public_pem(std::string pem, std::string kid = {}) {
    return {JwtAlgorithm::rs256, std::move(kid), std::move(pem)};
  }
  static JwtKey es256_public_pem(std::string pem, std::string kid = {}) {
    return {JwtAlgorithm::es256, std::move(kid), std::move(pem)};
  }
};

struct JwtSettings {
  // --- keys ---
  // Keys given here stay for the verifier's life. Two keys may not share a
  // kid (here or with the JWKS file).
  std::vector<JwtKey> keys;
  // A JWKS file (RFC 7517: {"keys":[...]}) whose RSA keys (`n`, `e`) and EC
  // P-256 keys (`crv`, `x`, `y`) are used beside `keys`. A key's `alg`, when
  // present, must be RS256 or ES256 to fit its `kty`; without it RSA means
  // RS256 and P-256 ES256. Keys for encryption (`use` other than "sig",
  // `key_ops` without "verify"), of another kty, curve or algorithm are
  // skipped. Empty: no file.
  //
  // The file is read at construction (an unreadable or broken file throws)
  // and again whenever its modification time, size or inode change, checked
  // at most once per jwks_check_interval by the verify() that comes after
  // it (0: every verify, for tests). Replace it atomically (write a new file,
  // rename it over the old one). A new version that cannot be used (not
  // JSON, a signing key that does not build, a kid twice) leaves the keys in
  // use as they were, counts JwtMetrics::jwks_errors and goes to
  // on_jwks_error; the version after it is tried when it appears.
  std::string jwks_file;
  std::chrono::milliseconds jwks_check_interval{1000};
  // A larger JWKS file is refused (JwksErrc::unreadable).
  std::size_t max_jwks_bytes = 1024 * 1024;
  // A JWKS version that could not be used: the error and what was wrong
  // (names no key material). Called on the thread that found it (a shard's,
  // or reload()'s caller), with no lock held; must not block; its
  // exceptions are swallowed.
  std::function<void(std::error_code, const std::string& detail)> on_jwks_error;

  // --- tokens ---
  // The `alg` values accepted: a subset of HS256, RS256, ES256, which is
  // also the default. A key of an algorithm not listed is a setup error; a
  // JWKS key of one is skipped.
  std::vector<JwtAlgorithm> algorithms = {JwtAlgorithm::hs256, JwtAlgorithm::rs256, JwtAlgorithm::es256};
  // Longer tokens are refused before they are parsed.
  std::size_t max_token_bytes = 8 * 1024;

  // --- claims ---
  // Whether a token without `exp` is refused. A token that never expires
  // cannot be taken back once leaked; turn this off only for tokens the
  // issuer revokes some other way.
  bool require_exp = true;
  // How far the clocks of the issuer and of this host may disagree: `exp`
  // counts as passed leeway after it, `nbf` and `iat` as reached leeway before.
  std::chrono::seconds leeway{30};
  // When not empty, `aud` must name one of these (`aud` may be a string or an
  // array of strings). Empty: `aud` is not checked.
  std::vector<std::string> audiences;
  // When not empty, `iss` must equal it. Empty: `iss` is not checked.
  std::string issuer;
  // The claim that becomes Principal::id: a non-empty string or a number
  // (written as a decimal). Required.
  std::string id_claim = "sub";
  // The claim that becomes Principal::roles: an array of strings, or one
  // string for one role (e.g. set "role"). Absent: no roles. Empty name: none read.
  std::string roles_claim = "roles";
  // Claims copied into Principal::claims under the same name, for `{name}`
  // placeholders in Authorizer patterns: a string as it is, a number in its
  // shortest decimal form ("42", "0.5"). Absent: not copied (a pattern that
  // needs it fails closed). Any other type is refused. ("id" would be
  // shadowed: `{id}` stands for Principal::id.)
  std::vector<std::string> claims;
  // The time claims are checked against, called from any thread at once.
  // Empty: std::chrono::system_clock::now.
  std::function<std::chrono::system_clock::time_point()> clock;
};

// A snapshot of a verifier's counters. All are monotonic but `keys`.
struct JwtMetrics {
  std::uint64_t accepted = 0;
  // Refusals, by the first check a token failed (see the top of this file).
  std::uint64_t missing = 0;        // no token at all
  std::uint64_t oversized = 0;      // over max_token_bytes
  std::uint64_t malformed = 0;      // not three parts of base64url JSON objects
  std::uint64_t algorithm = 0;      // alg none, unknown, not allowed, or not its key's; `crit`
  std::uint64_t unknown_kid = 0;    // a kid no key has, or no kid where every key has one
  std::uint64_t signature = 0;      // no candidate key verifies the signature
  std::uint64_t expired = 0;        // exp passed (with leeway)
  std::uint64_t not_yet_valid = 0;  // nbf or iat in the future (with leeway)
  std::uint64_t audience = 0;       // aud missing or naming none of `audiences`
  std::uint64_t issuer = 0;         // iss missing or not `issuer`
  std::uint64_t claims = 0;         // exp missing; id, roles or a copied claim unusable
  // The JWKS file: versions put in use (the first load included), versions
  // refused (the keys before stayed).
  std::uint64_t jwks_loads = 0;
  std::uint64_t jwks_errors = 0;
  // Keys in use now: JwtSettings::keys plus the JWKS file's.
  std::uint64_t keys = 0;

  std::uint64_t refused() const noexcept {
    return missing + oversized + malformed + algorithm + unknown_kid + signature + expired + not_yet_valid +
           audience + issuer + claims;
  }
};

// Why a JWKS file could not be used.
enum class JwksErrc {
  ok = 0,
  unreadable,    // missing, unreadable, or over max_jwks_bytes
  not_jwks,      // not JSON, or no "keys" array of objects
  invalid_key,   // an RSA or EC signing key that does not build (bad base64url, not on the curve, too short)
  duplicate_kid, // two keys with one kid (in the file, or one of JwtSettings::keys)
  no_file,       // reload() with no jwks_file set
};

class JwksErrcCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "livecast.jwks"; }
  std::string message(int value) const override {
    switch (static_cast<JwksErrc>(value)) {
      case JwksErrc::ok: return "ok";
      case JwksErrc::unreadable: return "JWKS file missing, unreadable or too large";
      case JwksErrc::not_jwks: return "not a JWKS document";
      case JwksErrc::invalid_key: return "a JWKS signing key does not build";
      case JwksErrc::duplicate_kid: return "two keys share a kid";
      case JwksErrc::no_file: return "no JWKS file configured";
    }
    return "unknown";
  }
};

inline const std::error_category& jwks_category() noexcept {
  static const JwksErrcCategory category;
  return category;
}

inline std::error_code make_error_code(JwksErrc e) noexcept { return {static_cast<int>(e), jwks_category()}; }

class JwtVerifier final {
 public:
  // Builds the keys and reads the JWKS file. Throws std::invalid_argument for
  // settings it cannot work with (no keys at all, a PEM that is not a public
  // key of its algorithm, an RSA key under 2048 bits, an HS256 secret under
  // 32 bytes, a key of an algorithm not in `algorithms`, a kid twice), and
  // std::system_error (a JwksErrc) for a JWKS file it cannot use.
  explicit JwtVerifier(JwtSettings settings);
  ~JwtVerifier();

  JwtVerifier(const JwtVerifier&) = delete;
  JwtVerifier& operator=(const JwtVerifier&) = delete;

  // The principal a token stands for, or a refusal with a short reason for
  // the client (close code CloseCode::unauthorized). Never throws for any
  // input; never blocks on I/O other than the JWKS check (a stat(), and a
  // read of the file when it changed).
  AuthResult verify(std::string_view token) const;

  // Reads the JWKS file now, whatever its modification time says. On an
  // error the keys in use stay (and it is counted and reported as above).
  std::error_code reload();

  JwtMetrics metrics() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// An Authenticator that verifies HandshakeRequest::token() (Authorization
// header, the `livecast.bearer.<token>` subprotocol entry, `?token=`, then an
// Origin-vouched cookie; see handshake.hpp).
Authenticator jwt_authenticator(std::shared_ptr<const JwtVerifier> verifier);

LIVECAST_END_NAMESPACE

namespace std {
template <>
struct is_error_code_enum<livecast::JwksErrc> : true_type {};
}  // namespace std
