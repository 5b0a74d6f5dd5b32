#include "redis_protocol.hpp"

#include <hiredis/hiredis.h>

#include <climits>
#include <utility>

LIVECAST_BEGIN_NAMESPACE

namespace {

RedisReply copy_reply(const redisReply& r) {
  RedisReply out;
  switch (r.type) {
    case REDIS_REPLY_STRING: out.type = RedisReply::Type::string; break;
    case REDIS_REPLY_ARRAY: out.type = RedisReply::Type::array; break;
    case REDIS_REPLY_INTEGER: out.type = RedisReply::Type::integer; break;
    case REDIS_REPLY_STATUS: out.type = RedisReply::Type::status; break;
    case REDIS_REPLY_ERROR: out.type = RedisReply::Type::error; break;
    default: out.type = RedisReply::Type::nil; break;
  }
  out.integer = r.integer;
  if (r.str && r.len) out.string.assign(r.str, r.len);
  out.elements.reserve(r.elements);
  for (std::size_t i = 0; i < r.elements; ++i) out.elements.push_back(copy_reply(*r.element[i]));
  return out;
}

}  // namespace

void append_redis_command(std::string& out, const std::vector<std::string_view>& args) {
  out += '*';
  out += std::to_string(args.size());
  out += "\r\n";
  for (std::string_view a : args) {
    out += '$';
    out += std::to_string(a.size());
    out += "\r\n";
    out.append(a.data(), a.size());
    out += "\r\n";
  }
}

std::string encode_redis_command(const std::vector<std::string_view>& args) {
  std::string out;
  append_redis_command(out, args);
  return out;
}

void RedisReplyParser::ReaderDeleter::operator()(void* reader) const noexcept {
  redisReaderFree(static_cast<redisReader*>(reader));
}

RedisReplyParser::RedisReplyParser() : reader_(redisReaderCreate()) {
  if (!reader_) fail("out of memory");
}

RedisReplyParser::~RedisReplyParser() = default;

void RedisReplyParser::fail(std::string message) {
  failed_ = true;
  error_ = std::move(message);
}

void RedisReplyParser::feed(const char* data, std::size_t size) {
  if (failed_ || size == 0) return;
  auto* reader = static_cast<redisReader*>(reader_.get());
  if (redisReaderFeed(reader, data, size) != REDIS_OK) fail(reader->errstr);
}

std::optional<RedisReply> RedisReplyParser::next() {
  if (failed_) return std::nullopt;
  auto* reader = static_cast<redisReader*>(reader_.get());
  void* raw = nullptr;
  if (redisReaderGetReply(reader, &raw) != REDIS_OK) {
    fail(reader->errstr[0] ? reader->errstr : "protocol error");
    return std::nullopt;
  }
  if (!raw) return std::nullopt;
  std::unique_ptr<redisReply, void (*)(void*)> reply(static_cast<redisReply*>(raw), freeReplyObject);
  return copy_reply(*reply);
}

LIVECAST_END_NAMESPACE
