#include "http_request_parser.hpp"

#include <charconv>
#include <cstring>
#include <algorithm>

LIVECAST_BEGIN_NAMESPACE
namespace detail {

namespace {

bool is_token_char(char c) noexcept {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return c != '\0' && std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
}

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

bool contains_token(std::string_view list, std::string_view token) {
  // Comma-separated, case-insensitive (Connection: keep-alive, Upgrade).
  while (!list.empty()) {
    std::size_t comma = list.find(',');
    std::string_view item = trim(list.substr(0, comma));
    if (lower(item) == token) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Strict decoding for cursor items: a malformed escape is an error.
std::optional<std::string> strict_percent_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out.push_back(s[i]);
      continue;
    }
    if (i + 2 >= s.size()) return std::nullopt;
    int hi = hex_value(s[i + 1]), lo = hex_value(s[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

void parse_pairs(std::string_view text, char separator, bool plus_is_space, bool strip_quotes,
                 std::map<std::string, std::string>& out) {
  while (!text.empty()) {
    std::size_t end = text.find(separator);
    std::string_view item = trim(text.substr(0, end));
    text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
    if (item.empty()) continue;
    std::size_t eq = item.find('=');
    std::string_view name = trim(item.substr(0, eq));
    std::string_view value = eq == std::string_view::npos ? std::string_view() : trim(item.substr(eq + 1));
    if (strip_quotes && value.size() >= 2 && value.front() == '"' && value.back() == '"')
      value = value.substr(1, value.size() - 2);
    out.emplace(percent_decode(name, plus_is_space), percent_decode(value, plus_is_space));
  }
}

}  // namespace

bool is_http_token(std::string_view s) noexcept {
  if (s.empty()) return false;
  for (char c : s)
    if (!is_token_char(c)) return false;
  return true;
}

bool is_http_field_value(std::string_view s) noexcept {
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\t') || u == 0x7f) return false;
  }
  return true;
}

std::string format_request_head(const ParsedHttpRequest& r) {
  std::string head = r.method + " " + r.target + " HTTP/1." + std::to_string(r.version_minor) + "\r\n";
  for (const auto& [name, value] : r.headers) head += name + ": " + value + "\r\n";
  head += "\r\n";
  return head;
}

const std::string& ParsedHttpRequest::header(const std::string& lower_case_name) const {
  static const std::string empty;
  auto it = headers.find(lower_case_name);
  return it == headers.end() ? empty : it->second;
}

void HttpRequestParser::reset() {
  state_ = State::request_line;
  request_ = ParsedHttpRequest{};
  line_.clear();
  header_bytes_ = 0;
  header_fields_ = 0;
  body_remaining_ = 0;
  started_ = false;
  saw_cr_ = false;
  request_line_spaces_ = 0;
  request_line_part_ = 0;
  error_status_ = 0;
  error_reason_.clear();
}

bool HttpRequestParser::fail(int status, std::string reason) {
  state_ = State::failed;
  error_status_ = status;
  error_reason_ = std::move(reason);
  request_.keep_alive = false;
  return false;
}

std::size_t HttpRequestParser::feed(std::string_view bytes) {
  std::size_t used = 0;
  while (used < bytes.size() && (state_ == State::request_line || state_ == State::headers)) {
    const char c = bytes[used++];
    if (state_ == State::request_line && line_.empty() && !saw_cr_ && !started_ && (c == '\r' || c == '\n')) {
      // Empty lines before a request are allowed (RFC 9112 2.2), and do not
      // start it: they often trail a previous request's body.
      continue;
    }
    started_ = true;
    if (saw_cr_) {
      if (c != '\n') return fail(400, "bare CR in the request head"), used;
      saw_cr_ = false;
    } else if (c == '\r') {
      saw_cr_ = true;
      continue;
    } else if (c == '\n') {
      // RFC 9112 lets a server take a bare LF as a line end; refusing it keeps
      // this server from reading a request differently from a proxy in front
      // of it that does not (request smuggling).
      return fail(400, "bare LF in the request head"), used;
    } else {
      const bool in_request_line = state_ == State::request_line;
      const std::size_t limit = in_request_line ? limits_.max_request_line_bytes : limits_.max_header_bytes;
      const std::size_t so_far = in_request_line ? line_.size() : header_bytes_ + line_.size();
      if (so_far + 1 > limit) {
        if (in_request_line) return fail(414, "request line too long"), used;
        return fail(431, "request header fields too large"), used;
      }
      if (in_request_line && !take_request_line_byte(c)) return used;
      line_.push_back(c);
      continue;
    }
    // A complete line (CRLF).
    std::string line;
    line.swap(line_);
    if (state_ == State::request_line) {
      if (!take_request_line(line)) return used;
    } else if (line.empty()) {
      if (!end_of_head()) return used;
    } else if (!take_header_line(line)) {
      return used;
    }
  }
  if (state_ == State::body) {
    const std::size_t n = std::min(body_remaining_, bytes.size() - used);
    request_.body.append(bytes.data() + used, n);
    used += n;
    body_remaining_ -= n;
    if (body_remaining_ == 0) state_ = State::complete;
  }
  return used;
}

// Garbage (a TLS ClientHello on a plain port, binary noise, a stray
// protocol) is refused at the first byte no request line can hold, not
// after a line end that may never come: method, target and version are
// checked as they arrive. take_request_line() checks the whole line again.
bool HttpRequestParser::take_request_line_byte(char c) {
  if (c == ' ') {
    if (line_.empty()) return fail(400, "malformed method");
    if (++request_line_spaces_ > 2) return fail(400, "malformed request line");
    request_line_part_ = line_.size() + 1;
    return true;
  }
  const auto u = static_cast<unsigned char>(c);
  switch (request_line_spaces_) {
    case 0:
      if (!is_token_char(c)) return fail(400, "malformed method");
      return true;
    case 1:
      if (u < 0x20 || u == 0x7f) return fail(400, "control character in the request target");
      return true;
    default: {
      // "HTTP/" DIGIT "." DIGIT; which digits are supported is decided at the line's end (505).
      static constexpr std::string_view shape = "HTTP/0.0";
      const std::size_t at = line_.size() - request_line_part_;
      const bool fits = at < shape.size() && (shape[at] == '0' ? (c >= '0' && c <= '9') : c == shape[at]);
      if (!fits) return fail(400, "malformed HTTP version");
      return true;
    }
  }
}

bool HttpRequestParser::take_request_line(std::string_view line) {
  const std::size_t first = line.find(' ');
  const std::size_t second = first == std::string_view::npos ? first : line.find(' ', first + 1);
  if (second == std::string_view::npos || line.find(' ', second + 1) != std::string_view::npos)
    return fail(400, "malformed request line");
  std::string_view method = line.substr(0, first);
  std::string_view target = line.substr(first + 1, second - first - 1);
  std::string_view version = line.substr(second + 1);
  if (!is_http_token(method)) return fail(400, "malformed method");
  if (target.empty()) return fail(400, "empty request target");
  for (char c : target) {
    auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f) return fail(400, "control character in the request target");
  }
  if (version.size() != 8 || version.compare(0, 5, "HTTP/") != 0 || version[6] != '.' || version[5] < '0' ||
      version[5] > '9' || version[7] < '0' || version[7] > '9')
    return fail(400, "malformed HTTP version");
  if (version[5] != '1') return fail(505, "HTTP version not supported");
  request_.method = std::string(method);
  request_.target = std::string(target);
  request_.version_minor = version[7] - '0';
  state_ = State::headers;
  return true;
}

bool HttpRequestParser::take_header_line(std::string_view line) {
  header_bytes_ += line.size() + 2;
  if (++header_fields_ > limits_.max_header_fields) return fail(431, "too many header fields");
  if (line.front() == ' ' || line.front() == '\t') return fail(400, "obsolete header line folding");
  const std::size_t colon = line.find(':');
  if (colon == std::string_view::npos) return fail(400, "header line without ':'");
  std::string_view name = line.substr(0, colon);
  if (!is_http_token(name)) return fail(400, "malformed header name");
  std::string_view value = trim(line.substr(colon + 1));
  if (!is_http_field_value(value)) return fail(400, "control character in a header value");
  std::string key = lower(name);
  auto [it, inserted] = request_.headers.try_emplace(std::move(key), value);
  if (!inserted) {
    if (it->first == "content-length") {
      if (it->second != value) return fail(400, "conflicting Content-Length fields");
    } else if (it->first == "host") {
      return fail(400, "more than one Host field");
    } else if (it->second.empty()) {
      it->second = value;
    } else if (!value.empty()) {
      // An empty line adds no item to a list (RFC 9110 5.6.1); joined, it
      // would leave ", " at an end, which a second reading (websocketpp's,
      // of format_request_head) trims: one request read two ways.
      it->second.append(", ").append(value);
    }
  }
  return true;
}

bool HttpRequestParser::end_of_head() {
  const std::string& connection = request_.header("connection");
  request_.keep_alive = request_.version_minor >= 1 ? !contains_token(connection, "close")
                                                    : contains_token(connection, "keep-alive");
  if (request_.version_minor >= 1 && request_.headers.count("host") == 0)
    return fail(400, "HTTP/1.1 request without Host");
  // Request bodies come with a Content-Length only: a chunked upload has no
  // use here, and refusing it closes the door to request smuggling.
  if (request_.headers.count("transfer-encoding")) return fail(501, "Transfer-Encoding in requests is not supported");
  std::uint64_t length = 0;
  if (auto it = request_.headers.find("content-length"); it != request_.headers.end()) {
    const std::string& text = it->second;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), length);
    if (text.empty() || ec != std::errc() || end != text.data() + text.size())
      return fail(400, "malformed Content-Length");
    if (length > limits_.max_body_bytes) return fail(413, "request body too large");
  }
  body_remaining_ = static_cast<std::size_t>(length);
  if (body_remaining_ == 0) {
    state_ = State::complete;
  } else {
    request_.body.reserve(body_remaining_);
    state_ = State::body;
  }
  return true;
}

std::string percent_decode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '%' && i + 2 < s.size()) {
      int hi = hex_value(s[i + 1]), lo = hex_value(s[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        continue;
      }
    }
    out.push_back(plus_is_space && c == '+' ? ' ' : c);
  }
  return out;
}

std::string percent_encode(std::string_view s) {
  static const char hex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    const bool unreserved = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                            (c != '\0' && std::strchr("-_.!~*'()", c) != nullptr);
    if (unreserved) {
      out.push_back(c);
    } else {
      auto u = static_cast<unsigned char>(c);
      out.push_back('%');
      out.push_back(hex[u >> 4]);
      out.push_back(hex[u & 15]);
    }
  }
  return out;
}

void parse_query(std::string_view query, std::map<std::string, std::string>& out) {
  parse_pairs(query, '&', /*plus_is_space=*/true, /*strip_quotes=*/false, out);
}

void parse_cookies(std::string_view header, std::map<std::string, std::string>& out) {
  parse_pairs(header, ';', /*plus_is_space=*/false, /*strip_quotes=*/true, out);
}

std::optional<std::string_view> raw_query_parameter(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    std::size_t end = query.find('&');
    std::string_view item = query.substr(0, end);
    query = end == std::string_view::npos ? std::string_view() : query.substr(end + 1);
    std::size_t eq = item.find('=');
    if (item.substr(0, eq) == name) return eq == std::string_view::npos ? std::string_view() : item.substr(eq + 1);
  }
  return std::nullopt;
}

std::optional<StreamCursor> parse_cursor(std::string_view text) {
  StreamCursor cursor;
  if (text.empty()) return cursor;
  while (true) {
    std::size_t comma = text.find(',');
    std::string_view item = text.substr(0, comma);
    std::size_t first = item.find(':');
    std::size_t second = first == std::string_view::npos ? first : item.find(':', first + 1);
    if (second == std::string_view::npos || item.find(':', second + 1) != std::string_view::npos) return std::nullopt;
    auto topic = strict_percent_decode(item.substr(0, first));
    auto epoch = strict_percent_decode(item.substr(first + 1, second - first - 1));
    std::string_view digits = item.substr(second + 1);
    std::uint64_t offset = 0;
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), offset);
    if (!topic || topic->empty() || !epoch || digits.empty() || ec != std::errc() ||
        end != digits.data() + digits.size())
      return std::nullopt;
    // JSON numbers past 2^53 lose precision in a browser; no real offset gets there.
    if (offset > (std::uint64_t{1} << 53)) return std::nullopt;
    for (auto& [known, position] : cursor)
      if (known == *topic) return std::nullopt;
    cursor.emplace_back(std::move(*topic), StreamPosition{std::move(*epoch), offset});
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return cursor;
}

namespace {

// A whole decimal number no larger than `most`.
std::optional<std::uint64_t> bounded_number(std::string_view digits, std::uint64_t most) {
  std::uint64_t n = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
  if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size() || n > most) return std::nullopt;
  return n;
}

}  // namespace

std::optional<RecentRequests> parse_recent(std::string_view text) {
  RecentRequests recent;
  if (text.empty()) return recent;
  // The same bounds as a livecast.v1 subscribe's "recent" object.
  constexpr std::uint64_t most_count = 1u << 30;
  constexpr std::uint64_t most_seconds = 10ull * 365 * 24 * 3600;
  while (true) {
    std::size_t comma = text.find(',');
    std::string_view item = text.substr(0, comma);
    std::size_t first = item.find(':');
    std::size_t second = first == std::string_view::npos ? first : item.find(':', first + 1);
    if (second == std::string_view::npos || item.find(':', second + 1) != std::string_view::npos) return std::nullopt;
    auto topic = strict_percent_decode(item.substr(0, first));
    auto count = bounded_number(item.substr(first + 1, second - first - 1), most_count);
    auto seconds = bounded_number(item.substr(second + 1), most_seconds);
    if (!topic || topic->empty() || !count || !seconds) return std::nullopt;
    for (auto& [known, history] : recent)
      if (known == *topic) return std::nullopt;
    RecentHistory history;
    history.count = static_cast<std::size_t>(*count);
    history.max_age = std::chrono::seconds(*seconds);
    recent.emplace_back(std::move(*topic), history);
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return recent;
}

std::string format_cursor(const StreamCursor& cursor) {
  std::string out;
  for (const auto& [topic, position] : cursor) {
    if (!out.empty()) out.push_back(',');
    out += percent_encode(topic);
    out.push_back(':');
    out += percent_encode(position.epoch);
    out.push_back(':');
    out += std::to_string(position.offset);
  }
  return out;
}

std::optional<std::vector<std::string>> parse_topic_list(std::string_view raw) {
  std::vector<std::string> topics;
  if (raw.empty()) return std::nullopt;
  while (true) {
    std::size_t comma = raw.find(',');
    // Encoded once by the client; '+' stays a '+' (encodeURIComponent never
    // writes one for a space).
    std::string topic = percent_decode(raw.substr(0, comma), /*plus_is_space=*/false);
    if (topic.empty()) return std::nullopt;
    topics.push_back(std::move(topic));
    if (comma == std::string_view::npos) break;
    raw.remove_prefix(comma + 1);
  }
  return topics;
}

}  // namespace detail
LIVECAST_END_NAMESPACE
