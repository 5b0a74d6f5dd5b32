// Reading the frames a WebSocket server sends (RFC 6455 5.2: unmasked, the
// 7-, 16- or 64-bit length forms), for the load tools' minimal clients.
// Sans-I/O: bytes in, the first whole frame out.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace livecast_bench {

struct ServerFrame {
  unsigned opcode = 0;
  std::string_view payload;  // points into the bytes given to next_server_frame
  std::size_t size = 0;      // header and payload: what to consume

  bool text() const noexcept { return opcode == 0x1; }
  bool close() const noexcept { return opcode == 0x8; }
  bool ping() const noexcept { return opcode == 0x9; }
};

// The frame at the start of `bytes`, or nothing while it is incomplete.
inline std::optional<ServerFrame> next_server_frame(std::string_view bytes) {
  if (bytes.size() < 2) return std::nullopt;
  const auto byte = [&](std::size_t i) { return static_cast<std::uint64_t>(static_cast<unsigned char>(bytes[i])); };
  std::uint64_t length = byte(1) & 0x7F;
  std::size_t header = 2;
  if (length == 126) {
    if (bytes.size() < 4) return std::nullopt;
    length = (byte(2) << 8) | byte(3);
    header = 4;
  } else if (length == 127) {
    if (bytes.size() < 10) return std::nullopt;
    length = 0;
    for (std::size_t i = 0; i < 8; ++i) length = (length << 8) | byte(2 + i);
    header = 10;
  }
  if (length > bytes.size() - header) return std::nullopt;
  ServerFrame f;
  f.opcode = static_cast<unsigned>(byte(0) & 0x0F);
  f.payload = bytes.substr(header, static_cast<std::size_t>(length));
  f.size = header + static_cast<std::size_t>(length);
  return f;
}

}  // namespace livecast_bench
