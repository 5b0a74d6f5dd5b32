// HttpRequestParser and the cursor and query decoding, without a socket:
// every request is also fed one byte at a time, and garbage must end in a
// refusal, never a crash or an endless wait for more.
#include "http_request_parser.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>

using namespace livecast;
using namespace livecast::detail;

namespace {

// Feeds `bytes` in pieces of `step` and returns how many were taken.
std::size_t feed_in_steps(HttpRequestParser& parser, std::string_view bytes, std::size_t step) {
  std::size_t used = 0;
  while (used < bytes.size() && !parser.complete() && !parser.failed()) {
    const std::size_t n = std::min(step, bytes.size() - used);
    const std::size_t took = parser.feed(bytes.substr(used, n));
    used += took;
    if (took < n) break;
  }
  return used;
}

const std::string post_request =
    "POST /poll?token=abc HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    "Content-Length: 13\r\nX-Dup: a\r\nx-dup: b\r\n\r\n{\"op\":\"ping\"}";

}  // namespace

TEST_CASE("a request parsed whole and byte by byte gives the same result") {
  for (std::size_t step : {std::size_t{1}, std::size_t{3}, post_request.size()}) {
    CAPTURE(step);
    HttpRequestParser parser;
    CHECK(feed_in_steps(parser, post_request, step) == post_request.size());
    REQUIRE(parser.complete());
    const ParsedHttpRequest& r = parser.request();
    CHECK(r.method == "POST");
    CHECK(r.target == "/poll?token=abc");
    CHECK(r.version_minor == 1);
    CHECK(r.header("content-type") == "application/json");
    CHECK(r.header("x-dup") == "a, b");
    CHECK(r.body == "{\"op\":\"ping\"}");
    CHECK(r.keep_alive);
  }
}

TEST_CASE("repeated fields join without empty items, so the head written out reads back the same") {
  // fuzz_http_request and fuzz_websocket: two empty "X-Tab:" lines joined to
  // ", ", written out by format_request_head as "x-tab: , ", read back (by
  // this parser or websocketpp, which reads what the WebSocket port hands
  // it) as ",": one request read two ways.
  const std::string request =
      "GET / HTTP/1.1\r\nHost: x\r\nX-Tab:\r\nX-Tab:\r\nX-Pre:\r\nX-Pre: a\r\nX-Post: a\r\nX-Post:\r\n"
      "X-Both: a\r\nX-Both: \r\nX-Both: b\r\n\r\n";
  HttpRequestParser parser;
  parser.feed(request);
  REQUIRE(parser.complete());
  const ParsedHttpRequest& r = parser.request();
  CHECK(r.header("x-tab") == "");
  CHECK(r.headers.count("x-tab") == 1);
  CHECK(r.header("x-pre") == "a");
  CHECK(r.header("x-post") == "a");
  CHECK(r.header("x-both") == "a, b");

  HttpRequestParser again;
  again.feed(format_request_head(r));
  REQUIRE(again.complete());
  CHECK(again.request().headers == r.headers);
  CHECK(again.request().method == r.method);
  CHECK(again.request().target == r.target);
}

TEST_CASE("pipelined requests: the parser stops at the end of the first") {
  const std::string two = "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n";
  HttpRequestParser parser;
  const std::size_t used = parser.feed(two);
  REQUIRE(parser.complete());
  CHECK(parser.request().target == "/a");
  parser.reset();
  CHECK_FALSE(parser.started());
  parser.feed(std::string_view(two).substr(used));
  REQUIRE(parser.complete());
  CHECK(parser.request().target == "/b");
}

TEST_CASE("keep-alive follows the version and the Connection header") {
  auto keep_alive = [](const std::string& text) {
    HttpRequestParser parser;
    parser.feed(text);
    REQUIRE(parser.complete());
    return parser.request().keep_alive;
  };
  CHECK(keep_alive("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  CHECK_FALSE(keep_alive("GET / HTTP/1.1\r\nHost: x\r\nConnection: Close\r\n\r\n"));
  CHECK_FALSE(keep_alive("GET / HTTP/1.0\r\n\r\n"));
  CHECK(keep_alive("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
  // Empty lines before a request are skipped.
  CHECK(keep_alive("\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n"));
}

TEST_CASE("a bare LF is not a line end: 400 where it stands") {
  for (const std::string text : {"GET / HTTP/1.1\nHost: x\r\n\r\n", "GET / HTTP/1.1\r\nHost: x\nA: b\r\n\r\n",
                                 "GET / HTTP/1.1\r\nHost: x\r\n\n"}) {
    CAPTURE(text);
    HttpRequestParser parser;
    const std::size_t used = parser.feed(text);
    REQUIRE(parser.failed());
    CHECK(parser.error_status() == 400);
    std::size_t bare = 0;  // the first LF without a CR before it
    while (text[bare] != '\n' || text[bare - 1] == '\r') ++bare;
    CHECK(used == bare + 1);  // nothing after it taken
  }
}

TEST_CASE("bytes no request line can hold are refused at once, before any line end") {
  // Each: the bytes up to and including the first impossible one.
  for (const std::string& text : {std::string("\x16\x03\x01", 1), std::string("\x00", 1), std::string("GE("),
                                 std::string(" "), std::string("GET /a\x01"), std::string("GET / X"),
                                 std::string("GET / HTTP/1.1x"), std::string("GET / HTTP/1x"),
                                 std::string("this is n"), std::string("GET / HTTP/1.1 ")}) {
    CAPTURE(text);
    HttpRequestParser parser;
    for (std::size_t i = 0; i + 1 < text.size(); ++i) {
      CHECK(parser.feed(text.substr(i, 1)) == 1);
      REQUIRE_FALSE(parser.failed());
    }
    parser.feed(text.substr(text.size() - 1));
    CHECK(parser.failed());
    CHECK(parser.error_status() == 400);
  }
  // A well-formed version the server does not speak is told apart at the line's end.
  HttpRequestParser two;
  two.feed("GET / HTTP/2.0");
  CHECK_FALSE(two.failed());
  two.feed("\r\n");
  CHECK(two.error_status() == 505);
}

TEST_CASE("malformed requests are refused with the right status") {
  struct Case {
    std::string text;
    int status;
  };
  const Case cases[] = {
      {"GET /\r\n\r\n", 400},
      {"GET  / HTTP/1.1\r\n\r\n", 400},
      {"G(T / HTTP/1.1\r\n\r\n", 400},
      {"GET / HTTP/1.1 extra\r\n\r\n", 400},
      {"GET / HTTX/1.1\r\n\r\n", 400},
      {"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505},
      {"GET /\x01 HTTP/1.1\r\n\r\n", 400},
      {"GET / HTTP/1.1\rX\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: x\r\nBad Name: v\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: x\r\nA: b\r\n folded\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: x\r\nA: b\x01\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\n\r\n", 400},  // no Host
      {"GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", 400},
      {"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1x\r\n\r\n", 400},
      {"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400},
      {"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400},
      {"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", 501},
  };
  for (const Case& c : cases) {
    for (std::size_t step : {std::size_t{1}, c.text.size()}) {
      CAPTURE(c.text);
      CAPTURE(step);
      HttpRequestParser parser;
      feed_in_steps(parser, c.text, step);
      REQUIRE(parser.failed());
      CHECK(parser.error_status() == c.status);
      CHECK_FALSE(parser.error_reason().empty());
      CHECK_FALSE(parser.request().keep_alive);
    }
  }
}

TEST_CASE("limits: request line 414, header bytes and fields 431, body 413") {
  HttpRequestLimits limits;
  limits.max_request_line_bytes = 64;
  limits.max_header_bytes = 128;
  limits.max_header_fields = 4;
  limits.max_body_bytes = 10;

  HttpRequestParser line(limits);
  line.feed("GET /" + std::string(100, 'a'));
  CHECK(line.error_status() == 414);  // refused before the line ends

  HttpRequestParser header_bytes(limits);
  header_bytes.feed("GET / HTTP/1.1\r\nHost: x\r\nA: " + std::string(200, 'b'));
  CHECK(header_bytes.error_status() == 431);

  HttpRequestParser fields(limits);
  fields.feed("GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n");
  CHECK(fields.error_status() == 431);

  HttpRequestParser body(limits);
  body.feed("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n");
  CHECK(body.error_status() == 413);

  HttpRequestParser fits(limits);
  fits.feed("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0123456789tail");
  REQUIRE(fits.complete());
  CHECK(fits.request().body == "0123456789");
}

TEST_CASE("garbage never makes the parser wait forever or accept it") {
  std::mt19937 random(12345);
  HttpRequestLimits limits;
  limits.max_request_line_bytes = 256;
  limits.max_header_bytes = 512;
  for (int round = 0; round < 500; ++round) {
    std::string garbage(1024, '\0');
    for (char& c : garbage) c = static_cast<char>(random() & 0xff);
    HttpRequestParser parser(limits);
    feed_in_steps(parser, garbage, 1 + round % 7);
    // 1 KiB of random bytes cannot be a complete, valid request head with
    // these limits; the parser must have said so.
    CHECK(parser.failed());
  }
}

TEST_CASE("percent coding follows encodeURIComponent") {
  CHECK(percent_encode("a b,c:d/é") == "a%20b%2Cc%3Ad%2F%C3%A9");
  CHECK(percent_encode("A-z_0.!~*'()") == "A-z_0.!~*'()");
  CHECK(percent_decode("a%20b%2cc+d", true) == "a b,c d");
  CHECK(percent_decode("a+b%zz%4", false) == "a+b%zz%4");
}

TEST_CASE("query, raw parameters and cookies") {
  std::map<std::string, std::string> query;
  parse_query("token=a%2Bb&x=1&token=second&flag", query);
  CHECK(query["token"] == "a+b");
  CHECK(query["x"] == "1");
  CHECK(query.count("flag") == 1);
  CHECK(raw_query_parameter("a=1&topics=x%2Cy,z&b", "topics") == std::string_view("x%2Cy,z"));
  CHECK_FALSE(raw_query_parameter("a=1", "topics").has_value());

  std::map<std::string, std::string> cookies;
  parse_cookies("a=1; livecast_token=\"t%20k\"", cookies);
  CHECK(cookies["livecast_token"] == "t k");
}

TEST_CASE("topic lists: encoded items joined by raw commas") {
  auto topics = parse_topic_list("kpi.revenue,a%2Cb,c%3Ad");
  REQUIRE(topics);
  CHECK(*topics == std::vector<std::string>{"kpi.revenue", "a,b", "c:d"});
  CHECK_FALSE(parse_topic_list(""));
  CHECK_FALSE(parse_topic_list("a,,b"));
  CHECK_FALSE(parse_topic_list("a,"));
}

TEST_CASE("recent history per topic: <topic>:<count>:<seconds>, refused when malformed") {
  auto parsed = parse_recent("org%3Aacme%3Aagg.latency_ms.1s:0:120,plain:30:0");
  REQUIRE(parsed);
  REQUIRE(parsed->size() == 2);
  CHECK((*parsed)[0].first == "org:acme:agg.latency_ms.1s");
  CHECK((*parsed)[0].second == RecentHistory{0, std::chrono::seconds(120)});
  CHECK((*parsed)[1].first == "plain");
  CHECK((*parsed)[1].second == RecentHistory{30, std::chrono::seconds(0)});

  auto empty = parse_recent("");
  REQUIRE(empty);
  CHECK(empty->empty());

  for (const char* bad : {"a", "a:1", "a:1:", "a::1", "a:x:1", "a:1:-1", "a:1:2:3", ":1:1", "a:1:1,", "a:1:1,a:2:2",
                          "a%zz:1:1", "a:1073741825:0", "a:0:999999999999"}) {
    CAPTURE(bad);
    CHECK_FALSE(parse_recent(bad).has_value());
  }
}

TEST_CASE("cursors round-trip and refuse malformed text") {
  StreamCursor cursor{{"a,b:c", {"ep:1", 7}}, {"plain", {"k3f9", 0}}};
  const std::string text = format_cursor(cursor);
  CHECK(text == "a%2Cb%3Ac:ep%3A1:7,plain:k3f9:0");
  auto parsed = parse_cursor(text);
  REQUIRE(parsed);
  REQUIRE(parsed->size() == 2);
  CHECK((*parsed)[0].first == "a,b:c");
  CHECK((*parsed)[0].second == StreamPosition{"ep:1", 7});
  CHECK((*parsed)[1].second == StreamPosition{"k3f9", 0});

  auto empty = parse_cursor("");
  REQUIRE(empty);
  CHECK(empty->empty());

  for (const char* bad : {"a", "a:b", "a:b:", "a:b:x", "a:b:-1", "a:b:1:2", ":e:1", "a:e:1,", "a:e:1,a:e:2",
                          "a%zz:e:1", "a:e%2:1", "a:e:99999999999999999999", "a:e:9007199254740993"}) {
    CAPTURE(bad);
    CHECK_FALSE(parse_cursor(bad).has_value());
  }
}
