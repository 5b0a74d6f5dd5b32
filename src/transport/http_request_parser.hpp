// HTTP/1.1 requests as a sans-I/O state machine (bytes in, a request or a
// refusal out), plus the decoding of what a request carries for livecast: the
// query string, cookies, and the stream cursor of the SSE and long-polling
// transports. No socket here, so every edge case is testable byte by byte.
#pragma once

#include <livecast/config.hpp>
#include <livecast/publication.hpp>

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

LIVECAST_BEGIN_NAMESPACE
namespace detail {

struct HttpRequestLimits {
  std::size_t max_request_line_bytes = 8 * 1024;  // beyond: 414
  std::size_t max_header_bytes = 16 * 1024;       // all header lines together; beyond: 431
  std::size_t max_header_fields = 100;            // beyond: 431
  std::size_t max_body_bytes = 64 * 1024;         // Content-Length beyond: 413
};

struct ParsedHttpRequest {
  std::string method;
  std::string target;  // as sent: path and query string
  int version_minor = 1;  // HTTP/1.<minor>
  // Names lower-cased; repeated fields are joined with ", " (RFC 9110 5.3),
  // empty ones left out.
  std::map<std::string, std::string> headers;
  std::string body;
  bool keep_alive = true;

  const std::string& header(const std::string& lower_case_name) const;
};

class HttpRequestParser {
 public:
  enum class State { request_line, headers, body, complete, failed };

  explicit HttpRequestParser(HttpRequestLimits limits = {}) : limits_(limits) {}

  // Consumes bytes up to the end of one request and returns how many it
  // took; the rest belongs to the next request (pipelining). Stops taking
  // bytes once complete or failed.
  std::size_t feed(std::string_view bytes);

  State state() const noexcept { return state_; }
  bool complete() const noexcept { return state_ == State::complete; }
  bool failed() const noexcept { return state_ == State::failed; }
  // True once any byte of a request arrived (a request is "in progress").
  bool started() const noexcept { return started_; }
  // When failed: the status to answer with (400, 413, 414, 431, 501, 505) and why.
  int error_status() const noexcept { return error_status_; }
  const std::string& error_reason() const noexcept { return error_reason_; }

  ParsedHttpRequest& request() noexcept { return request_; }
  const ParsedHttpRequest& request() const noexcept { return request_; }
  // Ready for the next request on the same connection.
  void reset();

 private:
  bool fail(int status, std::string reason);
  bool take_request_line_byte(char c);
  bool take_request_line(std::string_view line);
  bool take_header_line(std::string_view line);
  bool end_of_head();

  HttpRequestLimits limits_;
  State state_ = State::request_line;
  ParsedHttpRequest request_;
  std::string line_;  // the line being received, without its end
  std::size_t header_bytes_ = 0;
  std::size_t header_fields_ = 0;
  std::size_t body_remaining_ = 0;
  bool started_ = false;
  bool saw_cr_ = false;
  std::size_t request_line_spaces_ = 0;  // seen so far in the request line
  std::size_t request_line_part_ = 0;    // where its current part (method, target, version) starts
  int error_status_ = 0;
  std::string error_reason_;
};

// A token (RFC 9110 5.6.2): what a method or a header field's name is made of.
bool is_http_token(std::string_view s) noexcept;
// A field value with no control character but tab: in particular no CR or
// LF, which would end the field (in a response: split it, header injection).
bool is_http_field_value(std::string_view s) noexcept;

// The request's head as this parser understood it: request line, fields
// (names lower-cased, repeated ones joined) and the blank line, CRLF ends.
// Where a request goes on to another parser (websocketpp), this is what it
// reads, so that the two cannot read one request two ways.
std::string format_request_head(const ParsedHttpRequest& request);

// %XX decoding; '+' is a space in query strings (form encoding), not in
// cookies. Malformed escapes are kept as they are.
std::string percent_decode(std::string_view text, bool plus_is_space);
// encodeURIComponent's rules: everything but A-Z a-z 0-9 - _ . ! ~ * ' ( ) is escaped.
std::string percent_encode(std::string_view text);

// `a=1&b=2` into decoded pairs (the first of a name wins).
void parse_query(std::string_view query, std::map<std::string, std::string>& out);
// The value of `name` in a query string, not decoded (nullopt: absent).
std::optional<std::string_view> raw_query_parameter(std::string_view query, std::string_view name);
// `a=1; b="2"` into decoded pairs (the first of a name wins).
void parse_cookies(std::string_view header, std::map<std::string, std::string>& out);

// The positions of several topics, written `<topic>:<epoch>:<offset>` joined
// by `,`, topic and epoch percent-encoded. Order is kept.
using StreamCursor = std::vector<std::pair<std::string, StreamPosition>>;
std::optional<StreamCursor> parse_cursor(std::string_view text);
std::string format_cursor(const StreamCursor& cursor);

// Recent history asked for several topics (RecentHistory), written
// `<topic>:<count>:<seconds>` joined by `,`, the topic percent-encoded as in
// a cursor. Order is kept; a topic named twice is an error (nullopt).
using RecentRequests = std::vector<std::pair<std::string, RecentHistory>>;
std::optional<RecentRequests> parse_recent(std::string_view text);

// The `topics` parameter as sent (not yet decoded): percent-encoded topics
// joined by raw `,`. Empty items are an error (nullopt), as is an empty list.
std::optional<std::vector<std::string>> parse_topic_list(std::string_view raw_parameter);

}  // namespace detail
LIVECAST_END_NAMESPACE
