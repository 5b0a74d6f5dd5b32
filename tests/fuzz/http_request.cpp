// Fuzzes the HTTP/1.1 request parser (sans-I/O) and the helpers that decode
// what a request carries: query strings, cookies, topic lists and cursors.
//
// Input layout (FuzzedDataProvider takes the parameters from the end, so a
// plain request followed by a few bytes is a good seed):
//   <byte stream: one or more pipelined requests> <chunk sizes> <chunk count> <mode>
// mode bit 0 selects small limits, so their refusals are reached with short
// inputs. The stream is parsed twice: whole, and in chunks whose sizes come
// from the input (the rest in one piece); both must see the same requests
// and the same refusal, whatever the split points.
//
// Other properties: feed() always makes progress; a refusal has one of the
// documented statuses and a reason; a parsed request respects every limit and
// holds no control character where the parser promises none; the cursor
// round-trips through format_cursor; percent_encode round-trips through
// percent_decode; a request's head as format_request_head writes it (what
// websocketpp reads on the WebSocket port) parses back to the same request.
#include "fuzz_check.hpp"

#include "transport/http_request_parser.hpp"

#include <fuzzer/FuzzedDataProvider.h>

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

using namespace livecast;
using namespace livecast::detail;

namespace {

// What a parser said about one request of the stream.
struct Outcome {
  HttpRequestParser::State state;
  int error_status = 0;
  ParsedHttpRequest request;

  bool operator==(const Outcome& o) const {
    return state == o.state && error_status == o.error_status && request.method == o.request.method &&
           request.target == o.request.target && request.version_minor == o.request.version_minor &&
           request.headers == o.request.headers && request.body == o.request.body &&
           request.keep_alive == o.request.keep_alive;
  }
};

// Feeds one piece; records each request it completes and the refusal that
// ends the stream. Returns false once the parser failed.
bool feed_piece(HttpRequestParser& parser, std::string_view piece, std::vector<Outcome>& out) {
  while (!piece.empty()) {
    const std::size_t used = parser.feed(piece);
    FUZZ_CHECK(used <= piece.size());
    piece.remove_prefix(used);
    if (parser.failed()) {
      out.push_back({parser.state(), parser.error_status(), parser.request()});
      return false;
    }
    if (parser.complete()) {
      out.push_back({parser.state(), 0, parser.request()});
      parser.reset();
      continue;
    }
    // Not complete and not failed: feed() must have taken everything.
    FUZZ_CHECK(piece.empty());
  }
  return true;
}

bool is_token_char(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_unreserved(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("-_.!~*'()").find(c) != std::string_view::npos;
}

void check_request(const ParsedHttpRequest& r, const HttpRequestLimits& limits) {
  FUZZ_CHECK(!r.method.empty());
  for (char c : r.method) FUZZ_CHECK(is_token_char(c));
  FUZZ_CHECK(!r.target.empty());
  FUZZ_CHECK(r.target.size() <= limits.max_request_line_bytes);
  for (char c : r.target) FUZZ_CHECK(static_cast<unsigned char>(c) > 0x20 && c != 0x7f);
  FUZZ_CHECK(r.version_minor >= 0 && r.version_minor <= 9);
  FUZZ_CHECK(r.headers.size() <= limits.max_header_fields);
  if (r.version_minor >= 1) FUZZ_CHECK(r.headers.count("host") == 1);
  FUZZ_CHECK(r.headers.count("transfer-encoding") == 0);
  for (const auto& [name, value] : r.headers) {
    FUZZ_CHECK(!name.empty());
    for (char c : name) FUZZ_CHECK(is_token_char(c) && !(c >= 'A' && c <= 'Z'));
    for (char c : value) FUZZ_CHECK(c != '\r' && c != '\n' && c != '\0');
    FUZZ_CHECK(is_http_token(name) && is_http_field_value(value));
  }
  FUZZ_CHECK(r.body.size() <= limits.max_body_bytes);
  if (!r.body.empty()) {
    const std::string& length = r.header("content-length");
    std::uint64_t n = 0;
    const auto parsed = std::from_chars(length.data(), length.data() + length.size(), n);
    FUZZ_CHECK(parsed.ec == std::errc() && n == r.body.size());
  }
}

// The helpers the HTTP transport runs on a request's target and headers.
void check_helpers(std::string_view text) {
  std::map<std::string, std::string> pairs;
  parse_query(text, pairs);
  parse_cookies(text, pairs);

  const std::string encoded = percent_encode(text);
  for (std::size_t i = 0; i < encoded.size(); ++i) {
    if (encoded[i] == '%') {
      FUZZ_CHECK(i + 2 < encoded.size());
      i += 2;
    } else {
      FUZZ_CHECK(is_unreserved(encoded[i]));
    }
  }
  FUZZ_CHECK(percent_decode(encoded, /*plus_is_space=*/true) == text);
  FUZZ_CHECK(percent_decode(encoded, /*plus_is_space=*/false) == text);
  FUZZ_CHECK(percent_decode(text, false).size() <= text.size());

  if (auto topics = parse_topic_list(text)) {
    FUZZ_CHECK(!topics->empty());
    for (const std::string& topic : *topics) FUZZ_CHECK(!topic.empty() && topic.size() <= text.size());
  }

  if (auto cursor = parse_cursor(text)) {
    for (std::size_t i = 0; i < cursor->size(); ++i) {
      FUZZ_CHECK(!(*cursor)[i].first.empty());
      FUZZ_CHECK((*cursor)[i].second.offset <= (std::uint64_t{1} << 53));
      for (std::size_t j = 0; j < i; ++j) FUZZ_CHECK((*cursor)[i].first != (*cursor)[j].first);
    }
    const std::string formatted = format_cursor(*cursor);
    auto again = parse_cursor(formatted);
    FUZZ_CHECK(again.has_value());
    FUZZ_CHECK(*again == *cursor);
    FUZZ_CHECK(format_cursor(*again) == formatted);
  }
}

// One parser reads every request: what goes on to websocketpp is this
// parser's reading written out again, which must read the same.
void check_formatted_head(const ParsedHttpRequest& r, const HttpRequestLimits& limits) {
  const std::string again = format_request_head(r) + r.body;
  HttpRequestParser parser(limits);
  const std::size_t used = parser.feed(again);
  // Joined repeated fields may make the head longer than a limit allows.
  if (parser.failed() && parser.error_status() == 431) return;
  FUZZ_CHECK(parser.complete());
  FUZZ_CHECK(used == again.size());
  const Outcome original{HttpRequestParser::State::complete, 0, r};
  const Outcome reread{parser.state(), 0, parser.request()};
  FUZZ_CHECK(original == reread);
}

void check_request_helpers(const ParsedHttpRequest& r) {
  const std::string_view target = r.target;
  const std::size_t question = target.find('?');
  const std::string_view query = question == std::string_view::npos ? std::string_view() : target.substr(question + 1);
  for (const char* name : {"topics", "cursor", "token", "protocol"}) {
    if (auto raw = raw_query_parameter(query, name)) {
      FUZZ_CHECK(raw->size() <= query.size());
      check_helpers(*raw);
      check_helpers(percent_decode(*raw, /*plus_is_space=*/true));
    }
  }
  check_helpers(query);
  check_helpers(r.header("cookie"));
  check_helpers(r.header("last-event-id"));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
  FuzzedDataProvider provider(bytes, size);
  const std::uint8_t mode = provider.ConsumeIntegral<std::uint8_t>();
  HttpRequestLimits limits;
  if (mode & 1) {
    limits.max_request_line_bytes = 64;
    limits.max_header_bytes = 128;
    limits.max_header_fields = 4;
    limits.max_body_bytes = 32;
  }
  std::vector<std::size_t> chunk_sizes(provider.ConsumeIntegralInRange<std::size_t>(0, 16));
  for (std::size_t& s : chunk_sizes) s = provider.ConsumeIntegralInRange<std::size_t>(1, 256);
  const std::string stream = provider.ConsumeRemainingBytesAsString();

  std::vector<Outcome> whole;
  HttpRequestParser whole_parser(limits);
  feed_piece(whole_parser, stream, whole);
  const bool whole_started = whole_parser.started();

  std::vector<Outcome> chunked;
  HttpRequestParser chunk_parser(limits);
  std::string_view rest = stream;
  bool going = true;
  for (std::size_t s : chunk_sizes) {
    if (!going || rest.empty()) break;
    const std::string_view piece = rest.substr(0, s);
    rest.remove_prefix(piece.size());
    going = feed_piece(chunk_parser, piece, chunked);
  }
  if (going) feed_piece(chunk_parser, rest, chunked);

  FUZZ_CHECK(whole == chunked);
  FUZZ_CHECK(whole_started == chunk_parser.started());
  FUZZ_CHECK(whole_parser.state() == chunk_parser.state());

  for (const Outcome& o : whole) {
    if (o.state == HttpRequestParser::State::failed) {
      const int s = o.error_status;
      FUZZ_CHECK(s == 400 || s == 413 || s == 414 || s == 431 || s == 501 || s == 505);
      FUZZ_CHECK(!whole_parser.error_reason().empty());
      FUZZ_CHECK(!o.request.keep_alive);
    } else {
      check_request(o.request, limits);
      check_formatted_head(o.request, limits);
      check_request_helpers(o.request);
    }
  }
  // Straight on the input too: the helpers' own edge cases need no request around them.
  check_helpers(stream);
  return 0;
}
