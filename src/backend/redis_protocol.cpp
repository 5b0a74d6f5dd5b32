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

// hiredis's reply callbacks take an array's element count as int (0.14) or
// size_t (1.x).
template <class Function>
struct ElementCountOf;
template <class Result, class Task, class Count>
struct ElementCountOf<Result (*)(Task, Count)> {
  using type = Count;
};
using CreateArray = decltype(redisReplyObjectFunctions::createArray);
using ElementCount = ElementCountOf<CreateArray>::type;

CreateArray hiredis_create_array = nullptr;  // set once, with bounded_functions' table

// Refusing (null) makes hiredis fail the parse, as if out of memory.
void* create_bounded_array(const redisReadTask* task, ElementCount elements) {
  auto* bound = static_cast<RedisReplyParser::ArrayBound*>(task->privdata);
  if (bound && elements > 0 && static_cast<std::size_t>(elements) > bound->max_elements) {
    bound->exceeded = true;
    return nullptr;
  }
  return hiredis_create_array(task, elements);
}

// hiredis's own reply functions (a reader starts with them; they are not
// exported), with arrays bounded.
redisReplyObjectFunctions* bounded_functions(const redisReplyObjectFunctions& hiredis) {
  static redisReplyObjectFunctions functions = [&hiredis] {
    hiredis_create_array = hiredis.createArray;
    redisReplyObjectFunctions f = hiredis;
    f.createArray = create_bounded_array;
    return f;
  }();
  return &functions;
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

RedisReplyParser::RedisReplyParser(std::size_t max_array_elements)
    : bound_{max_array_elements}, reader_(redisReaderCreate()) {
  if (!reader_) {
    fail("out of memory");
    return;
  }
  auto* reader = static_cast<redisReader*>(reader_.get());
  reader->fn = bounded_functions(*reader->fn);
  reader->privdata = &bound_;  // handed to every callback, in each read task
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
    if (bound_.exceeded)
      fail("an array of more than " + std::to_string(bound_.max_elements) + " elements");
    else
      fail(reader->errstr[0] ? reader->errstr : "protocol error");
    return std::nullopt;
  }
  if (!raw) return std::nullopt;
  std::unique_ptr<redisReply, void (*)(void*)> reply(static_cast<redisReply*>(raw), freeReplyObject);
  return copy_reply(*reply);
}

LIVECAST_END_NAMESPACE
