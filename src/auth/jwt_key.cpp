#include "jwt_key.hpp"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>

#include <array>
#include <cstring>
#include <limits>

LIVECAST_BEGIN_NAMESPACE
namespace detail {

namespace {

// RFC 7518 section 3.2: an HS256 key must be at least as long as the hash.
constexpr std::size_t min_hs256_secret_bytes = 32;
// RFC 7518 section 3.3: RS256 keys of 2048 bits or more.
constexpr int min_rsa_bits = 2048;
constexpr std::size_t p256_coordinate_bytes = 32;

template <class T, void (*Free)(T*)>
struct Freer {
  void operator()(T* p) const noexcept { Free(p); }
};
using Bio = std::unique_ptr<BIO, Freer<BIO, BIO_free_all>>;
using Bignum = std::unique_ptr<BIGNUM, Freer<BIGNUM, BN_free>>;
using ParamBuilder = std::unique_ptr<OSSL_PARAM_BLD, Freer<OSSL_PARAM_BLD, OSSL_PARAM_BLD_free>>;
using Params = std::unique_ptr<OSSL_PARAM, Freer<OSSL_PARAM, OSSL_PARAM_free>>;
using PkeyContext = std::unique_ptr<EVP_PKEY_CTX, Freer<EVP_PKEY_CTX, EVP_PKEY_CTX_free>>;
using DigestContext = std::unique_ptr<EVP_MD_CTX, Freer<EVP_MD_CTX, EVP_MD_CTX_free>>;
using MacContext = std::unique_ptr<EVP_MAC_CTX, Freer<EVP_MAC_CTX, EVP_MAC_CTX_free>>;
using EcdsaSignature = std::unique_ptr<ECDSA_SIG, Freer<ECDSA_SIG, ECDSA_SIG_free>>;

const unsigned char* bytes(std::string_view s) { return reinterpret_cast<const unsigned char*>(s.data()); }

// OpenSSL keeps a queue of errors per thread; a failure handled here must not
// linger there for the next, unrelated caller on this shard thread to find.
struct ClearErrorsOnExit {
  ~ClearErrorsOnExit() { ERR_clear_error(); }
};

// Whether the key passes OpenSSL's own public-key validation (RSA: odd
// modulus, sane exponent; EC: a point on the curve, not at infinity).
bool public_key_valid(EVP_PKEY* key) {
  PkeyContext context(EVP_PKEY_CTX_new_from_pkey(nullptr, key, nullptr));
  return context && EVP_PKEY_public_check(context.get()) == 1;
}

// Builds a public key of `type` ("RSA", "EC") from OSSL_PARAMs.
EVP_PKEY* public_key_from(const char* type, OSSL_PARAM_BLD* builder) {
  Params params(OSSL_PARAM_BLD_to_param(builder));
  PkeyContext context(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
  if (!params || !context || EVP_PKEY_fromdata_init(context.get()) != 1) return nullptr;
  EVP_PKEY* key = nullptr;
  if (EVP_PKEY_fromdata(context.get(), &key, EVP_PKEY_PUBLIC_KEY, params.get()) != 1) return nullptr;
  return key;
}

// JWS's ES256 signature is r and s as two 32-byte big-endian numbers; EVP
// verifies the DER of an ECDSA-Sig-Value.
std::string es256_signature_as_der(std::string_view raw) {
  if (raw.size() != 2 * p256_coordinate_bytes) return {};
  EcdsaSignature sig(ECDSA_SIG_new());
  Bignum r(BN_bin2bn(bytes(raw), static_cast<int>(p256_coordinate_bytes), nullptr));
  Bignum s(BN_bin2bn(bytes(raw) + p256_coordinate_bytes, static_cast<int>(p256_coordinate_bytes), nullptr));
  if (!sig || !r || !s || ECDSA_SIG_set0(sig.get(), r.get(), s.get()) != 1) return {};
  r.release();  // owned by sig now
  s.release();
  const int length = i2d_ECDSA_SIG(sig.get(), nullptr);
  if (length <= 0) return {};
  std::string der(static_cast<std::size_t>(length), '\0');
  unsigned char* out = reinterpret_cast<unsigned char*>(der.data());
  if (i2d_ECDSA_SIG(sig.get(), &out) != length) return {};
  return der;
}

}  // namespace

void wipe(std::string& secret) noexcept {
  if (!secret.empty()) OPENSSL_cleanse(secret.data(), secret.size());
}

void JwtVerificationKey::PkeyFree::operator()(EVP_PKEY* p) const noexcept { EVP_PKEY_free(p); }
void JwtVerificationKey::MacFree::operator()(EVP_MAC* m) const noexcept { EVP_MAC_free(m); }

JwtVerificationKey::~JwtVerificationKey() { wipe(secret_); }

JwtVerificationKey::Ptr JwtVerificationKey::from_settings(const JwtKey& key, std::string& error) {
  ClearErrorsOnExit clear_errors;
  const std::string name = key.kid.empty() ? std::string(to_jose_name(key.algorithm)) + " key"
                                           : std::string(to_jose_name(key.algorithm)) + " key '" + key.kid + "'";
  if (key.algorithm == JwtAlgorithm::hs256) {
    if (key.material.size() < min_hs256_secret_bytes) {
      error = name + ": an HS256 secret needs at least 32 bytes";
      return nullptr;
    }
    std::shared_ptr<JwtVerificationKey> built(new JwtVerificationKey(key.algorithm, key.kid));
    built->secret_ = key.material;
    built->mac_.reset(EVP_MAC_fetch(nullptr, OSSL_MAC_NAME_HMAC, nullptr));
    if (!built->mac_) {
      error = name + ": OpenSSL offers no HMAC";
      return nullptr;
    }
    return built;
  }
  if (key.material.size() > static_cast<std::size_t>(std::numeric_limits<int>::max())) {
    error = name + ": not a PEM public key";
    return nullptr;
  }
  Bio pem(BIO_new_mem_buf(key.material.data(), static_cast<int>(key.material.size())));
  EVP_PKEY* public_key = pem ? PEM_read_bio_PUBKEY(pem.get(), nullptr, nullptr, nullptr) : nullptr;
  if (!public_key) {
    error = name + ": not a PEM public key (\"BEGIN PUBLIC KEY\")";
    return nullptr;
  }
  auto built = with_public_key(key.algorithm, public_key, key.kid, error);
  if (!built) error = name + ": " + error;
  return built;
}

JwtVerificationKey::Ptr JwtVerificationKey::rsa_from_components(std::string_view n, std::string_view e,
                                                                std::string kid, std::string& error) {
  ClearErrorsOnExit clear_errors;
  Bignum modulus(BN_bin2bn(bytes(n), static_cast<int>(n.size()), nullptr));
  Bignum exponent(BN_bin2bn(bytes(e), static_cast<int>(e.size()), nullptr));
  ParamBuilder builder(OSSL_PARAM_BLD_new());
  if (!modulus || !exponent || !builder ||
      OSSL_PARAM_BLD_push_BN(builder.get(), OSSL_PKEY_PARAM_RSA_N, modulus.get()) != 1 ||
      OSSL_PARAM_BLD_push_BN(builder.get(), OSSL_PKEY_PARAM_RSA_E, exponent.get()) != 1) {
    error = "the RSA key's n or e does not build";
    return nullptr;
  }
  EVP_PKEY* key = public_key_from("RSA", builder.get());
  if (!key) {
    error = "the RSA key's n or e does not build";
    return nullptr;
  }
  return with_public_key(JwtAlgorithm::rs256, key, std::move(kid), error);
}

JwtVerificationKey::Ptr JwtVerificationKey::p256_from_coordinates(std::string_view x, std::string_view y,
                                                                  std::string kid, std::string& error) {
  ClearErrorsOnExit clear_errors;
  if (x.size() != p256_coordinate_bytes || y.size() != p256_coordinate_bytes) {
    error = "a P-256 key's x and y are 32 bytes each";
    return nullptr;
  }
  // SEC 1's uncompressed point: 0x04 || x || y.
  std::array<unsigned char, 1 + 2 * p256_coordinate_bytes> point{};
  point[0] = 0x04;
  std::memcpy(point.data() + 1, x.data(), x.size());
  std::memcpy(point.data() + 1 + x.size(), y.data(), y.size());
  ParamBuilder builder(OSSL_PARAM_BLD_new());
  if (!builder ||
      OSSL_PARAM_BLD_push_utf8_string(builder.get(), OSSL_PKEY_PARAM_GROUP_NAME, SN_X9_62_prime256v1, 0) != 1 ||
      OSSL_PARAM_BLD_push_octet_string(builder.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()) != 1) {
    error = "the P-256 key does not build";
    return nullptr;
  }
  EVP_PKEY* key = public_key_from("EC", builder.get());
  if (!key) {
    error = "the P-256 key's point is not on the curve";
    return nullptr;
  }
  return with_public_key(JwtAlgorithm::es256, key, std::move(kid), error);
}

JwtVerificationKey::Ptr JwtVerificationKey::with_public_key(JwtAlgorithm algorithm, EVP_PKEY* key, std::string kid,
                                                            std::string& error) {
  std::shared_ptr<JwtVerificationKey> built(new JwtVerificationKey(algorithm, std::move(kid)));
  built->public_key_.reset(key);
  if (algorithm == JwtAlgorithm::rs256) {
    // "RSA" only: an RSA-PSS key would verify with another padding.
    if (EVP_PKEY_is_a(key, "RSA") != 1) {
      error = "not an RSA public key";
      return nullptr;
    }
    if (EVP_PKEY_get_bits(key) < min_rsa_bits) {
      error = "an RSA key needs at least 2048 bits";
      return nullptr;
    }
  } else if (algorithm == JwtAlgorithm::es256) {
    std::array<char, 64> group{};
    std::size_t length = 0;
    if (EVP_PKEY_is_a(key, "EC") != 1 ||
        EVP_PKEY_get_group_name(key, group.data(), group.size(), &length) != 1 ||
        std::string_view(group.data(), length) != SN_X9_62_prime256v1) {
      error = "not an EC public key on P-256";
      return nullptr;
    }
  } else {
    error = "an HS256 key is a secret, not a public key";
    return nullptr;
  }
  if (!public_key_valid(key)) {
    error = "the public key fails OpenSSL's validation";
    return nullptr;
  }
  return built;
}

bool JwtVerificationKey::verifies(std::string_view signing_input, std::string_view signature) const {
  ClearErrorsOnExit clear_errors;
  return algorithm_ == JwtAlgorithm::hs256 ? verifies_hmac(signing_input, signature)
                                           : verifies_public(signing_input, signature);
}

bool JwtVerificationKey::verifies_hmac(std::string_view signing_input, std::string_view signature) const {
  std::array<unsigned char, EVP_MAX_MD_SIZE> mac{};
  std::size_t mac_size = 0;
  char digest[] = "SHA256";
  const OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                               OSSL_PARAM_construct_end()};
  MacContext context(EVP_MAC_CTX_new(mac_.get()));
  if (!context || EVP_MAC_init(context.get(), bytes(secret_), secret_.size(), params) != 1 ||
      EVP_MAC_update(context.get(), bytes(signing_input), signing_input.size()) != 1 ||
      EVP_MAC_final(context.get(), mac.data(), &mac_size, mac.size()) != 1)
    return false;
  // Constant time: how many leading bytes matched must not show in the timing.
  return signature.size() == mac_size && CRYPTO_memcmp(mac.data(), signature.data(), mac_size) == 0;
}

bool JwtVerificationKey::verifies_public(std::string_view signing_input, std::string_view signature) const {
  std::string der;
  if (algorithm_ == JwtAlgorithm::es256) {
    der = es256_signature_as_der(signature);
    if (der.empty()) return false;
    signature = der;
  }
  DigestContext context(EVP_MD_CTX_new());
  return context &&
         EVP_DigestVerifyInit_ex(context.get(), nullptr, "SHA256", nullptr, nullptr, public_key_.get(), nullptr) ==
             1 &&
         EVP_DigestVerify(context.get(), bytes(signature), signature.size(), bytes(signing_input),
                          signing_input.size()) == 1;
}

}  // namespace detail
LIVECAST_END_NAMESPACE
