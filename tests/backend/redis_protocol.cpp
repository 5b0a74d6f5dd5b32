// The sans-I/O Redis layer: commands encoded as RESP, replies parsed whole,
// byte by byte, in random fragments, and garbage reported without a crash.
#include "../../src/backend/redis_protocol.hpp"

#include <doctest/doctest.h>

#include <random>
#include <string>
#include <vector>

using namespace livecast;

namespace {

// Feeds `bytes` in pieces of the given sizes (the last piece takes the rest)
// and collects every reply.
std::vector<RedisReply> parse_in_pieces(const std::string& bytes, std::mt19937& random, std::size_t max_piece) {
  RedisReplyParser parser;
  std::vector<RedisReply> out;
  std::uniform_int_distribution<std::size_t> piece(1, max_piece);
  for (std::size_t at = 0; at < bytes.size();) {
    std::size_t n = std::min(piece(random), bytes.size() - at);
    parser.feed(bytes.data() + at, n);
    at += n;
    while (auto r = parser.next()) out.push_back(std::move(*r));
  }
  CHECK_FALSE(parser.failed());
  return out;
}

// A conversation's worth of replies of every type, nested.
const std::string replies =
    "+OK\r\n"
    "-NOSCRIPT No matching script\r\n"
    ":42\r\n"
    ":-7\r\n"
    "$5\r\nhe\r\no\r\n"  // a bulk string holding CRLF
    "$0\r\n\r\n"
    "$-1\r\n"
    "*0\r\n"
    "*-1\r\n"
    "*3\r\n$7\r\nmessage\r\n$12\r\nlivecast:{t}\r\n$11\r\ne:1:{\"v\":1}\r\n"
    "*2\r\n$3\r\nabc\r\n*2\r\n$3\r\n1-0\r\n*4\r\n$6\r\noffset\r\n:1\r\n$4\r\ndata\r\n$-1\r\n";

void check_replies(const std::vector<RedisReply>& r) {
  REQUIRE(r.size() == 11);
  CHECK(r[0].type == RedisReply::Type::status);
  CHECK(r[0].string == "OK");
  CHECK(r[1].is_error());
  CHECK(r[1].string == "NOSCRIPT No matching script");
  CHECK(r[2].type == RedisReply::Type::integer);
  CHECK(r[2].integer == 42);
  CHECK(r[3].integer == -7);
  CHECK(r[4].type == RedisReply::Type::string);
  CHECK(r[4].string == "he\r\no");
  CHECK(r[5].type == RedisReply::Type::string);
  CHECK(r[5].string.empty());
  CHECK(r[6].is_nil());
  CHECK(r[7].is_array());
  CHECK(r[7].elements.empty());
  CHECK(r[8].is_nil());
  REQUIRE(r[9].elements.size() == 3);
  CHECK(r[9].elements[0].string == "message");
  CHECK(r[9].elements[2].string == "e:1:{\"v\":1}");
  REQUIRE(r[10].elements.size() == 2);
  const RedisReply& entry = r[10].elements[1];
  REQUIRE(entry.elements.size() == 2);
  CHECK(entry.elements[0].string == "1-0");
  REQUIRE(entry.elements[1].elements.size() == 4);
  CHECK(entry.elements[1].elements[1].integer == 1);
  CHECK(entry.elements[1].elements[3].is_nil());
}

}  // namespace

TEST_CASE("commands are RESP arrays of bulk strings, binary-safe") {
  CHECK(encode_redis_command({"PING"}) == "*1\r\n$4\r\nPING\r\n");
  CHECK(encode_redis_command({"SET", "k", ""}) == "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n");
  std::string binary("a\0\r\nb", 5);
  CHECK(encode_redis_command({"ECHO", binary}) == std::string("*2\r\n$4\r\nECHO\r\n$5\r\na\0\r\nb\r\n", 25));
  std::string out = "x";
  append_redis_command(out, {"GET", "k"});
  CHECK(out == "x*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
}

TEST_CASE("an encoded command parses back as the array it is") {
  RedisReplyParser parser;
  parser.feed(encode_redis_command({"XADD", "s", "1-0", "data", "{\"a\":[1,2]}"}));
  auto r = parser.next();
  REQUIRE(r);
  REQUIRE(r->elements.size() == 5);
  CHECK(r->elements[4].string == "{\"a\":[1,2]}");
  CHECK_FALSE(parser.next());
}

TEST_CASE("replies of every type parse the same whole, byte by byte and in random fragments") {
  SUBCASE("whole") {
    RedisReplyParser parser;
    parser.feed(replies);
    std::vector<RedisReply> r;
    while (auto reply = parser.next()) r.push_back(std::move(*reply));
    check_replies(r);
  }
  SUBCASE("byte by byte") {
    std::mt19937 random(1);
    check_replies(parse_in_pieces(replies, random, 1));
  }
  SUBCASE("random fragments") {
    for (unsigned seed = 0; seed < 200; ++seed) {
      CAPTURE(seed);
      std::mt19937 random(seed);
      check_replies(parse_in_pieces(replies, random, 17));
    }
  }
}

TEST_CASE("an incomplete reply waits for the rest") {
  RedisReplyParser parser;
  parser.feed("$10\r\n01234");
  CHECK_FALSE(parser.next());
  parser.feed("56789\r");
  CHECK_FALSE(parser.next());
  parser.feed("\n");
  auto r = parser.next();
  REQUIRE(r);
  CHECK(r->string == "0123456789");
  CHECK_FALSE(parser.failed());
}

TEST_CASE("an array announcing more elements than the bound is a protocol error, before any allocation") {
  // fuzz_redis_reply's input: hiredis allocated the announced count's
  // pointers (8 GB here) as soon as it read the header.
  SUBCASE("the default bound") {
    RedisReplyParser parser;
    parser.feed("*1000000042\r\n:0\r\n");
    CHECK_FALSE(parser.next());
    CHECK(parser.failed());
    CHECK(parser.error() == "an array of more than 1048576 elements");
  }
  SUBCASE("a bound of its own, nested arrays included") {
    RedisReplyParser parser(3);
    parser.feed("*3\r\n:1\r\n*0\r\n*3\r\n$1\r\na\r\n$-1\r\n*-1\r\n");
    auto at_bound = parser.next();
    REQUIRE(at_bound);
    REQUIRE(at_bound->elements.size() == 3);
    CHECK(at_bound->elements[2].elements.size() == 3);
    parser.feed("*2\r\n:1\r\n*4\r\n");
    CHECK_FALSE(parser.next());
    CHECK(parser.failed());
    CHECK(parser.error() == "an array of more than 3 elements");
  }
  SUBCASE("a large array within the bound") {
    std::string reply = "*5000\r\n";
    for (int i = 0; i < 5000; ++i) reply += ":" + std::to_string(i) + "\r\n";
    RedisReplyParser parser;
    parser.feed(reply);
    auto r = parser.next();
    REQUIRE(r);
    REQUIRE(r->elements.size() == 5000);
    CHECK(r->elements[4999].integer == 4999);
  }
}

TEST_CASE("garbage is a protocol error, reported and sticky, never a crash") {
  SUBCASE("an unknown type byte") {
    RedisReplyParser parser;
    parser.feed("+OK\r\n!garbage\r\n");
    auto first = parser.next();
    REQUIRE(first);
    CHECK(first->string == "OK");
    CHECK_FALSE(parser.next());
    CHECK(parser.failed());
    CHECK_FALSE(parser.error().empty());
    parser.feed("+OK\r\n");  // nothing parses after the stream is lost
    CHECK_FALSE(parser.next());
    CHECK(parser.failed());
  }
  SUBCASE("a bad length") {
    RedisReplyParser parser;
    parser.feed("$abc\r\n");
    CHECK_FALSE(parser.next());
    CHECK(parser.failed());
  }
  SUBCASE("nesting deeper than the reader allows") {
    RedisReplyParser parser;
    std::string deep;
    for (int i = 0; i < 20; ++i) deep += "*1\r\n";
    deep += ":1\r\n";
    parser.feed(deep);
    CHECK_FALSE(parser.next());
    CHECK(parser.failed());
  }
  SUBCASE("random bytes, fed in random fragments") {
    std::mt19937 random(7);
    std::uniform_int_distribution<int> byte(0, 255), length(1, 300);
    const std::string alphabet = "+-:$*\r\n0123456789-x";
    std::uniform_int_distribution<std::size_t> pick(0, alphabet.size() - 1);
    int failures = 0;
    for (int round = 0; round < 2000; ++round) {
      std::string bytes;
      int n = length(random);
      for (int i = 0; i < n; ++i)
        bytes.push_back(round % 2 ? static_cast<char>(byte(random)) : alphabet[pick(random)]);
      RedisReplyParser parser;
      std::uniform_int_distribution<std::size_t> piece(1, 8);
      for (std::size_t at = 0; at < bytes.size();) {
        std::size_t k = std::min(piece(random), bytes.size() - at);
        parser.feed(bytes.data() + at, k);
        at += k;
        while (parser.next()) {
        }
      }
      if (parser.failed()) ++failures;
    }
    CHECK(failures > 0);  // most random input is not RESP, and says so
  }
}
