// A TLS client for the transports' TLS tests, on Asio's SSL stream: connect
// and handshake, write bytes, read until a marker, and minimal WebSocket
// framing on top (masked frames out, server frames in). Every wait is bounded.
#pragma once

#include "tls_test_ca.hpp"
#include "ws_test_client.hpp"

#include <asio/connect.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/ssl.hpp>
#include <asio/write.hpp>

#include <openssl/ssl.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <system_error>

namespace livecast_test {

// A client context: trusts `ca_pem` (none: nothing, so every server
// certificate fails verification), offers ALPN http/1.1, TLS 1.2 and 1.3
// unless told otherwise.
inline asio::ssl::context client_context(const std::string& ca_pem, int min_version = TLS1_2_VERSION,
                                         int max_version = 0) {
  asio::ssl::context context(asio::ssl::context::tls_client);
  context.set_verify_mode(asio::ssl::verify_peer);
  if (!ca_pem.empty()) context.add_certificate_authority(asio::buffer(ca_pem));
  SSL_CTX* ctx = context.native_handle();
  // Old protocol versions are off at the default security level; the test
  // that asks for one must reach the server to be refused there.
  if (min_version < TLS1_2_VERSION) SSL_CTX_set_security_level(ctx, 0);
  SSL_CTX_set_min_proto_version(ctx, min_version);
  SSL_CTX_set_max_proto_version(ctx, max_version);
  static const unsigned char alpn[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
  SSL_CTX_set_alpn_protos(ctx, alpn, sizeof alpn);
  return context;
}

class TlsClient {
 public:
  TlsClient(std::uint16_t port, asio::ssl::context& context) : stream_(io_, context), port_(port) {}

  // Connects and completes the TLS handshake; the error (none: connected).
  std::error_code handshake(std::chrono::milliseconds timeout = wait_limit) {
    std::error_code ec;
    stream_.next_layer().connect({asio::ip::make_address("127.0.0.1"), port_}, ec);
    if (ec) return ec;
    SSL_set_tlsext_host_name(stream_.native_handle(), "localhost");
    bool done = false;
    stream_.async_handshake(asio::ssl::stream_base::client, [&](const std::error_code& e) {
      ec = e;
      done = true;
    });
    if (!run_until(io_, done, timeout)) {
      stream_.next_layer().cancel();
      run_until(io_, done, std::chrono::seconds(1));
      return std::make_error_code(std::errc::timed_out);
    }
    return ec;
  }

  // The serial number of the certificate the server presented.
  long peer_serial() {
    X509* cert = SSL_get1_peer_certificate(stream_.native_handle());
    if (!cert) return -1;
    const long serial = ASN1_INTEGER_get(X509_get_serialNumber(cert));
    X509_free(cert);
    return serial;
  }
  std::string alpn() {
    const unsigned char* data = nullptr;
    unsigned int size = 0;
    SSL_get0_alpn_selected(stream_.native_handle(), &data, &size);
    return std::string(reinterpret_cast<const char*>(data), size);
  }
  std::string protocol_version() { return SSL_get_version(stream_.native_handle()); }

  bool write(const std::string& bytes) {
    bool done = false;
    std::error_code ec;
    asio::async_write(stream_, asio::buffer(bytes), [&](const std::error_code& e, std::size_t) {
      ec = e;
      done = true;
    });
    return run_until(io_, done) && !ec;
  }

  // Reads until `marker` is among the bytes received from offset `from` on
  // (true), the stream ends or the time is up (false). received() holds
  // everything so far.
  bool read_until(const std::string& marker, std::chrono::milliseconds timeout = wait_limit, std::size_t from = 0) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (received_.find(marker, from) == std::string::npos) {
      if (!read_some(deadline)) return false;
    }
    return true;
  }
  std::string& received() { return received_; }

  // --- WebSocket over it ---

  // Sends the opening handshake for `resource`; returns the response's status line.
  std::string websocket_handshake(const std::string& resource = "/ws") {
    write("GET " + resource +
          " HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
    if (!read_until("\r\n\r\n")) return {};
    const std::size_t end = received_.find("\r\n\r\n");
    std::string status = received_.substr(0, received_.find("\r\n"));
    received_.erase(0, end + 4);
    return status;
  }
  void send_text(const std::string& text) {
    std::string frame;
    frame.push_back(static_cast<char>(0x81));
    const std::size_t n = text.size();
    if (n < 126) {
      frame.push_back(static_cast<char>(0x80 | n));
    } else {
      frame.push_back(static_cast<char>(0x80 | 126));
      frame.push_back(static_cast<char>(n >> 8));
      frame.push_back(static_cast<char>(n & 0xFF));
    }
    const char mask[4] = {0x11, 0x22, 0x33, 0x44};
    frame.append(mask, 4);
    for (std::size_t i = 0; i < n; ++i) frame.push_back(static_cast<char>(text[i] ^ mask[i % 4]));
    write(frame);
  }
  // The payload of the next text frame from the server (other frames are
  // skipped), or nothing within the timeout.
  std::optional<std::string> next_text(std::chrono::milliseconds timeout = wait_limit) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
      if (received_.size() >= 2) {
        const auto byte = [&](std::size_t i) { return static_cast<std::uint8_t>(received_[i]); };
        std::size_t length = byte(1) & 0x7F, header = 2;
        if (length == 126 && received_.size() >= 4) {
          length = (std::size_t(byte(2)) << 8) | byte(3);
          header = 4;
        } else if (length == 127 && received_.size() >= 10) {
          length = 0;
          for (std::size_t i = 2; i < 10; ++i) length = (length << 8) | byte(i);
          header = 10;
        }
        if (length < 126 || header > 2) {
          if (received_.size() >= header + length) {
            const std::uint8_t opcode = byte(0) & 0x0F;
            std::string payload = received_.substr(header, length);
            received_.erase(0, header + length);
            if (opcode == 0x1) return payload;
            continue;
          }
        }
      }
      if (!read_some(deadline)) return std::nullopt;
    }
  }

 private:
  bool read_some(std::chrono::steady_clock::time_point deadline) {
    std::array<char, 4096> buffer;
    bool done = false;
    std::error_code ec;
    std::size_t n = 0;
    stream_.async_read_some(asio::buffer(buffer), [&](const std::error_code& e, std::size_t got) {
      ec = e;
      n = got;
      done = true;
    });
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0 || !run_until(io_, done, left)) {
      stream_.next_layer().cancel();
      run_until(io_, done, std::chrono::seconds(1));
      return false;
    }
    received_.append(buffer.data(), n);
    return !ec;
  }

  asio::io_context io_;
  asio::ssl::stream<asio::ip::tcp::socket> stream_;
  std::uint16_t port_;
  std::string received_;
};

}  // namespace livecast_test
