// A certificate authority made inside a test with OpenSSL's APIs: an EC P-256
// key and a self-signed CA certificate, and server certificates for
// 127.0.0.1 and localhost it signs, each with a serial of the test's
// choosing (so that a client can tell which one a server presented). Nothing
// is read from or written to the system's trust store.
#pragma once

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>

namespace livecast_test {

struct OpenSslFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(X509* p) const { X509_free(p); }
  void operator()(BIO* p) const { BIO_free(p); }
};
using KeyPtr = std::unique_ptr<EVP_PKEY, OpenSslFree>;
using CertPtr = std::unique_ptr<X509, OpenSslFree>;

inline void require_ossl(bool ok, const char* what) {
  if (!ok) throw std::runtime_error(std::string("OpenSSL: ") + what);
}

inline KeyPtr new_ec_key() {
  KeyPtr key(EVP_EC_gen("P-256"));
  require_ossl(key != nullptr, "EVP_EC_gen");
  return key;
}

inline std::string pem_of(X509* cert) {
  std::unique_ptr<BIO, OpenSslFree> bio(BIO_new(BIO_s_mem()));
  require_ossl(PEM_write_bio_X509(bio.get(), cert) == 1, "PEM_write_bio_X509");
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(n));
}

inline std::string pem_of(EVP_PKEY* key) {
  std::unique_ptr<BIO, OpenSslFree> bio(BIO_new(BIO_s_mem()));
  require_ossl(PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) == 1,
               "PEM_write_bio_PrivateKey");
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(n));
}

struct TestCertificate {
  std::string cert_pem;  // the leaf, then the CA (a chain, as a server presents it)
  std::string key_pem;
};

class TestCa {
 public:
  TestCa() : key_(new_ec_key()) {
    cert_ = new_certificate(1, "livecast test CA", key_.get());
    X509_set_issuer_name(cert_.get(), X509_get_subject_name(cert_.get()));
    add_extension(cert_.get(), NID_basic_constraints, "critical,CA:TRUE");
    add_extension(cert_.get(), NID_key_usage, "critical,keyCertSign,cRLSign");
    require_ossl(X509_sign(cert_.get(), key_.get(), EVP_sha256()) > 0, "X509_sign (CA)");
  }

  std::string cert_pem() const { return pem_of(cert_.get()); }

  // A server certificate for 127.0.0.1 and localhost with `serial`, and a new key.
  TestCertificate issue(long serial) const {
    KeyPtr key = new_ec_key();
    CertPtr cert = new_certificate(serial, "127.0.0.1", key.get());
    X509_set_issuer_name(cert.get(), X509_get_subject_name(cert_.get()));
    add_extension(cert.get(), NID_subject_alt_name, "IP:127.0.0.1,DNS:localhost");
    add_extension(cert.get(), NID_ext_key_usage, "serverAuth");
    require_ossl(X509_sign(cert.get(), key_.get(), EVP_sha256()) > 0, "X509_sign (server)");
    return TestCertificate{pem_of(cert.get()) + cert_pem(), pem_of(key.get())};
  }

 private:
  static CertPtr new_certificate(long serial, const char* common_name, EVP_PKEY* key) {
    CertPtr cert(X509_new());
    require_ossl(cert != nullptr, "X509_new");
    X509_set_version(cert.get(), 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), serial);
    X509_gmtime_adj(X509_getm_notBefore(cert.get()), -60);
    X509_gmtime_adj(X509_getm_notAfter(cert.get()), 24 * 3600);
    X509_set_pubkey(cert.get(), key);
    X509_NAME* name = X509_get_subject_name(cert.get());
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(common_name), -1, -1,
                               0);
    return cert;
  }

  void add_extension(X509* cert, int nid, const char* value) const {
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, cert_ ? cert_.get() : cert, cert, nullptr, nullptr, 0);
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
    require_ossl(ext != nullptr, "X509V3_EXT_conf_nid");
    X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
  }

  KeyPtr key_;
  CertPtr cert_;
};

// A directory of the test's own under the system's temporary directory,
// removed with everything in it when the object goes.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "livecast-tls-XXXXXX").string();
    require_ossl(::mkdtemp(pattern.data()) != nullptr, "mkdtemp");
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

// Replaces `path` in one step (write beside it, then rename), as a
// certificate renewal tool should.
inline void write_file(const std::string& path, const std::string& text) {
  const std::string temporary = path + ".new";
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    out << text;
  }
  std::filesystem::rename(temporary, path);
}

}  // namespace livecast_test
