// A masked client-to-server WebSocket frame (RFC 6455 5.2), for the load
// tools' own minimal clients (livecast-loadgen, livecast-bench-connections).
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace livecast_bench {

inline constexpr unsigned char text_opcode = 0x1;
inline constexpr unsigned char pong_opcode = 0xA;

// One final frame; payloads up to 64 KiB - 1 (the 16-bit length form), all
// a load tool sends.
inline std::string client_frame(unsigned char opcode, std::string_view payload, std::uint32_t mask_key) {
  std::string f;
  f.reserve(8 + payload.size());
  f.push_back(static_cast<char>(0x80 | opcode));
  if (payload.size() < 126) {
    f.push_back(static_cast<char>(0x80 | payload.size()));
  } else {
    f.push_back(static_cast<char>(0x80 | 126));
    f.push_back(static_cast<char>((payload.size() >> 8) & 0xFF));
    f.push_back(static_cast<char>(payload.size() & 0xFF));
  }
  char mask[4];
  std::memcpy(mask, &mask_key, 4);
  f.append(mask, 4);
  for (std::size_t i = 0; i < payload.size(); ++i) f.push_back(static_cast<char>(payload[i] ^ mask[i % 4]));
  return f;
}

}  // namespace livecast_bench
