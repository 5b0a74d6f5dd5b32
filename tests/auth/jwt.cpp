// JwtVerifier against tokens signed here with OpenSSL (jwt_signer.hpp): what
// it accepts and maps, each refusal and its counter, the JWKS file and its
// rotation, and verify() from several threads while the file changes.
#include "jwt_signer.hpp"
#include "jwt_token.hpp"

#include <livecast/jwt.hpp>

#include <doctest/doctest.h>

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

using namespace livecast;
using livecast_test::base64url;
using livecast_test::make_token;
using livecast_test::SigningKey;

namespace {

using Clock = std::chrono::system_clock;
constexpr std::int64_t now_s = 1'800'000'000;  // 2027-01-15
const Clock::time_point fixed_now{std::chrono::seconds(now_s)};

const std::string secret = "0123456789abcdef0123456789abcdef";  // 32 bytes

const SigningKey& rsa_key() {
  static const SigningKey k = SigningKey::rsa2048();
  return k;
}
const SigningKey& ec_key() {
  static const SigningKey k = SigningKey::p256();
  return k;
}

std::string header(const std::string& alg, const std::string& kid = {}) {
  return R"({"alg":")" + alg + "\"" + (kid.empty() ? "" : R"(,"kid":")" + kid + "\"") + R"(,"typ":"JWT"})";
}

// A claims set valid at fixed_now, with `extra` members appended.
std::string claims(const std::string& extra = {}, std::int64_t exp = now_s + 600) {
  return R"({"sub":"alice","exp":)" + std::to_string(exp) + extra + "}";
}

std::string hs(const std::string& claims_json, const std::string& kid = {}, const std::string& key = secret) {
  return make_token(header("HS256", kid), claims_json, [&](const std::string& in) { return livecast_test::hs256(key, in); });
}
std::string rs(const std::string& claims_json, const std::string& kid = {}, const SigningKey& key = rsa_key()) {
  return make_token(header("RS256", kid), claims_json, [&](const std::string& in) { return key.sign(in); });
}
std::string es(const std::string& claims_json, const std::string& kid = {}, const SigningKey& key = ec_key()) {
  return make_token(header("ES256", kid), claims_json, [&](const std::string& in) { return key.sign(in); });
}

JwtSettings base_settings() {
  JwtSettings s;
  s.keys.push_back(JwtKey::hs256_secret(secret));
  s.keys.push_back(JwtKey::rs256_public_pem(rsa_key().public_pem()));
  s.keys.push_back(JwtKey::es256_public_pem(ec_key().public_pem()));
  s.clock = [] { return fixed_now; };
  s.claims = {"org"};
  return s;
}

// A file in the test's temporary directory, removed at the end.
struct TempFile {
  std::string path;
  explicit TempFile(const std::string& name)
      : path("/tmp/livecast_test_jwt_" + std::to_string(::getpid()) + "_" + name) {}
  ~TempFile() { std::remove(path.c_str()); }
  // Replaces the file atomically: written beside it, renamed over it.
  void write(const std::string& text) const {
    const std::string next = path + ".next";
    {
      std::ofstream out(next, std::ios::binary | std::ios::trunc);
      out << text;
    }
    REQUIRE(std::rename(next.c_str(), path.c_str()) == 0);
  }
};

std::string jwks(const std::vector<std::string>& keys) {
  std::string text = R"({"keys":[)";
  for (std::size_t i = 0; i < keys.size(); ++i) text += (i ? "," : "") + keys[i];
  return text + "]}";
}

}  // namespace

TEST_CASE("valid HS256, RS256 and ES256 tokens map to a Principal") {
  JwtVerifier v(base_settings());
  const std::string body = claims(R"(,"roles":["admin","viewer"],"org":"acme","team":"x")");
  for (const std::string& token : {hs(body), rs(body), es(body)}) {
    AuthResult r = v.verify(token);
    REQUIRE_MESSAGE(r.accepted(), r.reason);
    const Principal& p = *r.principal;
    CHECK(p.id == "alice");
    CHECK(p.roles == std::vector<std::string>{"admin", "viewer"});
    CHECK(p.claim("org") == "acme");
    CHECK(p.claims.count("team") == 0);  // not named in JwtSettings::claims
    REQUIRE(p.expires_at);
    // exp plus the leeway: the session lasts while the token would be accepted.
    CHECK(*p.expires_at == fixed_now + std::chrono::seconds(600) + std::chrono::seconds(30));
  }
  // An empty kid names no key: the keys without one are tried.
  CHECK(v.verify(make_token(R"({"alg":"HS256","kid":""})", body, [](const std::string& in) {
          return livecast_test::hs256(secret, in);
        })).accepted());
  CHECK(v.metrics().accepted == 4);
  CHECK(v.metrics().refused() == 0);
  CHECK(v.metrics().keys == 3);
}

TEST_CASE("claims mapping: a single-string role claim, numbers written canonically, other types refused") {
  JwtSettings s = base_settings();
  s.roles_claim = "role";
  s.claims = {"org", "tier", "ratio"};
  JwtVerifier v(s);
  AuthResult r = v.verify(hs(claims(R"(,"role":"admin","org":42,"tier":4.0e1,"ratio":0.5)")));
  REQUIRE_MESSAGE(r.accepted(), r.reason);
  CHECK(r.principal->roles == std::vector<std::string>{"admin"});
  CHECK(r.principal->claim("org") == "42");
  CHECK(r.principal->claim("tier") == "40");
  CHECK(r.principal->claim("ratio") == "0.5");

  CHECK_FALSE(v.verify(hs(claims(R"(,"org":true)"))).accepted());
  CHECK_FALSE(v.verify(hs(claims(R"(,"org":{"a":1})"))).accepted());
  CHECK_FALSE(v.verify(hs(claims(R"(,"role":["admin",1])"))).accepted());
  CHECK(v.metrics().claims == 3);

  // A numeric sub is written out; a missing one is refused.
  AuthResult numeric = v.verify(hs(R"({"sub":1234,"exp":)" + std::to_string(now_s + 60) + "}"));
  REQUIRE(numeric.accepted());
  CHECK(numeric.principal->id == "1234");
  CHECK_FALSE(v.verify(hs(R"({"exp":)" + std::to_string(now_s + 60) + "}")).accepted());
  CHECK(v.metrics().claims == 4);
}

TEST_CASE("time claims: exp, nbf and iat with the leeway") {
  JwtVerifier v(base_settings());  // leeway 30 s
  SUBCASE("expired beyond the leeway is refused; within it accepted") {
    AuthResult r = v.verify(hs(claims({}, now_s - 31)));
    CHECK_FALSE(r.accepted());
    CHECK(r.reason == "token expired");
    CHECK(v.verify(hs(claims({}, now_s - 29))).accepted());
    CHECK(v.metrics().expired == 1);
  }
  SUBCASE("not yet valid beyond the leeway is refused; within it accepted") {
    AuthResult r = v.verify(hs(claims(",\"nbf\":" + std::to_string(now_s + 31))));
    CHECK_FALSE(r.accepted());
    CHECK(r.reason == "token not yet valid");
    CHECK(v.verify(hs(claims(",\"nbf\":" + std::to_string(now_s + 29)))).accepted());
    CHECK(v.metrics().not_yet_valid == 1);
  }
  SUBCASE("issued in the future beyond the leeway is refused") {
    CHECK_FALSE(v.verify(hs(claims(",\"iat\":" + std::to_string(now_s + 120)))).accepted());
    CHECK(v.verify(hs(claims(",\"iat\":" + std::to_string(now_s - 120)))).accepted());
    CHECK(v.metrics().not_yet_valid == 1);
  }
  SUBCASE("a leeway of 0 refuses what 30 s let through") {
    JwtSettings s = base_settings();
    s.leeway = std::chrono::seconds(0);
    JwtVerifier strict(s);
    CHECK_FALSE(strict.verify(hs(claims({}, now_s - 1))).accepted());
    CHECK_FALSE(strict.verify(hs(claims({}, now_s))).accepted());  // exp is the first instant it is invalid
    CHECK(strict.verify(hs(claims({}, now_s + 1))).accepted());
  }
  SUBCASE("exp is required unless require_exp is false; fractional NumericDates are fine") {
    const std::string no_exp = R"({"sub":"alice"})";
    CHECK_FALSE(v.verify(hs(no_exp)).accepted());
    CHECK(v.metrics().claims == 1);
    CHECK_FALSE(v.verify(hs(R"({"sub":"alice","exp":"soon"})")).accepted());
    CHECK(v.metrics().claims == 2);
    JwtSettings s = base_settings();
    s.require_exp = false;
    JwtVerifier lenient(s);
    AuthResult r = lenient.verify(hs(no_exp));
    REQUIRE(r.accepted());
    CHECK_FALSE(r.principal->expires_at);
    AuthResult fractional = lenient.verify(hs(R"({"sub":"alice","exp":)" + std::to_string(now_s) + ".5}"));
    REQUIRE(fractional.accepted());
    CHECK(*fractional.principal->expires_at == fixed_now + std::chrono::milliseconds(500) + std::chrono::seconds(30));
  }
}

TEST_CASE("a signature with one byte flipped is refused, for each algorithm") {
  JwtVerifier v(base_settings());
  for (std::string token : {hs(claims()), rs(claims()), es(claims())}) {
    const std::size_t dot = token.rfind('.');
    std::string signature;
    REQUIRE(livecast::detail::base64url_decode(std::string_view(token).substr(dot + 1), signature));
    signature[signature.size() / 2] = static_cast<char>(signature[signature.size() / 2] ^ 0x01);
    token = token.substr(0, dot + 1) + base64url(signature);
    AuthResult r = v.verify(token);
    CHECK_FALSE(r.accepted());
    CHECK(r.reason == "invalid signature");
  }
  // The claims changed under an intact signature.
  std::string token = hs(claims());
  const std::size_t first = token.find('.'), second = token.rfind('.');
  token = token.substr(0, first + 1) + base64url(claims(R"(,"roles":["admin"])")) + token.substr(second);
  CHECK_FALSE(v.verify(token).accepted());
  // An ES256 signature in DER instead of r||s.
  const std::string input = base64url(header("ES256")) + "." + base64url(claims());
  std::string der_signature = input + "." + base64url(std::string(72, '\x30'));
  CHECK_FALSE(v.verify(der_signature).accepted());
  CHECK(v.metrics().signature == 5);
}

TEST_CASE("alg none, unknown algorithms and crit are refused") {
  JwtVerifier v(base_settings());
  const std::string unsigned_input = base64url(R"({"alg":"none"})") + "." + base64url(claims());
  AuthResult none = v.verify(unsigned_input + ".");
  CHECK_FALSE(none.accepted());
  CHECK(none.reason == "algorithm not accepted");
  // With a signature part, even a valid HS256 MAC of the same input.
  CHECK_FALSE(v.verify(unsigned_input + "." + base64url(livecast_test::hs256(secret, unsigned_input))).accepted());
  CHECK_FALSE(v.verify(base64url(R"({"alg":"None"})") + "." + base64url(claims()) + ".").accepted());
  CHECK(v.metrics().algorithm == 3);
  // Two parts only: not a JWS at all.
  CHECK_FALSE(v.verify(unsigned_input).accepted());
  CHECK(v.metrics().malformed == 1);

  for (const char* alg : {"HS384", "RS512", "PS256", "hs256", "EdDSA"}) {
    CHECK_FALSE(v.verify(make_token(header(alg), claims(), [](const std::string&) { return std::string(32, 'x'); }))
                    .accepted());
  }
  CHECK(v.metrics().algorithm == 8);
  CHECK_FALSE(
      v.verify(make_token(R"({"alg":"HS256","crit":["exp"],"exp":1})", claims(),
                          [](const std::string& in) { return livecast_test::hs256(secret, in); }))
          .accepted());
  CHECK(v.metrics().algorithm == 9);

  SUBCASE("an algorithm left out of `algorithms` is refused even with a key") {
    JwtSettings s;
    s.keys.push_back(JwtKey::rs256_public_pem(rsa_key().public_pem()));
    s.algorithms = {JwtAlgorithm::rs256};
    s.clock = [] { return fixed_now; };
    JwtVerifier only_rs(s);
    CHECK(only_rs.verify(rs(claims())).accepted());
    CHECK_FALSE(only_rs.verify(hs(claims())).accepted());
    CHECK(only_rs.metrics().algorithm == 1);
    s.keys.push_back(JwtKey::hs256_secret(secret));
    CHECK_THROWS_AS(JwtVerifier{s}, std::invalid_argument);
  }
}

TEST_CASE("algorithm confusion: an HS256 token keyed with the RSA key's PEM is refused") {
  JwtSettings s;
  s.keys.push_back(JwtKey::rs256_public_pem(rsa_key().public_pem(), "rsa-1"));
  s.keys.push_back(JwtKey::rs256_public_pem(rsa_key().public_pem()));
  s.clock = [] { return fixed_now; };
  JwtVerifier v(s);
  const std::string pem = rsa_key().public_pem();
  // Naming the RSA key's kid: the key is RS256, the token HS256.
  AuthResult with_kid = v.verify(hs(claims(), "rsa-1", pem));
  CHECK_FALSE(with_kid.accepted());
  CHECK(with_kid.reason == "algorithm does not match the key");
  // Without a kid: no HS256 key at all.
  CHECK_FALSE(v.verify(hs(claims(), {}, pem)).accepted());
  CHECK(v.metrics().algorithm == 2);
  CHECK(v.verify(rs(claims(), "rsa-1")).accepted());
}

TEST_CASE("aud and iss when set") {
  JwtSettings s = base_settings();
  s.audiences = {"dashboard", "admin-ui"};
  s.issuer = "https://idp.example";
  JwtVerifier v(s);
  const std::string iss = R"(,"iss":"https://idp.example")";
  CHECK(v.verify(hs(claims(iss + R"(,"aud":"dashboard")"))).accepted());
  CHECK(v.verify(hs(claims(iss + R"(,"aud":["other","admin-ui"])"))).accepted());
  CHECK_FALSE(v.verify(hs(claims(iss + R"(,"aud":"other")"))).accepted());
  CHECK_FALSE(v.verify(hs(claims(iss + R"(,"aud":["other"])"))).accepted());
  CHECK_FALSE(v.verify(hs(claims(iss))).accepted());
  CHECK(v.metrics().audience == 3);
  AuthResult wrong_iss = v.verify(hs(claims(R"(,"aud":"dashboard","iss":"https://evil.example")")));
  CHECK_FALSE(wrong_iss.accepted());
  CHECK(wrong_iss.reason == "wrong issuer");
  CHECK_FALSE(v.verify(hs(claims(R"(,"aud":"dashboard")"))).accepted());
  CHECK(v.metrics().issuer == 2);
}

TEST_CASE("kid: the named key only; an unknown kid is refused") {
  JwtSettings s;
  s.keys.push_back(JwtKey::hs256_secret(secret, "k1"));
  s.keys.push_back(JwtKey::hs256_secret(std::string(32, 'z'), "k2"));
  s.clock = [] { return fixed_now; };
  JwtVerifier v(s);
  CHECK(v.verify(hs(claims(), "k1")).accepted());
  CHECK(v.verify(hs(claims(), "k2", std::string(32, 'z'))).accepted());
  CHECK_FALSE(v.verify(hs(claims(), "k2")).accepted());  // k1's secret under k2's name
  CHECK(v.metrics().signature == 1);
  AuthResult unknown = v.verify(hs(claims(), "k3"));
  CHECK_FALSE(unknown.accepted());
  CHECK(unknown.reason == "unknown key id");
  // Every HS256 key has a kid: a token without one has nothing to pick.
  CHECK_FALSE(v.verify(hs(claims())).accepted());
  CHECK(v.metrics().unknown_kid == 2);

  s.keys.push_back(JwtKey::hs256_secret(std::string(40, 'y'), "k1"));
  CHECK_THROWS_AS(JwtVerifier{s}, std::invalid_argument);  // k1 twice
}

TEST_CASE("claim values that would act in an Authorizer pattern are refused") {
  JwtVerifier v(base_settings());
  for (const char* org : {"acme:transactions", "*", "ac?me", "{org}", "a}", "tab\\there", "nul\\u0000", "del\\u007f"}) {
    AuthResult r = v.verify(hs(claims(R"(,"org":")" + std::string(org) + "\"")));
    CHECK_MESSAGE(!r.accepted(), org);
  }
  CHECK_FALSE(v.verify(hs(R"({"sub":"alice:admin","exp":)" + std::to_string(now_s + 60) + "}")).accepted());
  CHECK_FALSE(v.verify(hs(R"({"sub":"","exp":)" + std::to_string(now_s + 60) + "}")).accepted());
  CHECK(v.metrics().claims == 10);
  CHECK(v.verify(hs(claims(R"(,"org":"acme-corp.eu_1 é")"))).accepted());
}

TEST_CASE("oversized and malformed tokens are refused before any signature check") {
  JwtSettings s = base_settings();
  s.max_token_bytes = 512;
  JwtVerifier v(s);
  AuthResult big = v.verify(hs(claims(R"(,"pad":")" + std::string(600, 'a') + "\"")));
  CHECK_FALSE(big.accepted());
  CHECK(big.reason == "token too large");
  CHECK(v.metrics().oversized == 1);
  CHECK_FALSE(v.verify(std::string(100'000, '.')).accepted());
  CHECK(v.metrics().oversized == 2);
  CHECK(v.verify("").reason == "no token");
  CHECK(v.metrics().missing == 1);

  const std::string good = hs(claims());
  const std::size_t first = good.find('.'), second = good.rfind('.');
  const std::string h = good.substr(0, first), p = good.substr(first + 1, second - first - 1),
                    sig = good.substr(second + 1);
  std::vector<std::string> malformed = {
      h + "=." + p + "." + sig,             // padding
      h + "." + p + "." + sig + "=",        // padding on the signature
      h + "." + p + "+." + sig,             // standard base64's alphabet
      h + "." + p + "." + sig + "AA",       // a length of 1 modulo 4
      "." + p + "." + sig,                  // empty header
      h + "." + p + "." + sig + ".x.y",     // five parts (JWE)
      h + " ." + p + "." + sig,             // a space
      base64url("not json") + "." + p + "." + sig,
      base64url(R"(["alg","HS256"])") + "." + p + "." + sig,
      base64url(R"({"alg":"HS256","alg":"none"})") + "." + p + "." + sig,  // a name twice
      base64url(R"({"alg":"HS256","kid":7})") + "." + p + "." + sig,
      base64url(R"({"alg":"HS256"} x)") + "." + p + "." + sig,
      base64url("{\"alg\":\"HS256\",\"x\":\"\xff\"}") + "." + p + "." + sig,  // not UTF-8
  };
  // "QR" decodes to the same byte as "QQ" but with a bit set after it.
  malformed.push_back(h + "." + p + "." + sig.substr(0, sig.size() - 2) + "QR");
  for (const std::string& token : malformed) {
    AuthResult r = v.verify(token);
    CHECK_MESSAGE(!r.accepted(), token);
  }
  CHECK(v.metrics().malformed == malformed.size());
  // An empty claims set decodes, so the signature over "header." is what fails.
  CHECK_FALSE(v.verify(h + ".." + sig).accepted());
  CHECK(v.metrics().signature == 1);

  // Signed, but the claims set is not a JSON object, or names a member twice.
  for (const std::string& body : {std::string("[1,2]"), std::string("{\"sub\":\"a\",\"sub\":\"b\",\"exp\":1}"),
                                  std::string(300, '[')}) {
    CHECK_FALSE(v.verify(make_token(header("HS256"), body, [](const std::string& in) {
                  return livecast_test::hs256(secret, in);
                })).accepted());
  }
  CHECK(v.metrics().malformed == malformed.size() + 3);
}

TEST_CASE("base64url decoding is strict") {
  std::string out;
  CHECK(livecast::detail::base64url_decode("", out));
  CHECK(out.empty());
  CHECK(livecast::detail::base64url_decode("QQ", out));
  CHECK(out == "A");
  CHECK(livecast::detail::base64url_decode("QUI", out));
  CHECK(out == "AB");
  CHECK(livecast::detail::base64url_decode("QUJD", out));
  CHECK(out == "ABC");
  CHECK(livecast::detail::base64url_decode("-_-_", out));
  CHECK(out == "\xfb\xff\xbf");
  CHECK_FALSE(livecast::detail::base64url_decode("QQ==", out));
  CHECK_FALSE(livecast::detail::base64url_decode("Q", out));
  CHECK_FALSE(livecast::detail::base64url_decode("QR", out));   // non-zero trailing bits
  CHECK_FALSE(livecast::detail::base64url_decode("QUJ", out));  // likewise, 2 bits
  CHECK_FALSE(livecast::detail::base64url_decode("+/+/", out));
  CHECK_FALSE(livecast::detail::base64url_decode(std::string_view("QU\0D", 4), out));
}

TEST_CASE("settings the verifier cannot work with throw") {
  JwtSettings none;
  CHECK_THROWS_AS(JwtVerifier{none}, std::invalid_argument);
  JwtSettings short_secret;
  short_secret.keys.push_back(JwtKey::hs256_secret("short"));
  CHECK_THROWS_AS(JwtVerifier{short_secret}, std::invalid_argument);
  JwtSettings wrong_type;
  wrong_type.keys.push_back(JwtKey::es256_public_pem(rsa_key().public_pem()));
  CHECK_THROWS_AS(JwtVerifier{wrong_type}, std::invalid_argument);
  JwtSettings not_pem;
  not_pem.keys.push_back(JwtKey::rs256_public_pem("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"));
  CHECK_THROWS_AS(JwtVerifier{not_pem}, std::invalid_argument);
  JwtSettings missing_file;
  missing_file.jwks_file = "/nonexistent/livecast/jwks.json";
  CHECK_THROWS_AS(JwtVerifier{missing_file}, std::system_error);
  CHECK_THROWS_AS(jwt_authenticator(nullptr), std::invalid_argument);
}

TEST_CASE("a JWKS file: loaded, rotated by rewriting it, a broken version keeps the keys before") {
  const SigningKey rsa_b = SigningKey::rsa2048();
  TempFile file("jwks.json");
  file.write(jwks({rsa_key().jwk("a"), ec_key().jwk("e1"), R"({"kty":"oct","k":"c2VjcmV0","kid":"s"})",
                   rsa_b.jwk("enc-only", R"(,"use":"enc")"), R"({"kty":"EC","crv":"P-384","x":"AA","y":"AA"})"}));
  std::vector<std::string> reported;
  std::mutex reported_mutex;
  JwtSettings s;
  s.jwks_file = file.path;
  s.jwks_check_interval = std::chrono::milliseconds(0);
  s.clock = [] { return fixed_now; };
  s.on_jwks_error = [&](std::error_code ec, const std::string& detail) {
    std::lock_guard<std::mutex> lock(reported_mutex);
    reported.push_back(ec.message() + ": " + detail);
  };
  JwtVerifier v(s);
  CHECK(v.metrics().keys == 2);  // the oct, encryption and P-384 keys are skipped
  CHECK(v.metrics().jwks_loads == 1);
  CHECK(v.verify(rs(claims(), "a")).accepted());
  CHECK(v.verify(es(claims(), "e1")).accepted());
  CHECK_FALSE(v.verify(rs(claims(), "enc-only", rsa_b)).accepted());
  CHECK(v.metrics().unknown_kid == 1);

  // Rotation: "b" arrives, "a" leaves.
  file.write(jwks({rsa_b.jwk("b", R"(,"alg":"RS256","use":"sig")"), ec_key().jwk("e1")}));
  CHECK(v.verify(rs(claims(), "b", rsa_b)).accepted());
  AuthResult removed = v.verify(rs(claims(), "a"));
  CHECK_FALSE(removed.accepted());
  CHECK(removed.reason == "unknown key id");
  CHECK(v.metrics().jwks_loads == 2);

  SUBCASE("broken versions keep the keys in use, each counted and reported once") {
    const std::vector<std::pair<std::string, JwksErrc>> broken = {
        {R"({"keys":[)", JwksErrc::not_jwks},
        {R"({"keys":{}})", JwksErrc::not_jwks},
        {jwks({R"({"kty":"RSA","n":"!!","e":"AQAB","kid":"c"})"}), JwksErrc::invalid_key},
        {jwks({R"({"kty":"EC","crv":"P-256","x":")" + base64url(std::string(32, '\1')) + R"(","y":")" +
               base64url(std::string(32, '\2')) + R"(","kid":"off-curve"})"}),
         JwksErrc::invalid_key},
        {jwks({rsa_b.jwk("b", R"(,"alg":"ES256")")}), JwksErrc::invalid_key},
        {jwks({rsa_b.jwk("b"), ec_key().jwk("b")}), JwksErrc::duplicate_kid},
    };
    std::uint64_t errors = 0;
    for (const auto& [text, expected] : broken) {
      file.write(text);
      CHECK(v.verify(rs(claims(), "b", rsa_b)).accepted());
      CHECK(v.verify(rs(claims(), "b", rsa_b)).accepted());  // the same broken version is not read again
      CHECK(v.metrics().jwks_errors == ++errors);
      CHECK(v.reload() == expected);
      ++errors;
    }
    CHECK(v.metrics().keys == 2);
    {
      std::lock_guard<std::mutex> lock(reported_mutex);
      CHECK(reported.size() == errors);
      for (const std::string& r : reported) CHECK(r.find("BEGIN") == std::string::npos);
    }
    std::remove(file.path.c_str());
    CHECK(v.verify(rs(claims(), "b", rsa_b)).accepted());
    CHECK(v.reload() == JwksErrc::unreadable);
    // A good version again.
    file.write(jwks({rsa_key().jwk("a")}));
    CHECK(v.reload() == std::error_code());
    CHECK(v.verify(rs(claims(), "a")).accepted());
    CHECK_FALSE(v.verify(rs(claims(), "b", rsa_b)).accepted());
  }
  SUBCASE("a JWKS kid may not repeat one of JwtSettings::keys") {
    JwtSettings both = s;
    both.keys.push_back(JwtKey::hs256_secret(secret, "e1"));
    CHECK_THROWS_AS(JwtVerifier{both}, std::system_error);
  }
}

TEST_CASE("the JWKS file is checked at most once per jwks_check_interval; reload() reads it at once") {
  TempFile file("jwks_interval.json");
  const SigningKey next = SigningKey::p256();
  file.write(jwks({ec_key().jwk("old")}));
  JwtSettings s;
  s.jwks_file = file.path;
  s.jwks_check_interval = std::chrono::hours(1);
  s.clock = [] { return fixed_now; };
  JwtVerifier v(s);
  CHECK(v.verify(es(claims(), "old")).accepted());  // the first check is due at once: the same version
  file.write(jwks({next.jwk("new")}));
  CHECK(v.verify(es(claims(), "old")).accepted());  // not looked at again within the hour
  CHECK_FALSE(v.verify(es(claims(), "new", next)).accepted());
  CHECK(v.metrics().jwks_loads == 1);
  CHECK(v.reload() == std::error_code());
  CHECK(v.verify(es(claims(), "new", next)).accepted());
  CHECK_FALSE(v.verify(es(claims(), "old")).accepted());
  CHECK(v.metrics().jwks_loads == 2);

  JwtSettings no_file;
  no_file.keys.push_back(JwtKey::hs256_secret(secret));
  JwtVerifier without(no_file);
  CHECK(without.reload() == JwksErrc::no_file);
}

TEST_CASE("verify from several threads while the JWKS file rotates") {
  TempFile file("jwks_threads.json");
  const SigningKey other = SigningKey::p256();
  file.write(jwks({rsa_key().jwk("stable"), other.jwk("rotating-0")}));
  JwtSettings s;
  s.jwks_file = file.path;
  s.jwks_check_interval = std::chrono::milliseconds(0);
  s.keys.push_back(JwtKey::hs256_secret(secret));
  s.clock = [] { return fixed_now; };
  JwtVerifier v(s);
  const std::string stable = rs(claims(), "stable");
  const std::string hmac = hs(claims());
  std::atomic<bool> done{false};
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      int rounds = 0;
      while (!done.load() || rounds < 50) {
        if (!v.verify(stable).accepted() || !v.verify(hmac).accepted()) failures.fetch_add(1);
        ++rounds;
      }
    });
  }
  for (int i = 1; i <= 20; ++i) {
    file.write(jwks({rsa_key().jwk("stable"), other.jwk("rotating-" + std::to_string(i))}));
    CHECK(v.reload() == std::error_code());
  }
  done = true;
  for (auto& t : threads) t.join();
  CHECK(failures.load() == 0);
  CHECK_FALSE(v.verify(es(claims(), "rotating-0", other)).accepted());
  CHECK(v.verify(es(claims(), "rotating-20", other)).accepted());
  CHECK(v.metrics().jwks_errors == 0);
}

TEST_CASE("HandshakeRequest::token(): Authorization, then the bearer subprotocol, the query, the cookie") {
  HandshakeRequest r;
  r.query["token"] = "from-query";
  r.cookies["livecast_token"] = "from-cookie";
  r.headers["sec-websocket-protocol"] = "livecast.v1, livecast.bearer.from-protocol";
  r.headers["authorization"] = "Bearer from-header";
  CHECK(r.token() == "from-header");
  r.headers.erase("authorization");
  CHECK(r.token() == "from-protocol");
  r.headers["sec-websocket-protocol"] = "livecast.bearer.first ,livecast.v1";
  CHECK(r.token() == "first");
  r.headers["sec-websocket-protocol"] = "livecast.v1,livecast.bearer.";  // an empty token is none
  CHECK(r.token() == "from-query");
  r.headers.erase("sec-websocket-protocol");
  CHECK(r.token() == "from-query");
  r.query.clear();
  CHECK(r.token().empty());  // the cookie only with an allow-listed Origin
  r.cookie_credentials_allowed = true;
  CHECK(r.token() == "from-cookie");
  r.headers["authorization"] = "Basic dXNlcjpwdw==";
  CHECK(r.token() == "from-cookie");
}
