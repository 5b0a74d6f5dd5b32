// Fuzzes the RESP reader: RedisReplyParser, i.e. hiredis's redisReader and
// livecast's copy of each reply, on bytes a Redis server (or whatever sits
// between us and it) sends.
//
// Input layout (FuzzedDataProvider takes the parameters from the end):
//   <bytes> <chunk sizes> <chunk count> <mode>
// mode bit 0 clear: <bytes> is a reply stream. It is parsed whole and in
// chunks whose sizes come from the input (the rest in one piece); both must
// give the same replies and the same failure. Each reply, written back as
// RESP, must parse to itself, and the replies together hold no more text and
// elements than the bytes could carry.
// mode bit 0 set: <bytes> is split into command arguments; the encoded
// command, read as a reply, must be the array of those arguments.
#include "fuzz_check.hpp"

#include "backend/redis_protocol.hpp"

#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

using namespace livecast;

namespace {

bool same_reply(const RedisReply& a, const RedisReply& b) {
  if (a.type != b.type || a.integer != b.integer || a.string != b.string || a.elements.size() != b.elements.size())
    return false;
  for (std::size_t i = 0; i < a.elements.size(); ++i)
    if (!same_reply(a.elements[i], b.elements[i])) return false;
  return true;
}

// The RESP text of a reply (a status or error holds no CRLF: it was one line).
void write_reply(std::string& out, const RedisReply& r) {
  switch (r.type) {
    case RedisReply::Type::string:
      out += "$" + std::to_string(r.string.size()) + "\r\n" + r.string + "\r\n";
      break;
    case RedisReply::Type::array:
      out += "*" + std::to_string(r.elements.size()) + "\r\n";
      for (const RedisReply& e : r.elements) write_reply(out, e);
      break;
    case RedisReply::Type::integer:
      out += ":" + std::to_string(r.integer) + "\r\n";
      break;
    case RedisReply::Type::nil:
      out += "$-1\r\n";
      break;
    case RedisReply::Type::status:
      out += "+" + r.string + "\r\n";
      break;
    case RedisReply::Type::error:
      out += "-" + r.string + "\r\n";
      break;
  }
}

// How many bytes of RESP a reply needs at the least: a type byte and a CRLF
// around its text, and its elements.
std::size_t minimum_wire_size(const RedisReply& r) {
  std::size_t n = 3 + r.string.size();
  for (const RedisReply& e : r.elements) n += minimum_wire_size(e);
  return n;
}

struct ParseOutcome {
  std::vector<RedisReply> replies;
  bool failed = false;
};

void drain(RedisReplyParser& parser, ParseOutcome& out) {
  while (auto reply = parser.next()) out.replies.push_back(std::move(*reply));
  out.failed = parser.failed();
}

void check_reply_stream(const std::string& bytes, const std::vector<std::size_t>& chunk_sizes) {
  ParseOutcome whole;
  {
    RedisReplyParser parser;
    parser.feed(bytes);
    drain(parser, whole);
    if (whole.failed) FUZZ_CHECK(!parser.error().empty());
  }

  ParseOutcome chunked;
  {
    RedisReplyParser parser;
    std::string_view rest = bytes;
    for (std::size_t s : chunk_sizes) {
      const std::string_view piece = rest.substr(0, s);
      rest.remove_prefix(piece.size());
      parser.feed(piece);
      drain(parser, chunked);
    }
    parser.feed(rest);
    drain(parser, chunked);
  }

  FUZZ_CHECK(whole.failed == chunked.failed);
  FUZZ_CHECK(whole.replies.size() == chunked.replies.size());
  std::size_t wire = 0;
  for (std::size_t i = 0; i < whole.replies.size(); ++i) {
    const RedisReply& reply = whole.replies[i];
    FUZZ_CHECK(same_reply(reply, chunked.replies[i]));
    wire += minimum_wire_size(reply);

    std::string written;
    write_reply(written, reply);
    RedisReplyParser again;
    again.feed(written);
    std::optional<RedisReply> reread = again.next();
    FUZZ_CHECK(reread.has_value());
    FUZZ_CHECK(same_reply(*reread, reply));
    FUZZ_CHECK(!again.next().has_value());
    FUZZ_CHECK(!again.failed());
  }
  FUZZ_CHECK(wire <= bytes.size());
}

void check_command(FuzzedDataProvider& provider) {
  std::vector<std::string> args;
  while (provider.remaining_bytes() > 0 && args.size() < 64) args.push_back(provider.ConsumeRandomLengthString(256));
  const std::vector<std::string_view> views(args.begin(), args.end());
  const std::string command = encode_redis_command(views);

  RedisReplyParser parser;
  parser.feed(command);
  std::optional<RedisReply> reply = parser.next();
  if (args.empty()) {
    // "*0\r\n": an empty array.
    FUZZ_CHECK(reply && reply->is_array() && reply->elements.empty());
    return;
  }
  FUZZ_CHECK(reply.has_value());
  FUZZ_CHECK(reply->is_array());
  FUZZ_CHECK(reply->elements.size() == args.size());
  for (std::size_t i = 0; i < args.size(); ++i) {
    FUZZ_CHECK(reply->elements[i].type == RedisReply::Type::string);
    FUZZ_CHECK(reply->elements[i].string == args[i]);
  }
  FUZZ_CHECK(!parser.next().has_value());
  FUZZ_CHECK(!parser.failed());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
  FuzzedDataProvider provider(bytes, size);
  const std::uint8_t mode = provider.ConsumeIntegral<std::uint8_t>();
  if (mode & 1) {
    check_command(provider);
    return 0;
  }
  std::vector<std::size_t> chunk_sizes(provider.ConsumeIntegralInRange<std::size_t>(0, 16));
  for (std::size_t& s : chunk_sizes) s = provider.ConsumeIntegralInRange<std::size_t>(1, 256);
  check_reply_stream(provider.ConsumeRemainingBytesAsString(), chunk_sizes);
  return 0;
}
