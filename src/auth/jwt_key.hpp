// One JWT verification key, bound to one algorithm, and the signature check
// it performs through OpenSSL's EVP interface (never hand-written crypto).
// Built from a JwtKey (an HMAC secret or a PEM public key) or from a JWK's
// components; immutable afterwards, so shared by every shard thread at once.
#pragma once

#include <livecast/config.hpp>
#include <livecast/jwt.hpp>

#include <memory>
#include <string>
#include <string_view>

// OpenSSL's types, declared as <openssl/types.h> does, so that this header
// does not bring in OpenSSL's.
typedef struct evp_pkey_st EVP_PKEY;
typedef struct evp_mac_st EVP_MAC;

LIVECAST_BEGIN_NAMESPACE
namespace detail {

class JwtVerificationKey {
 public:
  using Ptr = std::shared_ptr<const JwtVerificationKey>;

  // Each returns nullptr and says why in `error` (naming no key material).
  static Ptr from_settings(const JwtKey& key, std::string& error);
  // RSA from the big-endian modulus and exponent (a JWK's `n` and `e`).
  static Ptr rsa_from_components(std::string_view n, std::string_view e, std::string kid, std::string& error);
  // EC P-256 from the big-endian affine coordinates (a JWK's `x` and `y`),
  // 32 bytes each; a point off the curve is refused.
  static Ptr p256_from_coordinates(std::string_view x, std::string_view y, std::string kid, std::string& error);

  ~JwtVerificationKey();
  JwtVerificationKey(const JwtVerificationKey&) = delete;
  JwtVerificationKey& operator=(const JwtVerificationKey&) = delete;

  JwtAlgorithm algorithm() const noexcept { return algorithm_; }
  const std::string& kid() const noexcept { return kid_; }

  // Whether `signature` (decoded from base64url) is this key's signature of
  // `signing_input`. ES256 signatures are JWS's raw r||s (RFC 7518 section
  // 3.4), rewritten as the DER that EVP expects. Thread-safe.
  bool verifies(std::string_view signing_input, std::string_view signature) const;

 private:
  struct PkeyFree {
    void operator()(EVP_PKEY* p) const noexcept;
  };
  struct MacFree {
    void operator()(EVP_MAC* m) const noexcept;
  };

  JwtVerificationKey(JwtAlgorithm algorithm, std::string kid) : algorithm_(algorithm), kid_(std::move(kid)) {}
  static Ptr with_public_key(JwtAlgorithm algorithm, EVP_PKEY* key, std::string kid, std::string& error);

  bool verifies_hmac(std::string_view signing_input, std::string_view signature) const;
  bool verifies_public(std::string_view signing_input, std::string_view signature) const;

  JwtAlgorithm algorithm_;
  std::string kid_;
  std::string secret_;                      // hs256; wiped on destruction
  std::unique_ptr<EVP_MAC, MacFree> mac_;   // hs256: HMAC, fetched once
  std::unique_ptr<EVP_PKEY, PkeyFree> public_key_;  // rs256, es256
};

// Overwrites a string's bytes with zeros in a way the compiler keeps
// (OPENSSL_cleanse), for copies of secrets no longer needed.
void wipe(std::string& secret) noexcept;

}  // namespace detail
LIVECAST_END_NAMESPACE
