// The WebSocket writer's pure parts without a socket: frame headers at each
// length boundary, outgoing chunks, and a partial gathered write.
#include "websocket_frames.hpp"

#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <vector>

using namespace livecast;
using namespace livecast::detail;

namespace {

std::string header_of(std::uint64_t size) {
  std::array<char, 10> h{};
  const std::uint8_t n = text_frame_header(h, size);
  return std::string(h.data(), n);
}

std::string bytes_of(const std::vector<asio::const_buffer>& buffers) {
  std::string out;
  for (const auto& b : buffers) out.append(static_cast<const char*>(b.data()), b.size());
  return out;
}

}  // namespace

TEST_CASE("a server text frame's header takes the shortest length encoding") {
  CHECK(header_of(0) == std::string("\x81\x00", 2));
  CHECK(header_of(125) == "\x81\x7d");
  CHECK(header_of(126) == std::string("\x81\x7e\x00\x7e", 4));
  CHECK(header_of(0xFFFF) == "\x81\x7e\xff\xff");
  CHECK(header_of(0x10000) == std::string("\x81\x7f\x00\x00\x00\x00\x00\x01\x00\x00", 10));
  CHECK(header_of(0x0102030405060708ull) == "\x81\x7f\x01\x02\x03\x04\x05\x06\x07\x08");
}

TEST_CASE("a frame's chunk is its header and the shared payload; owned bytes go as they are") {
  auto frame = std::make_shared<Frame>();
  frame->bytes = std::string(200, 'p');
  OutgoingChunk chunk = OutgoingChunk::of_frame(frame);
  CHECK(chunk.size() == 4 + 200);
  std::vector<asio::const_buffer> buffers;
  chunk.append_buffers(buffers);
  REQUIRE(buffers.size() == 2);
  CHECK(buffers[1].data() == frame->bytes.data());  // shared, not copied
  CHECK(bytes_of(buffers) == header_of(200) + frame->bytes);

  OutgoingChunk pong = OutgoingChunk::of_bytes(std::string("\x8a\x00", 2));
  CHECK(pong.size() == 2);
  pong.append_buffers(buffers);
  CHECK(buffers.size() == 3);
}

TEST_CASE("a close reason is cut to 123 bytes at the start of the character that does not fit") {
  CHECK(fit_close_reason("") == "");
  CHECK(fit_close_reason(std::string(123, 'a')) == std::string(123, 'a'));
  CHECK(fit_close_reason(std::string(124, 'a')) == std::string(123, 'a'));
  std::string sixty_e;
  for (int i = 0; i < 60; ++i) sixty_e += "\xc3\xa9";  // é: 120 bytes, fits as it is
  CHECK(fit_close_reason(sixty_e) == sixty_e);

  // Each width of character, starting at each offset around the limit.
  for (std::string character : {"\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80"}) {  // é, €, 😀
    for (std::size_t before = 115; before <= 123; ++before) {
      CAPTURE(character.size());
      CAPTURE(before);
      const std::string reason = std::string(before, 'a') + character + std::string(10, 'b');
      const std::string_view fitted = fit_close_reason(reason);
      if (before + character.size() <= 123)
        CHECK(fitted == std::string_view(reason).substr(0, 123));  // the character whole, then ASCII
      else
        CHECK(fitted == std::string(before, 'a'));  // the character left out whole
      CHECK(fitted.data() == reason.data());        // a prefix, not a copy
    }
  }
}

TEST_CASE("a text message ending inside a UTF-8 character is told from one ending on a whole character") {
  CHECK_FALSE(ends_inside_utf8_character(""));
  CHECK_FALSE(ends_inside_utf8_character("{\"op\":\"ping\"}"));
  for (std::string character : {"\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80"}) {  // é, €, 😀
    CAPTURE(character.size());
    CHECK_FALSE(ends_inside_utf8_character("a" + character));
    CHECK_FALSE(ends_inside_utf8_character(character + character));
    for (std::size_t cut = 1; cut < character.size(); ++cut) {
      CAPTURE(cut);
      CHECK(ends_inside_utf8_character("a" + character.substr(0, cut)));
      CHECK(ends_inside_utf8_character(character + character.substr(0, cut)));
    }
  }
  // fuzz_websocket's input: "7", then the first two bytes of a 3-byte character.
  CHECK(ends_inside_utf8_character("7\xeb\xac"));
}

TEST_CASE("a Sec-WebSocket-Key is 16 bytes in base64: 22 characters of the alphabet, then ==") {
  const std::string example = "dGhlIHNhbXBsZSBub25jZQ==";  // RFC 6455's
  CHECK(valid_websocket_key(example));
  CHECK(valid_websocket_key("AAAAAAAAAAAAAAAAAAAAAA=="));
  CHECK(valid_websocket_key("+/+/+/+/+/+/+/+/+/+/+w=="));

  CHECK_FALSE(valid_websocket_key(""));
  CHECK_FALSE(valid_websocket_key("short"));
  CHECK_FALSE(valid_websocket_key(example.substr(0, 23)));
  CHECK_FALSE(valid_websocket_key(example + "="));
  CHECK_FALSE(valid_websocket_key(example + ", " + example));  // the header twice, as websocketpp joins it
  CHECK_FALSE(valid_websocket_key("MTIzNDU2Nzg5MDEyMzQ1===="));  // 15 bytes
  CHECK_FALSE(valid_websocket_key("dGhlIHNhbXBsZSBub25jZQA="));  // 17 bytes
  CHECK_FALSE(valid_websocket_key("dGhlIHNhbXBsZSBub25jZQAA"));  // 18 bytes
  CHECK_FALSE(valid_websocket_key("dGhlIHNhbXBsZSBub25j=Q=="));  // padding inside

  // Every byte at every character position: only the 64 of the alphabet.
  for (std::size_t position = 0; position < 22; ++position) {
    std::string accepted;
    for (int byte = 0; byte < 256; ++byte) {
      std::string key = example;
      key[position] = static_cast<char>(byte);
      if (valid_websocket_key(key)) accepted.push_back(static_cast<char>(byte));
    }
    CAPTURE(position);
    CHECK(accepted == "+/0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz");
  }
}

TEST_CASE("what the kernel took of a gathered write is dropped, whole buffers and a part") {
  const std::string a = "abc", b = "defgh", c = "ij";
  auto make = [&] { return std::vector<asio::const_buffer>{asio::buffer(a), asio::buffer(b), asio::buffer(c)}; };
  for (std::size_t taken = 0; taken <= 10; ++taken) {
    auto buffers = make();
    drop_written(buffers, taken);
    CHECK(bytes_of(buffers) == std::string("abcdefghij").substr(taken));
  }
  auto all = make();
  drop_written(all, 10);
  CHECK(all.empty());
}
