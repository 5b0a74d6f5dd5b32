// The opening handshake of the load tools' minimal WebSocket clients
// (RFC 6455 4.1): the request they send, and whether the answer accepts it.
// The key is a constant: the tools check the status line, not the
// Sec-WebSocket-Accept that a browser would.
#pragma once

#include <string>
#include <string_view>

namespace livecast_bench {

// `target`: the path and query, e.g. "/ws?token=T".
inline std::string upgrade_request(std::string_view target, std::string_view host) {
  std::string r = "GET ";
  r.append(target);
  r += " HTTP/1.1\r\nHost: ";
  r.append(host);
  r += "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
       "Sec-WebSocket-Version: 13\r\n\r\n";
  return r;
}

// `response`: the answer's head, up to its blank line.
inline bool upgrade_accepted(std::string_view response) { return response.substr(0, 12) == "HTTP/1.1 101"; }

}  // namespace livecast_bench
