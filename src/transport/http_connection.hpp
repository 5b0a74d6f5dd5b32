// One HTTP/1.1 connection of the HTTP transport: reading requests through
// the sans-I/O HttpRequestParser (keep-alive, pipelining, 100-continue),
// writing answers in gathered writes, the time limits (a request's, a
// write's), and the lingering close. It knows no sessions and no protocol: each complete request goes to
// its RequestHandler (the transport's router), which answers at once
// (respond, refuse), starts an HttpExchange that writes over time (an SSE
// stream, a waiting poll, a POSTed message), or takes the stream away (a
// WebSocket upgrade on the same port). Over plain TCP or TLS (ByteStream):
// with TLS the handshake comes first, within the request time limit.
//
// Threads: everything runs on the thread of the shard that accepted it.
#pragma once

#include "address_counts.hpp"
#include "byte_stream.hpp"
#include "http_counters.hpp"
#include "http_request_parser.hpp"

#include <livecast/config.hpp>
#include <livecast/publication.hpp>

#include <asio/buffer.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

LIVECAST_BEGIN_NAMESPACE
namespace detail {

// The bytes of one write: copied text and parts of shared frames, gathered
// without joining them. Frames are held until the write completes.
class HttpOutput {
 public:
  void text(std::string_view s);
  // Keeps `frame` alive until clear(); returns its bytes for part().
  const std::string& hold(FramePtr frame);
  // `length` bytes of `source` from `offset`; `source` must outlive the write
  // (a held frame's bytes, or a string the writer keeps).
  void part(const std::string& source, std::size_t offset, std::size_t length);
  // A position to insert_text() at later (a chunk size, once the chunk is known).
  std::size_t mark() const noexcept { return pieces_.size(); }
  std::size_t bytes_since(std::size_t mark) const noexcept;
  void insert_text(std::size_t mark, std::string_view s);

  std::size_t size() const noexcept;
  bool empty() const noexcept { return size() == 0; }
  const std::vector<asio::const_buffer>& buffers();
  void clear();

 private:
  struct Piece {
    const std::string* source;  // null: scratch_
    std::size_t offset;
    std::size_t length;
  };
  std::string scratch_;
  std::vector<Piece> pieces_;
  std::vector<FramePtr> held_;
  std::vector<asio::const_buffer> buffers_;
};

// A request served over time, by a session. Owned by the connection while it
// serves it; end() is called exactly once before the connection lets go.
class HttpExchange {
 public:
  virtual ~HttpExchange() = default;
  // The connection may write: append what is ready. True when the response
  // is complete with what was appended (the connection then finishes it).
  virtual bool fill(HttpOutput& out) = 0;
  // What the last fill() appended reached the kernel.
  virtual void written() {}
  // The transport stops: finish promptly with what there is. Must report
  // the session closed before returning.
  virtual void shut_down() = 0;
  // The connection is done with it (response complete, client gone, error):
  // close the session if it is open, cancel timers; no fill() follows.
  virtual void end() = 0;
};

class HttpConnection : public std::enable_shared_from_this<HttpConnection> {
 public:
  class RequestHandler {
   public:
    virtual ~RequestHandler() = default;
    // A complete request (connection.request()): answer it, serve() an
    // exchange, or take_stream().
    virtual void on_request(HttpConnection& connection) = 0;
  };

  struct Limits {
    HttpRequestLimits request;
    std::chrono::milliseconds request_timeout;
    std::chrono::milliseconds write_timeout;  // 0: none
  };

  // `address`: its place under max_connections_per_address, given back
  // when the connection ends or hands its stream over.
  HttpConnection(ByteStream stream, std::shared_ptr<RequestHandler> handler, Limits limits, HttpCounters& counters,
                 AddressSlot address);
  ~HttpConnection();
  HttpConnection(const HttpConnection&) = delete;
  HttpConnection& operator=(const HttpConnection&) = delete;

  // Starts reading (TLS: after the handshake); with a `refusal` (over a
  // connection limit), answers 503, counts it there and closes instead.
  void start(std::atomic<std::uint64_t>* refusal);
  // The transport is stopping: the exchange finishes (its session reported
  // closed now), and only the last bytes go out afterwards.
  void shut_down();

  // --- for the request handler and exchanges ---
  const ParsedHttpRequest& request() const noexcept { return parser_.request(); }
  std::string remote_address() const;
  asio::io_context& context() noexcept { return context_; }
  // Headers every answer to the current request carries (CORS).
  void set_response_headers(std::string headers) { response_headers_ = std::move(headers); }
  const std::string& response_headers() const noexcept { return response_headers_; }
  // CORS headers plus the Connection header the keep-alive decision needs.
  std::string common_headers() const;
  // After this response the connection closes (streams end the connection).
  void no_keep_alive() noexcept { keep_alive_ = false; }

  // The status line and headers of an answer with a body of
  // `content_length` bytes (none for 204), ending with the blank line.
  std::string response_head(int status, std::string_view content_type, std::size_t content_length,
                            std::string_view extra_headers = {}) const;
  // A complete answer (the body is left out for HEAD and 204).
  void respond(int status, std::string_view content_type, std::string_view body, std::string_view extra_headers = {});
  // A refusal with a JSON body {"error":{"code","message"}}, counted.
  void refuse(int status, std::string_view code, std::string_view message, std::atomic<std::uint64_t>& counter,
              std::string_view extra_headers = {});
  // From now on `exchange` writes the response.
  void serve(std::shared_ptr<HttpExchange> exchange);
  // The exchange has something to write: write on a later turn.
  void write_ready();
  // Cuts the connection off after `after` unless the response ends first (a
  // client that stopped reading never lets the last bytes out).
  void limit_remaining_time(std::chrono::milliseconds after);
  // Takes the stream away (TLS session included) with the bytes of the
  // current request and any received after it (a WebSocket upgrade handed to
  // the WebSocket transport). The connection is finished afterwards.
  ByteStream take_stream(std::string& received);

  std::uint32_t slot = static_cast<std::uint32_t>(-1);  // the handler's index of it

 private:
  enum class State {
    reading,     // waiting for (the rest of) a request
    responding,  // writing a complete answer; then reading again or closing
    exchange,    // an exchange writes
    lingering,   // our side is shut; draining the client's bytes until it closes
    closed,
  };

  void start_tls_handshake();
  void read_more();
  void on_read(const std::error_code& ec, std::size_t n);
  void process_input();
  void send_continue();
  void enter_reading();
  void on_request_timeout();
  void flush();
  void on_written(const std::error_code& ec);
  void finish_response();
  void end_exchange();
  void linger();
  void terminate();
  void arm_deadline(std::chrono::milliseconds after, void (HttpConnection::*action)());
  void watch_write();
  void arm_write_deadline(std::chrono::steady_clock::duration after);

  asio::io_context& context_;
  ByteStream stream_;
  std::shared_ptr<RequestHandler> handler_;
  HttpCounters& counters_;
  AddressSlot address_;
  std::chrono::milliseconds request_timeout_;
  std::size_t max_pending_input_;
  asio::steady_timer deadline_;  // request time limit, close and linger deadlines
  std::uint64_t deadline_generation_ = 0;
  // write_timeout: when the write in flight started, and a timer that looks
  // at it (armed only while writes happen; see watch_write()).
  std::chrono::milliseconds write_timeout_;
  std::chrono::steady_clock::time_point write_started_{};
  asio::steady_timer write_deadline_;
  bool write_deadline_armed_ = false;
  HttpRequestParser parser_;
  std::array<char, 2048> read_buffer_{};
  std::string input_;  // received, not yet parsed
  State state_ = State::reading;
  bool reading_ = false;
  bool tls_handshake_pending_ = false;
  bool keep_alive_ = true;
  bool continue_sent_ = false;
  std::string response_headers_;
  std::shared_ptr<HttpExchange> exchange_;

  // Writing: one write in flight; what comes meanwhile waits for the next pass.
  HttpOutput out_;
  std::string response_;  // a complete answer, waiting for the write
  bool writing_ = false;
  bool flush_posted_ = false;
  bool finish_after_write_ = false;
};

}  // namespace detail
LIVECAST_END_NAMESPACE
