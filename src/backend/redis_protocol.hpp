// The Redis wire protocol without I/O: commands encoded as RESP arrays of bulk
// strings, replies parsed by hiredis's redisReader into owned values. Bytes
// in, replies out; the connection around it only moves bytes.
#pragma once

#include <livecast/config.hpp>

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

LIVECAST_BEGIN_NAMESPACE

// One reply, owned (hiredis's reply object is freed as soon as it is copied).
struct RedisReply {
  enum class Type { string, array, integer, nil, status, error };

  Type type = Type::nil;
  long long integer = 0;
  std::string string;  // string, status and error text
  std::vector<RedisReply> elements;

  bool is_error() const noexcept { return type == Type::error; }
  bool is_nil() const noexcept { return type == Type::nil; }
  bool is_array() const noexcept { return type == Type::array; }
  bool is_text() const noexcept { return type == Type::string || type == Type::status; }
};

// Appends `args` to `out` as one RESP command (an array of bulk strings).
void append_redis_command(std::string& out, const std::vector<std::string_view>& args);
std::string encode_redis_command(const std::vector<std::string_view>& args);

// Incremental reply parser. Feed any fragment of the byte stream, then take
// complete replies until next() returns nothing. After a protocol error the
// stream cannot be resynchronised: failed() stays true and the connection
// must be dropped.
class RedisReplyParser {
 public:
  // hiredis allocates an array's element pointers as soon as it reads the
  // count, before any element arrives: "*1000000000\r\n" alone would have it
  // allocate 8 GB (found by fuzz_redis_reply). An array announcing more
  // elements than this is a protocol error. livecast's replies are far
  // smaller: every command that returns many items carries a COUNT
  // (RecoverySettings::max_publications, the stream source's batch).
  static constexpr std::size_t default_max_array_elements = 1024 * 1024;

  explicit RedisReplyParser(std::size_t max_array_elements = default_max_array_elements);
  ~RedisReplyParser();
  RedisReplyParser(const RedisReplyParser&) = delete;
  RedisReplyParser& operator=(const RedisReplyParser&) = delete;

  void feed(const char* data, std::size_t size);
  void feed(std::string_view bytes) { feed(bytes.data(), bytes.size()); }
  // The next complete reply, if any.
  std::optional<RedisReply> next();

  bool failed() const noexcept { return failed_; }
  const std::string& error() const noexcept { return error_; }

  // What the reader's array callback checks (redis_protocol.cpp); the reader
  // holds its address, which is why a parser is neither copied nor moved.
  struct ArrayBound {
    std::size_t max_elements;
    bool exceeded = false;
  };

 private:
  void fail(std::string message);

  struct ReaderDeleter {
    void operator()(void* reader) const noexcept;
  };
  ArrayBound bound_;
  std::unique_ptr<void, ReaderDeleter> reader_;  // redisReader, kept out of this header
  bool failed_ = false;
  std::string error_;
};

LIVECAST_END_NAMESPACE
