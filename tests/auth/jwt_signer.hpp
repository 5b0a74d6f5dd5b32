// The token issuer's side, for tests only: RSA-2048 and P-256 keys made on
// the spot, and HS256 / RS256 / ES256 signatures, all through OpenSSL's EVP
// interface. Also what a test needs to write tokens and JWKS files by hand.
#pragma once

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

namespace livecast_test {

inline std::string base64url(std::string_view bytes) {
  static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const unsigned v = (static_cast<unsigned char>(bytes[i]) << 16) | (static_cast<unsigned char>(bytes[i + 1]) << 8) |
                       static_cast<unsigned char>(bytes[i + 2]);
    for (int shift = 18; shift >= 0; shift -= 6) out.push_back(alphabet[(v >> shift) & 63]);
  }
  const std::size_t rest = bytes.size() - i;
  if (rest > 0) {
    unsigned v = static_cast<unsigned char>(bytes[i]) << 16;
    if (rest == 2) v |= static_cast<unsigned char>(bytes[i + 1]) << 8;
    out.push_back(alphabet[(v >> 18) & 63]);
    out.push_back(alphabet[(v >> 12) & 63]);
    if (rest == 2) out.push_back(alphabet[(v >> 6) & 63]);
  }
  return out;
}

inline std::string hs256(std::string_view secret, std::string_view input) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (!HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
            reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &size))
    throw std::runtime_error("HMAC failed");
  return std::string(reinterpret_cast<char*>(mac), size);
}

// A private key of the issuer.
class SigningKey {
 public:
  static SigningKey rsa2048() { return SigningKey(EVP_RSA_gen(2048), false); }
  static SigningKey p256() { return SigningKey(EVP_EC_gen("P-256"), true); }

  bool is_ec() const { return ec_; }

  std::string public_pem() const {
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
    if (!bio || PEM_write_bio_PUBKEY(bio.get(), key_.get()) != 1) throw std::runtime_error("PEM export failed");
    char* data = nullptr;
    long size = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<std::size_t>(size));
  }

  // The public key as a JWK object (its text), with `extra` members appended
  // (e.g. R"(,"alg":"RS256")").
  std::string jwk(const std::string& kid, const std::string& extra = {}) const {
    std::string kid_member = kid.empty() ? "" : R"(,"kid":")" + kid + "\"";
    if (ec_) {
      return R"({"kty":"EC","crv":"P-256","x":")" + base64url(bn_param(OSSL_PKEY_PARAM_EC_PUB_X, 32)) +
             R"(","y":")" + base64url(bn_param(OSSL_PKEY_PARAM_EC_PUB_Y, 32)) + "\"" + kid_member + extra + "}";
    }
    return R"({"kty":"RSA","n":")" + base64url(bn_param(OSSL_PKEY_PARAM_RSA_N, 0)) + R"(","e":")" +
           base64url(bn_param(OSSL_PKEY_PARAM_RSA_E, 0)) + "\"" + kid_member + extra + "}";
  }

  // The JWS signature of `input`: RS256's PKCS #1 v1.5 bytes, or ES256's r||s.
  std::string sign(std::string_view input) const {
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
    std::size_t size = 0;
    const auto* data = reinterpret_cast<const unsigned char*>(input.data());
    if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key_.get()) != 1 ||
        EVP_DigestSign(ctx.get(), nullptr, &size, data, input.size()) != 1)
      throw std::runtime_error("sign failed");
    std::string sig(size, '\0');
    if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &size, data, input.size()) != 1)
      throw std::runtime_error("sign failed");
    sig.resize(size);
    if (!ec_) return sig;
    const auto* der = reinterpret_cast<const unsigned char*>(sig.data());
    std::unique_ptr<ECDSA_SIG, decltype(&ECDSA_SIG_free)> parsed(d2i_ECDSA_SIG(nullptr, &der, static_cast<long>(sig.size())),
                                                                 ECDSA_SIG_free);
    if (!parsed) throw std::runtime_error("bad ECDSA signature");
    std::string raw(64, '\0');
    BN_bn2binpad(ECDSA_SIG_get0_r(parsed.get()), reinterpret_cast<unsigned char*>(raw.data()), 32);
    BN_bn2binpad(ECDSA_SIG_get0_s(parsed.get()), reinterpret_cast<unsigned char*>(raw.data()) + 32, 32);
    return raw;
  }

 private:
  SigningKey(EVP_PKEY* key, bool ec) : key_(key, EVP_PKEY_free), ec_(ec) {
    if (!key) throw std::runtime_error("key generation failed");
  }

  // A big-number parameter of the key, big-endian, left-padded to `width` bytes when width > 0.
  std::string bn_param(const char* name, int width) const {
    BIGNUM* bn = nullptr;
    if (EVP_PKEY_get_bn_param(key_.get(), name, &bn) != 1) throw std::runtime_error("no key parameter");
    const int size = width > 0 ? width : BN_num_bytes(bn);
    std::string out(static_cast<std::size_t>(size), '\0');
    BN_bn2binpad(bn, reinterpret_cast<unsigned char*>(out.data()), size);
    BN_free(bn);
    return out;
  }

  std::shared_ptr<EVP_PKEY> key_;
  bool ec_;
};

// header.payload.signature, with the header and claims given as JSON text.
template <class Sign>
std::string make_token(const std::string& header_json, const std::string& claims_json, Sign sign) {
  const std::string input = base64url(header_json) + "." + base64url(claims_json);
  return input + "." + base64url(sign(input));
}

}  // namespace livecast_test
