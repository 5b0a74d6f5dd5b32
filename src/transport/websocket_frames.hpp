// The WebSocket transport's pure parts: a server frame's header (and whole
// control and close frames), the pieces of a connection's outgoing byte
// stream, the bookkeeping of a gathered write the kernel took only part of,
// a close reason cut to fit its frame, the check of a handshake's
// Sec-WebSocket-Key, and of the end of a text message. No socket here;
// tested byte by byte in tests/transport/websocket_frames.cpp.
#pragma once

#include <livecast/config.hpp>
#include <livecast/publication.hpp>

#include <asio/buffer.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

LIVECAST_BEGIN_NAMESPACE
namespace detail {

// RFC 6455's opcodes for the frames a server writes.
inline constexpr std::uint8_t text_opcode = 0x1;
inline constexpr std::uint8_t close_opcode = 0x8;
inline constexpr std::uint8_t ping_opcode = 0x9;
inline constexpr std::uint8_t pong_opcode = 0xA;

// An RFC 6455 frame's header as it leaves a server: FIN, unmasked, the
// shortest length encoding. Returns the header's size (2, 4 or 10).
inline std::uint8_t server_frame_header(std::array<char, 10>& h, std::uint8_t opcode, std::uint64_t size) noexcept {
  h[0] = static_cast<char>(0x80 | opcode);
  if (size < 126) {
    h[1] = static_cast<char>(size);
    return 2;
  }
  if (size <= 0xFFFF) {
    h[1] = 126;
    h[2] = static_cast<char>(size >> 8);
    h[3] = static_cast<char>(size);
    return 4;
  }
  h[1] = 127;
  for (int i = 0; i < 8; ++i) h[2 + i] = static_cast<char>(size >> (8 * (7 - i)));
  return 10;
}

inline std::uint8_t text_frame_header(std::array<char, 10>& h, std::uint64_t size) noexcept {
  return server_frame_header(h, text_opcode, size);
}

// A whole server frame, header and payload, as bytes of its own (pongs,
// pings, close frames, Engine.IO's probe answer: small and rare).
inline std::string server_frame(std::uint8_t opcode, std::string_view payload) {
  std::array<char, 10> header;
  const std::uint8_t header_size = server_frame_header(header, opcode, payload.size());
  std::string frame(header.data(), header_size);
  frame.append(payload);
  return frame;
}

// One piece of a connection's outgoing byte stream: a frame's payload,
// shared with every other subscriber, behind a header of its own; or bytes
// of our own (the handshake response, control and close frames).
struct OutgoingChunk {
  FramePtr frame;  // null for owned bytes
  std::string owned;
  std::array<char, 10> header{};
  std::uint8_t header_size = 0;

  static OutgoingChunk of_frame(FramePtr f) {
    OutgoingChunk chunk;
    chunk.header_size = text_frame_header(chunk.header, f->bytes.size());
    chunk.frame = std::move(f);
    return chunk;
  }
  static OutgoingChunk of_bytes(std::string bytes) {
    OutgoingChunk chunk;
    chunk.owned = std::move(bytes);
    return chunk;
  }

  std::size_t size() const noexcept { return frame ? header_size + frame->bytes.size() : owned.size(); }
  // Its buffers for a gathered write: header and shared payload, or the owned bytes.
  void append_buffers(std::vector<asio::const_buffer>& out) const {
    if (frame) {
      out.emplace_back(header.data(), header_size);
      out.emplace_back(frame->bytes.data(), frame->bytes.size());
    } else {
      out.emplace_back(owned.data(), owned.size());
    }
  }
};

// A connection's buffers as Asio sees them during a write: a view, so that
// the write operation does not copy (allocate) the vector. The vector stays
// untouched until the write completes.
struct BufferView {
  using value_type = asio::const_buffer;
  using const_iterator = std::vector<asio::const_buffer>::const_iterator;
  const std::vector<asio::const_buffer>* buffers;
  const_iterator begin() const noexcept { return buffers->begin(); }
  const_iterator end() const noexcept { return buffers->end(); }
};

// Removes the first `n` bytes from a buffer sequence (what the kernel took
// of a gathered write), so that the rest can be written after them.
inline void drop_written(std::vector<asio::const_buffer>& buffers, std::size_t n) {
  std::size_t whole = 0;
  while (whole < buffers.size() && n >= buffers[whole].size()) n -= buffers[whole++].size();
  buffers.erase(buffers.begin(), buffers.begin() + static_cast<std::ptrdiff_t>(whole));
  if (n > 0 && !buffers.empty()) buffers.front() += n;
}

// A close frame's payload is at most 125 bytes (RFC 6455 5.5), two of them
// the status code.
inline constexpr std::size_t max_close_reason_bytes = 123;

// The longest prefix of `reason` that fits a close frame and ends where a
// UTF-8 character starts. websocketpp cuts at 123 bytes wherever that falls,
// and a reason cut inside a character is invalid UTF-8, on which a client
// fails the connection (1007) instead of reading the close code.
inline std::string_view fit_close_reason(std::string_view reason) noexcept {
  if (reason.size() <= max_close_reason_bytes) return reason;
  std::size_t end = max_close_reason_bytes;
  // reason[end] is the first byte left out: while it continues a character
  // (10xxxxxx), that character is cut, so leave it out whole.
  while (end > 0 && (static_cast<unsigned char>(reason[end]) & 0xC0) == 0x80) --end;
  return reason.substr(0, end);
}

// A close frame with a status code and a reason (cut to fit: fit_close_reason).
inline std::string close_frame(std::uint16_t code, std::string_view reason) {
  std::string payload;
  payload += static_cast<char>(code >> 8);
  payload += static_cast<char>(code & 0xFF);
  payload.append(fit_close_reason(reason));
  return server_frame(close_opcode, payload);
}

// A client's Sec-WebSocket-Key is a 16-byte nonce in base64 (RFC 6455
// 4.2.1): 22 characters of the alphabet, then "==". websocketpp checks only
// that the header is there. (The last of the 22 also carries 4 bits that
// decoding drops; like most decoders, this does not require them to be 0.)
inline bool valid_websocket_key(std::string_view key) noexcept {
  if (key.size() != 24 || key[22] != '=' || key[23] != '=') return false;
  for (std::size_t i = 0; i < 22; ++i) {
    const char c = key[i];
    const bool in_alphabet =
        (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
    if (!in_alphabet) return false;
  }
  return true;
}

// True when `text` ends inside a UTF-8 character: its last lead byte
// announces more continuation bytes than follow it. websocketpp validates a
// text message's UTF-8 as the frames arrive, but checks that the last
// character is complete only when the message came in one frame: a
// fragmented one may end in the middle of a character (found by
// fuzz_websocket). Only that defect can remain, so only the tail is read.
inline bool ends_inside_utf8_character(std::string_view text) noexcept {
  std::size_t continuation_bytes = 0;
  for (std::size_t i = text.size(); i > 0 && continuation_bytes < 4; --i) {
    const auto c = static_cast<unsigned char>(text[i - 1]);
    if ((c & 0xC0) == 0x80) {
      ++continuation_bytes;
      continue;
    }
    const std::size_t length = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 1;
    return continuation_bytes + 1 < length;
  }
  return false;
}

}  // namespace detail
LIVECAST_END_NAMESPACE
