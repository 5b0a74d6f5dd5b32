// Fuzzes the WebSocket path after the handshake: a websocketpp server
// connection configured exactly as the transport's (websocket_config.hpp),
// fed over its iostream transport a fixed valid handshake, then the input:
// frames, fragments, control frames, close handshakes, garbage. Text messages
// go on to livecast.v1's decoder as the shard hands them to the broker.
//
// Input layout (FuzzedDataProvider takes the parameters from the end):
//   <bytes> <chunk sizes> <chunk count> <mode>
// mode bit 0: the handshake offers the livecast.v1 subprotocol; bit 1: the
// server starts a close after the first chunk; bit 2: the stream ends with
// end-of-file (otherwise the connection is aborted as the shard aborts one);
// bit 3: the handshake is the input's too, first, up to "\ " (the layout then
// is <handshake>\ <bytes> <chunk sizes> <chunk count> <mode>), read by
// livecast's HTTP parser and handed to websocketpp as format_request_head
// writes it, as HandshakeAdmission::read_request_head does.
//
// Properties: nothing throws out of websocketpp; the handshake is answered
// with 101; every message is no larger than max_message_bytes and, when text
// and not refused by the shard's own check, valid UTF-8 (the broker relies on
// it); messages hold no
// more bytes than were received; what the server writes back (pongs, close
// frames) is bounded by what it received; the connection always ends and
// nothing leaks (LeakSanitizer). With a fuzzed handshake: websocketpp reads
// the request livecast's parser read (method, target, every field), never
// another one.
#include "fuzz_check.hpp"

#include "transport/http_request_parser.hpp"
#include "transport/websocket_config.hpp"
#include "transport/websocket_frames.hpp"

#include <livecast/json.hpp>
#include <livecast/protocol.hpp>

#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

using namespace livecast;
using namespace livecast::detail::ws;
using livecast::detail::ends_inside_utf8_character;
using livecast::detail::format_request_head;
using livecast::detail::HttpRequestParser;
using livecast::detail::ParsedHttpRequest;

namespace {

constexpr std::size_t max_message_bytes = 64 * 1024;  // SessionSettings' default

const Protocol& v1() {
  static const std::shared_ptr<const Protocol> protocol = make_livecast_v1_protocol();
  return *protocol;
}

struct Observed {
  const ParsedHttpRequest* request = nullptr;  // livecast's reading of a fuzzed handshake
  bool handshake_seen = false;                 // websocketpp reached a handler with it
  bool opened = false;
  bool terminated = false;
  std::size_t message_bytes = 0;
  std::string written;
};

// websocketpp read the request as livecast's parser did.
void check_same_request(Connection& con, Observed& seen) {
  seen.handshake_seen = true;
  if (!seen.request) return;
  FUZZ_CHECK(con.get_request().get_method() == seen.request->method);
  FUZZ_CHECK(con.get_request().get_uri() == seen.request->target);
  for (const auto& [name, value] : seen.request->headers) FUZZ_CHECK(con.get_request_header(name) == value);
}

void install_handlers(Connection& con, Observed& seen) {
  Connection* c = &con;
  con.set_http_handler([c, &seen](websocketpp::connection_hdl) {
    check_same_request(*c, seen);
    c->set_status(websocketpp::http::status_code::not_found);
  });
  con.set_validate_handler([c, &seen](websocketpp::connection_hdl) {
    check_same_request(*c, seen);
    // As HandshakeAdmission::validate does for a client offering our protocol.
    for (const std::string& offered : c->get_requested_subprotocols()) {
      if (offered == "livecast.v1") {
        std::error_code ignored;
        c->select_subprotocol(offered, ignored);
        break;
      }
    }
    return true;
  });
  con.set_open_handler([&seen](websocketpp::connection_hdl) { seen.opened = true; });
  con.set_message_handler([&seen](websocketpp::connection_hdl, MessagePtr msg) {
    const std::string& payload = msg->get_payload();
    FUZZ_CHECK(payload.size() <= max_message_bytes);
    seen.message_bytes += payload.size();
    if (msg->get_opcode() != websocketpp::frame::opcode::text) return;
    // What websocketpp lets through and WebSocketFrameReader refuses with 1007.
    if (ends_inside_utf8_character(payload)) return;
    FUZZ_CHECK(is_valid_utf8(payload));
    (void)v1().decode(payload);
  });
  con.set_ping_handler([](websocketpp::connection_hdl, std::string) { return true; });
  con.set_pong_handler([](websocketpp::connection_hdl, std::string) {});
  con.set_termination_handler([&seen](ConnectionPtr) { seen.terminated = true; });
  con.set_vector_write_handler(
      [&seen](websocketpp::connection_hdl, const std::vector<websocketpp::transport::buffer>& bufs) {
        for (const auto& b : bufs) seen.written.append(b.buf, b.len);
        return std::error_code();
      });
  con.set_write_handler([&seen](websocketpp::connection_hdl, const char* data, std::size_t size) {
    seen.written.append(data, size);
    return std::error_code();
  });
  con.set_shutdown_handler([](websocketpp::connection_hdl) { return std::error_code(); });
}

void run(FuzzedDataProvider& provider) {
  const std::uint8_t mode = provider.ConsumeIntegral<std::uint8_t>();
  std::vector<std::size_t> chunk_sizes(provider.ConsumeIntegralInRange<std::size_t>(0, 16));
  for (std::size_t& s : chunk_sizes) s = provider.ConsumeIntegralInRange<std::size_t>(1, 256);
  const std::string fuzzed_handshake = (mode & 8) ? provider.ConsumeRandomLengthString(4096) : std::string();
  const std::string input = provider.ConsumeRemainingBytesAsString();

  Server endpoint;
  endpoint.set_max_message_size(max_message_bytes);
  endpoint.set_max_http_body_size(64 * 1024);
  Observed seen;
  {
    ConnectionPtr con = endpoint.get_connection();
    FUZZ_CHECK(con != nullptr);
    install_handlers(*con, seen);
    con->start();

    HttpRequestParser head_parser;
    if (mode & 8) {
      // What the shard does with a handshake's first bytes (read_request_head).
      head_parser.feed(fuzzed_handshake);
      if (!head_parser.complete() || head_parser.request().header("host").empty()) {
        con->fatal_error();  // refused, or never complete: the shard ends it
        if (!seen.terminated) con->terminate(std::error_code());
        FUZZ_CHECK(seen.terminated);
        return;
      }
      seen.request = &head_parser.request();
      const std::string forward = format_request_head(head_parser.request()) + head_parser.request().body;
      con->read_all(forward.data(), forward.size());
    } else {
      std::string handshake =
          "GET /ws HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";
      if (mode & 1) handshake += "Sec-WebSocket-Protocol: livecast.v1\r\n";
      handshake += "\r\n";
      con->read_all(handshake.data(), handshake.size());
      FUZZ_CHECK(seen.opened);
    }
    if (seen.opened) FUZZ_CHECK(seen.written.compare(0, 12, "HTTP/1.1 101") == 0);
    const std::size_t handshake_answer = seen.written.size();

    std::string_view rest = input;
    bool first = true;
    for (std::size_t s : chunk_sizes) {
      if (rest.empty() || seen.terminated) break;
      const std::string_view piece = rest.substr(0, s);
      rest.remove_prefix(piece.size());
      con->read_all(piece.data(), piece.size());
      if (first && (mode & 2) && !seen.terminated) {
        std::error_code ignored;
        con->close(websocketpp::close::status::going_away, "shutting down", ignored);
      }
      first = false;
    }
    if (!rest.empty() && !seen.terminated) con->read_all(rest.data(), rest.size());

    // The connection ends either way: end of stream, or the shard's abort.
    if (mode & 4) {
      con->eof();
    } else {
      con->fatal_error();
    }
    if (!seen.terminated) con->terminate(std::error_code());
    FUZZ_CHECK(seen.terminated);

    FUZZ_CHECK(seen.message_bytes <= input.size());
    // Pongs echo at most the pings' payloads; one close frame of at most 125 bytes.
    FUZZ_CHECK(seen.written.size() - handshake_answer <= 2 * input.size() + 256);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
  FuzzedDataProvider provider(bytes, size);
  try {
    run(provider);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "exception escaped websocketpp: %s\n", e.what());
    std::abort();
  } catch (...) {
    std::fprintf(stderr, "exception escaped websocketpp\n");
    std::abort();
  }
  return 0;
}
