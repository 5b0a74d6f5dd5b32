// A connection's byte stream, for both transports: a TCP socket, or TLS over
// one (Asio's ssl::stream on OpenSSL). Each operation branches once on which
// it holds, never per byte, and plain TCP keeps what it had: the same socket
// calls, gathered writes, and the WebSocket transport's readiness-then-read
// into a shard-wide buffer.
//
// TLS differs where it must:
// - Its state (the SSL object and Asio's record buffers) lives in a
//   shared_ptr that every pending operation holds, so that the stream can be
//   handed to another owner (HTTP -> WebSocket on one port) or dropped while
//   an operation is still completing: Asio's SSL operations touch the stream
//   after the socket's part completes.
// - try_write_some() never writes (an SSL stream cannot take a partial
//   non-blocking write without losing bytes): it says would_block, so
//   callers take their asynchronous path.
// - A gathered write is joined into one buffer first: Asio's SSL stream
//   writes one buffer per record, which for many small frames would mean a
//   record and a send per buffer.
// - Reads go through async_read_some (the engine decides when bytes are
//   data), into read_buffer() for callers that have none of their own.
//
// Threads: like a socket, one thread at a time (the connection's shard).
#pragma once

#include <livecast/config.hpp>

#include <asio/buffer.hpp>
#include <asio/error.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/ssl/context.hpp>
#include <asio/ssl/stream.hpp>
#include <asio/write.hpp>

#include <cerrno>
#include <cstddef>
#include <memory>
#include <string>
#include <system_error>
#include <utility>
#include <variant>
#include <vector>

#include <sys/socket.h>
#include <sys/uio.h>

LIVECAST_BEGIN_NAMESPACE
namespace detail {

class ByteStream {
 public:
  using tcp = asio::ip::tcp;

  // Plain TCP.
  explicit ByteStream(tcp::socket socket) : stream_(std::move(socket)) {}
  // TLS, server side, over a connected socket; the handshake is still to
  // come (async_handshake). `context` stays alive while the stream does, so
  // that a certificate reload never pulls it from under an open connection.
  ByteStream(tcp::socket socket, std::shared_ptr<asio::ssl::context> context)
      : stream_(std::make_shared<Tls>(std::move(socket), std::move(context))) {}

  ByteStream(ByteStream&&) noexcept = default;
  ByteStream& operator=(ByteStream&&) noexcept = default;

  bool is_tls() const noexcept { return stream_.index() == 1; }
  // TLS whose handshake has not completed yet.
  bool handshake_pending() const noexcept { return is_tls() && !tls().handshake_done; }

  // The TCP socket underneath: options, endpoints, readiness.
  tcp::socket& socket() noexcept {
    if (auto* plain = std::get_if<tcp::socket>(&stream_)) return *plain;
    return tls().stream.next_layer();
  }
  const tcp::socket& socket() const noexcept {
    if (auto* plain = std::get_if<tcp::socket>(&stream_)) return *plain;
    return tls().stream.next_layer();
  }
  bool is_open() const noexcept { return socket().is_open(); }
  tcp::endpoint remote_endpoint(std::error_code& ec) const { return socket().remote_endpoint(ec); }
  // Closes the socket now; pending operations complete with operation_aborted.
  void close(std::error_code& ec) { socket().close(ec); }

  // TLS: the server's handshake; handler(error_code). Plain: not called.
  template <class Handler>
  void async_handshake(Handler&& handler) {
    auto state = std::get<1>(stream_);
    state->stream.async_handshake(asio::ssl::stream_base::server,
                                  [state, h = std::forward<Handler>(handler)](const std::error_code& ec) mutable {
                                    if (!ec) state->handshake_done = true;
                                    h(ec);
                                  });
  }

  // handler(error_code, bytes read).
  template <class MutableBuffer, class Handler>
  void async_read_some(const MutableBuffer& buffer, Handler&& handler) {
    if (auto* plain = std::get_if<tcp::socket>(&stream_)) {
      plain->async_read_some(buffer, std::forward<Handler>(handler));
      return;
    }
    auto state = std::get<1>(stream_);
    state->stream.async_read_some(buffer, [state, h = std::forward<Handler>(handler)](
                                              const std::error_code& ec, std::size_t n) mutable { h(ec, n); });
  }
  // TLS only: a buffer of the stream's own for async_read_some.
  std::vector<char>& read_buffer() { return tls().read_buffer; }

  // A non-blocking read of what the socket holds (plain only; the socket
  // must be in non-blocking mode).
  template <class MutableBuffer>
  std::size_t read_some(const MutableBuffer& buffer, std::error_code& ec) {
    return std::get<tcp::socket>(stream_).read_some(buffer, ec);
  }

  // Writes what the kernel takes at once without waiting (plain, socket in
  // non-blocking mode). TLS: nothing, and would_block.
  template <class ConstBuffers>
  std::size_t try_write_some(const ConstBuffers& buffers, std::error_code& ec) {
    auto* plain = std::get_if<tcp::socket>(&stream_);
    if (!plain) {
      ec = asio::error::would_block;
      return 0;
    }
    // One sendmsg of up to IOV_MAX buffers. Asio's write_some passes at most
    // 64, which for a backlog of small frames (a header and a payload each)
    // meant a system call per 32 frames: past saturation the calls, not the
    // bytes, were what the shard spent its time on.
    thread_local std::vector<iovec> iov;
    iov.clear();
    for (auto it = asio::buffer_sequence_begin(buffers); it != asio::buffer_sequence_end(buffers); ++it) {
      const asio::const_buffer b(*it);
      if (b.size() == 0) continue;
      iov.push_back(iovec{const_cast<void*>(b.data()), b.size()});
      if (iov.size() == max_write_buffers) break;
    }
    if (iov.empty()) {
      ec.clear();
      return 0;
    }
    msghdr message{};
    message.msg_iov = iov.data();
    message.msg_iovlen = iov.size();
    for (;;) {
      const ssize_t n = ::sendmsg(plain->native_handle(), &message, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n >= 0) {
        ec.clear();
        return static_cast<std::size_t>(n);
      }
      if (errno == EINTR) continue;
      ec = std::error_code(errno, asio::error::get_system_category());
      if (ec == std::errc::resource_unavailable_try_again || ec == std::errc::operation_would_block)
        ec = asio::error::would_block;
      return 0;
    }
  }
  // The most buffers one try_write_some passes to the kernel.
  static constexpr std::size_t max_write_buffers = 1024;

  // Writes all of `buffers`; handler(error_code, bytes). Plain: the buffers
  // must stay valid until the handler runs. TLS: they are copied first.
  template <class ConstBuffers, class Handler>
  void async_write(const ConstBuffers& buffers, Handler&& handler) {
    if (auto* plain = std::get_if<tcp::socket>(&stream_)) {
      asio::async_write(*plain, buffers, std::forward<Handler>(handler));
      return;
    }
    auto state = std::get<1>(stream_);
    state->write_buffer.clear();
    for (auto it = asio::buffer_sequence_begin(buffers); it != asio::buffer_sequence_end(buffers); ++it) {
      const asio::const_buffer b(*it);
      state->write_buffer.append(static_cast<const char*>(b.data()), b.size());
    }
    asio::async_write(state->stream, asio::buffer(state->write_buffer),
                      [state, h = std::forward<Handler>(handler)](const std::error_code& ec, std::size_t n) mutable {
                        if (state->write_buffer.capacity() > 64 * 1024) std::string().swap(state->write_buffer);
                        h(ec, n);
                      });
  }

  // No more bytes from us. Plain: the socket's send side is shut. TLS: a
  // close_notify goes out if the socket takes it at once (best effort: the
  // caller usually closes the socket next).
  void shutdown_send() {
    if (auto* plain = std::get_if<tcp::socket>(&stream_)) {
      std::error_code ignored;
      plain->shutdown(tcp::socket::shutdown_send, ignored);
      return;
    }
    auto state = std::get<1>(stream_);
    if (!state->handshake_done || state->shutdown_started) return;
    state->shutdown_started = true;
    state->stream.async_shutdown([state](const std::error_code&) {});
  }

  // TLS: close_notify, then wait for the client's (or its end of stream);
  // handler(error_code). For a lingering close: the caller bounds the wait.
  template <class Handler>
  void async_tls_shutdown(Handler&& handler) {
    auto state = std::get<1>(stream_);
    state->shutdown_started = true;
    state->stream.async_shutdown(
        [state, h = std::forward<Handler>(handler)](const std::error_code& ec) mutable { h(ec); });
  }

  // Takes the stream away, for another owner on the same thread: pending
  // operations of the old owner complete with operation_aborted, and bytes
  // that arrive afterwards are the new owner's. Plain: the descriptor moves
  // to a new socket object (release() cancels what was pending on the old).
  ByteStream take() {
    if (auto* plain = std::get_if<tcp::socket>(&stream_)) {
      tcp::socket socket(plain->get_executor());
      std::error_code ec;
      const auto protocol = plain->local_endpoint(ec).protocol();
      const int fd = plain->release(ec);
      if (!ec && fd >= 0) socket.assign(protocol, fd, ec);
      return ByteStream(std::move(socket));
    }
    std::error_code ignored;
    tcp::socket& socket = tls().stream.next_layer();
    socket.cancel(ignored);
    auto executor = socket.get_executor();
    ByteStream taken(std::move(*this));
    stream_.emplace<tcp::socket>(executor);  // what is left here is closed
    return taken;
  }

 private:
  struct Tls {
    Tls(tcp::socket socket, std::shared_ptr<asio::ssl::context> c)
        : context(std::move(c)), stream(std::move(socket), *context) {}
    std::shared_ptr<asio::ssl::context> context;
    asio::ssl::stream<tcp::socket> stream;
    std::string write_buffer;      // a gathered write, joined
    std::vector<char> read_buffer;  // see read_buffer()
    bool handshake_done = false;
    bool shutdown_started = false;
  };

  Tls& tls() const noexcept { return *std::get<1>(stream_); }

  std::variant<tcp::socket, std::shared_ptr<Tls>> stream_;
};

}  // namespace detail
LIVECAST_END_NAMESPACE
