// TLS for the WebSocket and HTTP transports (wss://, https://): where the
// certificate and key are, and what a transport counts about TLS. Set
// WebSocketSettings::tls or HttpTransportSettings::tls; without it a
// transport speaks plain TCP, as before. Built on Asio's SSL stream and
// OpenSSL 3, which stay inside src/transport/.
//
// What a transport with TLS does:
// - TLS 1.2 and 1.3 only; TLS 1.2 with ECDHE and AEAD suites only (AES-GCM,
//   ChaCha20-Poly1305), TLS 1.3 with OpenSSL's suites; no compression, no
//   renegotiation. ALPN: "http/1.1" when the client offers it (a client that
//   offers only other protocols is refused).
// - The TLS handshake counts within the transport's handshake time limit
//   (WebSocketSettings::handshake_timeout_ms, HttpTransportSettings::
//   request_timeout) and, on the WebSocket port, under max_pending_handshakes.
// - The certificate and key are loaded again, without a restart, when either
//   file's modification time changes (looked at when a connection arrives, at
//   most once per reload_check_interval) or when the host calls reload_tls().
//   New handshakes use the new pair; connections already open keep their
//   session. A pair that does not load (a file missing or unreadable, a key
//   that does not match the certificate) leaves the previous one in use, and
//   is reported to BrokerSettings::on_error and counted (TlsMetrics).
#pragma once

#include <livecast/config.hpp>

#include <chrono>
#include <cstdint>
#include <string>

LIVECAST_BEGIN_NAMESPACE

struct TlsSettings {
  // PEM: the server's certificate, then the intermediate certificates that
  // lead to a trusted root (what Let's Encrypt calls fullchain.pem).
  std::string cert_file;
  // PEM: the certificate's private key (RSA or EC), not encrypted.
  std::string key_file;
  // How often, at most, the two files' modification times are looked at
  // (when a connection arrives). 0: never; only reload_tls() loads them again.
  std::chrono::milliseconds reload_check_interval{5000};
  // OpenSSL cipher list for TLS 1.2; empty: ECDHE key exchange with AES-GCM
  // or ChaCha20-Poly1305 (TLS 1.3 always uses OpenSSL's default suites).
  std::string tls12_ciphers;
};

// Counters since start.
struct TlsMetrics {
  std::uint64_t handshakes_failed = 0;  // TLS handshakes that failed or timed out
  std::uint64_t reloads = 0;            // certificate and key pairs loaded after start
  std::uint64_t reload_failures = 0;    // pairs that did not load (the previous one stayed)
};

LIVECAST_END_NAMESPACE
