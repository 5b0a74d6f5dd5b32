#include "tls_context.hpp"

#include <asio/ssl/error.hpp>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <sys/stat.h>

#include <cerrno>
#include <utility>

LIVECAST_BEGIN_NAMESPACE
namespace detail {

namespace {

// Mozilla's "intermediate" TLS 1.2 suites: forward secrecy and AEAD only.
constexpr const char* default_tls12_ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

// ALPN: both transports speak HTTP/1.1 (a WebSocket handshake is one). A
// client that offers protocols but not this one (h2 only) cannot talk to us:
// refuse it at the handshake rather than after (RFC 7301 3.2).
int select_http11(SSL*, const unsigned char** out, unsigned char* out_length, const unsigned char* offered,
                  unsigned int offered_length, void*) {
  static const unsigned char ours[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(&selected, out_length, ours, sizeof ours, offered, offered_length) !=
      OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_ALERT_FATAL;
  *out = selected;
  return SSL_TLSEXT_ERR_OK;
}

std::error_code last_ssl_error() {
  const unsigned long e = ::ERR_get_error();
  ::ERR_clear_error();
  return std::error_code(static_cast<int>(e ? e : ERR_PACK(ERR_LIB_SSL, 0, ERR_R_INTERNAL_ERROR)),
                         asio::error::get_ssl_category());
}

}  // namespace

TlsContext::TlsContext(TlsSettings settings, Report report)
    : settings_(std::move(settings)), report_(std::move(report)), last_check_(std::chrono::steady_clock::now()) {
  std::error_code ec;
  tried_ = stamp(ec);
  if (!ec) current_ = load(ec);
  if (ec) throw std::system_error(ec, "TLS: cannot load " + settings_.cert_file + " and " + settings_.key_file);
}

std::shared_ptr<asio::ssl::context> TlsContext::load(std::error_code& ec) const {
  ::ERR_clear_error();
  auto context = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
  SSL_CTX* ctx = context->native_handle();
  if (::SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) return ec = last_ssl_error(), nullptr;
  ::SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  // Idle connections are the norm: OpenSSL's record buffers go back to it
  // between reads and writes.
  ::SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  const std::string& ciphers = settings_.tls12_ciphers.empty() ? default_tls12_ciphers : settings_.tls12_ciphers;
  if (::SSL_CTX_set_cipher_list(ctx, ciphers.c_str()) != 1) return ec = last_ssl_error(), nullptr;
  ::SSL_CTX_set_alpn_select_cb(ctx, select_http11, nullptr);
  context->use_certificate_chain_file(settings_.cert_file, ec);
  if (ec) return nullptr;
  context->use_private_key_file(settings_.key_file, asio::ssl::context::pem, ec);
  if (ec) return nullptr;
  if (::SSL_CTX_check_private_key(ctx) != 1) return ec = last_ssl_error(), nullptr;
  return context;
}

namespace {

TlsContext::FileStamp file_stamp(const std::string& path, std::error_code& ec) {
  struct ::stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    ec = std::error_code(errno, std::generic_category());
    return {};
  }
  return {static_cast<std::uint64_t>(st.st_dev), static_cast<std::uint64_t>(st.st_ino),
          static_cast<std::uint64_t>(st.st_size),
          static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec};
}

}  // namespace

TlsContext::Stamp TlsContext::stamp(std::error_code& ec) const {
  Stamp s;
  s.cert = file_stamp(settings_.cert_file, ec);
  if (!ec) s.key = file_stamp(settings_.key_file, ec);
  return s;
}

std::shared_ptr<asio::ssl::context> TlsContext::current() {
  std::error_code failed;
  std::shared_ptr<asio::ssl::context> context;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto now = std::chrono::steady_clock::now();
    if (settings_.reload_check_interval.count() > 0 && now - last_check_ >= settings_.reload_check_interval) {
      last_check_ = now;
      std::error_code ec;
      const Stamp seen = stamp(ec);
      // A pair is tried once per change: a broken one is not retried (and
      // reported) at every look, only when the files change again.
      if (!ec && !(seen == tried_)) failed = reload_locked();
    }
    context = current_;
  }
  if (failed) report_("TLS: the changed certificate and key did not load; the previous pair stays in use", failed);
  return context;
}

std::error_code TlsContext::reload() {
  std::error_code ec;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ec = reload_locked();
  }
  if (ec) report_("TLS: the certificate and key did not load; the previous pair stays in use", ec);
  return ec;
}

std::error_code TlsContext::reload_locked() {
  std::error_code ec;
  const Stamp seen = stamp(ec);
  if (!ec) tried_ = seen;
  std::shared_ptr<asio::ssl::context> fresh = ec ? nullptr : load(ec);
  if (ec) {
    reload_failures_.fetch_add(1, std::memory_order_relaxed);
    return ec;
  }
  current_ = std::move(fresh);
  reloads_.fetch_add(1, std::memory_order_relaxed);
  return {};
}

TlsMetrics TlsContext::metrics() const noexcept {
  TlsMetrics m;
  m.handshakes_failed = handshakes_failed_.load(std::memory_order_relaxed);
  m.reloads = reloads_.load(std::memory_order_relaxed);
  m.reload_failures = reload_failures_.load(std::memory_order_relaxed);
  return m;
}

}  // namespace detail
LIVECAST_END_NAMESPACE
