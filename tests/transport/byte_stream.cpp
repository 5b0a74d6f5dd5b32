// ByteStream's non-blocking gathered write over a real loopback socket: how
// many buffers one call hands the kernel, and what a full socket answers.
#include "byte_stream.hpp"

#include <doctest/doctest.h>

#include <asio/connect.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/read.hpp>

#include <string>
#include <vector>

using namespace livecast::detail;
using asio::ip::tcp;

namespace {

// `client` connects to `acceptor`; the server's end, non-blocking as the
// transports keep theirs.
tcp::socket accept_connected(tcp::acceptor& acceptor, tcp::socket& client) {
  client.connect(acceptor.local_endpoint());
  tcp::socket accepted = acceptor.accept();
  accepted.non_blocking(true);
  return accepted;
}

struct ConnectedPair {
  asio::io_context context;
  tcp::acceptor acceptor{context, tcp::endpoint(asio::ip::address_v4::loopback(), 0)};
  tcp::socket reader{context};
  ByteStream writer{accept_connected(acceptor, reader)};
};

}  // namespace

TEST_CASE("one try_write_some hands the kernel more than Asio's 64 buffers") {
  ConnectedPair pair;
  // 300 small frames' worth of buffers: Asio's write_some would take 64.
  std::vector<std::string> pieces;
  for (int i = 0; i < 300; ++i) pieces.push_back("piece " + std::to_string(i) + ";");
  std::vector<asio::const_buffer> buffers;
  std::string expected;
  for (const std::string& p : pieces) {
    buffers.emplace_back(p.data(), p.size());
    expected += p;
  }
  std::error_code ec;
  const std::size_t written = pair.writer.try_write_some(buffers, ec);
  REQUIRE_FALSE(ec);
  CHECK(written == expected.size());

  std::string received(expected.size(), '\0');
  asio::read(pair.reader, asio::buffer(received));
  CHECK(received == expected);
}

TEST_CASE("past ByteStream::max_write_buffers a call writes that many and the rest is left to the next") {
  ConnectedPair pair;
  const std::string byte = "x";
  std::vector<asio::const_buffer> buffers(ByteStream::max_write_buffers + 10, asio::const_buffer(byte.data(), 1));
  std::error_code ec;
  CHECK(pair.writer.try_write_some(buffers, ec) == ByteStream::max_write_buffers);
  CHECK_FALSE(ec);
}

TEST_CASE("a socket whose peer stops reading answers would_block, not an error, once full") {
  ConnectedPair pair;
  pair.writer.socket().set_option(asio::socket_base::send_buffer_size(4096));
  pair.reader.set_option(asio::socket_base::receive_buffer_size(4096));
  const std::string block(64 * 1024, 'y');
  std::vector<asio::const_buffer> buffers{asio::const_buffer(block.data(), block.size())};
  std::error_code ec;
  std::size_t total = 0;
  // Bounded: the kernel's buffers on both ends are a few hundred KiB at most.
  for (int i = 0; i < 1000 && !ec; ++i) total += pair.writer.try_write_some(buffers, ec);
  CHECK(ec == asio::error::would_block);
  CHECK(total > 0);
  // Nothing to write is no call and no error.
  std::vector<asio::const_buffer> none;
  CHECK(pair.writer.try_write_some(none, ec) == 0);
  CHECK_FALSE(ec);
}
