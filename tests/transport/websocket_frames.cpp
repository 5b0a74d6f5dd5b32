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
