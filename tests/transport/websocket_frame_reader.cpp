// WebSocketFrameReader without a socket: client frames as RFC 6455 makes
// them (masked, with each length encoding), whole, byte by byte and split
// everywhere, and every rule a server applies to them.
#include "websocket_frame_reader.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

using namespace livecast;
using namespace livecast::detail;
using Event = WebSocketFrameReader::Event;

namespace {

constexpr std::size_t max_bytes = 1024;

// A client frame: masked with a fixed key unless `masked` is false.
std::string client_frame(std::uint8_t opcode, std::string_view payload, bool fin = true, bool masked = true,
                         std::uint8_t rsv = 0) {
  std::string f;
  f += static_cast<char>((fin ? 0x80 : 0) | rsv | opcode);
  const std::uint8_t mask_bit = masked ? 0x80 : 0;
  if (payload.size() < 126) {
    f += static_cast<char>(mask_bit | payload.size());
  } else if (payload.size() <= 0xFFFF) {
    f += static_cast<char>(mask_bit | 126);
    f += static_cast<char>(payload.size() >> 8);
    f += static_cast<char>(payload.size() & 0xFF);
  } else {
    f += static_cast<char>(mask_bit | 127);
    for (int i = 7; i >= 0; --i) f += static_cast<char>((static_cast<std::uint64_t>(payload.size()) >> (8 * i)) & 0xFF);
  }
  const char key[4] = {'\x12', '\x34', '\x56', '\x78'};
  if (masked) f.append(key, 4);
  for (std::size_t i = 0; i < payload.size(); ++i)
    f += masked ? static_cast<char>(payload[i] ^ key[i % 4]) : payload[i];
  return f;
}

struct Seen {
  Event event;
  std::string payload;
};

// Feeds `bytes` in pieces of `step` bytes (0: all at once) and collects every
// event until the input is used up or an error.
std::vector<Seen> read_all(WebSocketFrameReader& reader, std::string_view bytes, std::size_t step = 0,
                           std::size_t max = max_bytes) {
  std::vector<Seen> seen;
  while (!bytes.empty()) {
    std::string_view piece = step == 0 ? bytes : bytes.substr(0, step);
    bytes.remove_prefix(piece.size());
    while (true) {
      const Event e = reader.read(piece, max);
      if (e == Event::none) break;
      std::string payload;
      if (e == Event::text || e == Event::binary) payload = reader.take_message();
      if (e == Event::ping || e == Event::pong || e == Event::close) payload = reader.take_control();
      seen.push_back({e, payload});
      if (e == Event::error) return seen;
    }
  }
  return seen;
}

std::vector<Seen> read_fresh(std::string_view bytes, std::size_t step = 0, std::size_t max = max_bytes) {
  WebSocketFrameReader reader;
  return read_all(reader, bytes, step, max);
}

std::uint16_t error_of(std::string_view bytes, std::size_t step = 0, std::size_t max = max_bytes) {
  WebSocketFrameReader reader;
  auto seen = read_all(reader, bytes, step, max);
  REQUIRE(!seen.empty());
  CHECK(seen.back().event == Event::error);
  CHECK(reader.failed());
  CHECK(reader.error_reason() != nullptr);
  CHECK(reader.heap_bytes() == 0);
  return reader.error_code();
}

}  // namespace

TEST_CASE("whole frames of each length encoding, at once and byte by byte") {
  for (std::size_t size : {std::size_t{0}, std::size_t{1}, std::size_t{125}, std::size_t{126}, std::size_t{1000},
                           std::size_t{0xFFFF}, std::size_t{0x10000}}) {
    std::string payload(size, 'a');
    for (std::size_t i = 0; i < size; ++i) payload[i] = static_cast<char>('a' + i % 26);
    const std::string frame = client_frame(0x1, payload);
    for (std::size_t step : {std::size_t{0}, std::size_t{1}, std::size_t{3}, std::size_t{7}}) {
      if (size > 2000 && step != 0 && step != 7) continue;  // byte by byte of 64 KiB is slow and adds nothing
      auto seen = read_fresh(frame, step, 0x10000);
      REQUIRE(seen.size() == 1);
      CHECK(seen[0].event == Event::text);
      CHECK(seen[0].payload == payload);
    }
  }
}

TEST_CASE("binary messages and several frames in one read") {
  const std::string bytes = client_frame(0x2, std::string("\x00\xff\x80", 3)) + client_frame(0x1, "one") +
                            client_frame(0x9, "p") + client_frame(0xA, "q");
  auto seen = read_fresh(bytes);
  REQUIRE(seen.size() == 4);
  CHECK(seen[0].event == Event::binary);
  CHECK(seen[0].payload == std::string("\x00\xff\x80", 3));
  CHECK(seen[1].event == Event::text);
  CHECK(seen[1].payload == "one");
  CHECK(seen[2].event == Event::ping);
  CHECK(seen[2].payload == "p");
  CHECK(seen[3].event == Event::pong);
  CHECK(seen[3].payload == "q");
}

TEST_CASE("fragmented messages, with control frames between the fragments, fed byte by byte") {
  const std::string bytes = client_frame(0x1, "hel", false) + client_frame(0x9, "ping") +
                            client_frame(0x0, "lo ", false) + client_frame(0x0, "world");
  for (std::size_t step : {std::size_t{0}, std::size_t{1}, std::size_t{2}, std::size_t{5}}) {
    WebSocketFrameReader reader;
    auto seen = read_all(reader, bytes, step);
    REQUIRE(seen.size() == 2);
    CHECK(seen[0].event == Event::ping);
    CHECK(seen[0].payload == "ping");
    CHECK(seen[1].event == Event::text);
    CHECK(seen[1].payload == "hello world");
    CHECK(!reader.inside_message());
  }
}

TEST_CASE("an idle reader holds no heap memory: messages and control payloads are handed over") {
  WebSocketFrameReader reader;
  CHECK(reader.heap_bytes() == 0);
  auto seen = read_all(reader, client_frame(0x1, std::string(500, 'x')) + client_frame(0x9, std::string(100, 'y')));
  REQUIRE(seen.size() == 2);
  CHECK(reader.heap_bytes() == 0);
  // A partial frame holds its bytes until it completes.
  const std::string frame = client_frame(0x1, std::string(500, 'z'));
  std::string_view half = std::string_view(frame).substr(0, 300);
  CHECK(reader.read(half, max_bytes) == Event::none);
  CHECK(reader.heap_bytes() > 0);
}

TEST_CASE("frames from a client must be masked") {
  CHECK(error_of(client_frame(0x1, "hi", true, false)) == 1002);
  CHECK(error_of(client_frame(0x9, "", true, false), 1) == 1002);
}

TEST_CASE("RSV bits, reserved opcodes and non-minimal lengths are protocol errors") {
  CHECK(error_of(client_frame(0x1, "hi", true, true, 0x40)) == 1002);
  CHECK(error_of(client_frame(0x1, "hi", true, true, 0x20)) == 1002);
  CHECK(error_of(client_frame(0x1, "hi", true, true, 0x10)) == 1002);
  for (std::uint8_t op : {3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF}) CHECK(error_of(client_frame(op, "x")) == 1002);
  // 5 bytes announced with the 16-bit and the 64-bit encoding.
  CHECK(error_of(std::string("\x81\xfe\x00\x05", 4) + "abcd" + "vwxyz") == 1002);
  CHECK(error_of(std::string("\x81\xff\x00\x00\x00\x00\x00\x00\x00\x05", 10) + "abcd" + "vwxyz") == 1002);
  // A 64-bit length with its top bit set.
  CHECK(error_of(std::string("\x82\xff\x80\x00\x00\x00\x00\x00\x00\x00", 10) + "abcd", 1) == 1002);
}

TEST_CASE("control frames: at most 125 bytes, never fragmented") {
  CHECK(read_fresh(client_frame(0x9, std::string(125, 'p'))).at(0).event == Event::ping);
  CHECK(error_of(client_frame(0x9, std::string(126, 'p'))) == 1002);
  CHECK(error_of(client_frame(0xA, "x", false)) == 1002);
  CHECK(error_of(client_frame(0x8, "", false)) == 1002);
}

TEST_CASE("continuation rules") {
  // A continuation with no message open.
  CHECK(error_of(client_frame(0x0, "x")) == 1002);
  // A new message while a fragmented one is open.
  CHECK(error_of(client_frame(0x1, "a", false) + client_frame(0x1, "b")) == 1002);
  CHECK(error_of(client_frame(0x2, "a", false) + client_frame(0x1, "b"), 1) == 1002);
  // After a whole message, a continuation is out of place again.
  CHECK(error_of(client_frame(0x1, "a", false) + client_frame(0x0, "b") + client_frame(0x0, "c")) == 1002);
}

TEST_CASE("messages over the limit fail with 1009 at the header, fragmented or not") {
  CHECK(read_fresh(client_frame(0x1, std::string(max_bytes, 'x'))).at(0).payload.size() == max_bytes);
  CHECK(error_of(client_frame(0x1, std::string(max_bytes + 1, 'x'))) == 1009);
  CHECK(error_of(client_frame(0x2, std::string(max_bytes + 1, 'x')), 1) == 1009);
  // Fragments adding up past the limit.
  CHECK(error_of(client_frame(0x1, std::string(600, 'x'), false) + client_frame(0x0, std::string(600, 'y'))) ==
        1009);
  // A header announcing far more than will ever come: refused before any payload.
  CHECK(error_of(std::string("\x82\xff\x00\x00\x00\x01\x00\x00\x00\x00", 10) + "abcd") == 1009);
}

TEST_CASE("text must be UTF-8: invalid bytes, split characters across fragments, a message ending inside one") {
  CHECK(error_of(client_frame(0x1, "ok\xc3\x28")) == 1007);
  CHECK(error_of(client_frame(0x1, "\xed\xa0\x80")) == 1007);  // a surrogate
  CHECK(error_of(client_frame(0x1, "\xf8\x88\x80\x80\x80")) == 1007);
  // "€" (e2 82 ac) split across fragments is valid...
  const std::string split = client_frame(0x1, "x\xe2", false) + client_frame(0x0, "\x82", false) +
                            client_frame(0x0, "\xac!");
  for (std::size_t step : {std::size_t{0}, std::size_t{1}}) {
    auto seen = read_fresh(split, step);
    REQUIRE(seen.size() == 1);
    CHECK(seen[0].payload == "x\xe2\x82\xac!");
  }
  // ...a message that ends inside it is not, nor a bad continuation byte
  // in the next fragment.
  CHECK(error_of(client_frame(0x1, "x\xe2", false) + client_frame(0x0, "\x82")) == 1007);
  CHECK(error_of(client_frame(0x1, "x\xe2", false) + client_frame(0x0, "\x28"), 1) == 1007);
  CHECK(error_of(client_frame(0x1, "\xe2\x82")) == 1007);
  // Binary messages are not checked.
  CHECK(read_fresh(client_frame(0x2, "\xc3\x28")).at(0).event == Event::binary);
}

TEST_CASE("close frames: empty, code only, code and reason; invalid ones fail") {
  auto empty = read_fresh(client_frame(0x8, ""));
  REQUIRE(empty.size() == 1);
  CHECK(empty[0].event == Event::close);
  CHECK(WebSocketFrameReader::close_code(empty[0].payload) == 1005);
  auto normal = read_fresh(client_frame(0x8, std::string("\x03\xe8", 2)));
  CHECK(WebSocketFrameReader::close_code(normal.at(0).payload) == 1000);
  auto with_reason = read_fresh(client_frame(0x8, std::string("\x0f\xa1", 2) + "bye \xe2\x82\xac"), 1);
  CHECK(with_reason.at(0).event == Event::close);
  CHECK(WebSocketFrameReader::close_code(with_reason.at(0).payload) == 4001);
  CHECK(with_reason.at(0).payload.substr(2) == "bye \xe2\x82\xac");

  CHECK(error_of(client_frame(0x8, std::string("\x03", 1))) == 1002);  // one byte
  for (std::uint16_t code : {0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535}) {
    std::string payload;
    payload += static_cast<char>(code >> 8);
    payload += static_cast<char>(code & 0xFF);
    CHECK_MESSAGE(error_of(client_frame(0x8, payload)) == 1002, code);
  }
  for (std::uint16_t code : {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 4999}) {
    std::string payload;
    payload += static_cast<char>(code >> 8);
    payload += static_cast<char>(code & 0xFF);
    CHECK_MESSAGE(read_fresh(client_frame(0x8, payload)).at(0).event == Event::close, code);
  }
  CHECK(error_of(client_frame(0x8, std::string("\x03\xe8", 2) + "\xc3\x28")) == 1007);
  CHECK(error_of(client_frame(0x8, std::string("\x03\xe8", 2) + "\xe2\x82")) == 1007);
}

TEST_CASE("after an error nothing more is read") {
  WebSocketFrameReader reader;
  std::string_view bad_then_good = "\x81\x02hi";  // unmasked
  CHECK(reader.read(bad_then_good, max_bytes) == Event::error);
  std::string good = client_frame(0x1, "fine");
  std::string_view rest = good;
  CHECK(reader.read(rest, max_bytes) == Event::error);
  CHECK(rest.empty());
  CHECK(reader.error_code() == 1002);
}
