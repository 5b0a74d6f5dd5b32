// coalesce_key: RapidJSON's SAX reader with a handler that follows the
// depth, watches the top-level member names, and stops the reader at the
// named member's value (or as soon as there can be none): no DOM, and a
// key placed first in a large payload costs a few bytes of parsing.
#include "coalesce_key.hpp"

#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>

#include <cstring>

LIVECAST_BEGIN_NAMESPACE
namespace detail {

namespace {

// Each event returns whether to read on; false stops the reader, which
// then reports kParseErrorTermination: that is how the search ends early.
class KeyFinder : public rapidjson::BaseReaderHandler<rapidjson::UTF8<>, KeyFinder> {
 public:
  explicit KeyFinder(std::string_view member) : member_(member) {}

  // A value that is no key: the root is no object, or the member's value is null or a bool.
  bool Default() { return depth_ > 0 && !at_member_; }

  bool String(const char* text, rapidjson::SizeType length, bool /*copy*/) {
    if (depth_ == 0) return false;  // the root is a string
    if (!at_member_) return true;
    key_.reserve(length + 1);
    key_.push_back('"');
    key_.append(text, length);
    return false;
  }
  // Numbers come as written (kParseNumbersAsStringsFlag).
  bool RawNumber(const char* text, rapidjson::SizeType length, bool /*copy*/) {
    if (depth_ == 0) return false;
    if (!at_member_) return true;
    key_.assign(text, length);
    return false;
  }
  bool Key(const char* text, rapidjson::SizeType length, bool /*copy*/) {
    at_member_ = depth_ == 1 && std::string_view(text, length) == member_;
    return true;
  }
  bool StartObject() {
    if (at_member_) return false;  // the member's value is an object
    ++depth_;
    return true;
  }
  bool StartArray() {
    if (depth_ == 0 || at_member_) return false;  // the root, or the member's value, is an array
    ++depth_;
    return true;
  }
  // The root object ended without the member.
  bool EndObject(rapidjson::SizeType /*members*/) { return --depth_ > 0; }
  bool EndArray(rapidjson::SizeType /*elements*/) { return --depth_ > 0; }

  std::string take_key() { return std::move(key_); }

 private:
  std::string_view member_;
  int depth_ = 0;
  bool at_member_ = false;  // the next value is the member's
  std::string key_;
};

}  // namespace

std::string coalesce_key(std::string_view json, std::string_view member) {
  if (member.empty() || json.empty()) return {};
  KeyFinder finder(member);
  rapidjson::MemoryStream stream(json.data(), json.size());
  rapidjson::Reader reader;
  // Iterative: nesting depth costs heap proportional to the input, not stack.
  constexpr unsigned flags = rapidjson::kParseIterativeFlag | rapidjson::kParseNumbersAsStringsFlag;
  reader.Parse<flags>(stream, finder);
  // The key is set only when the reader got to the member's whole value;
  // an error before it leaves none.
  return finder.take_key();
}

}  // namespace detail
LIVECAST_END_NAMESPACE
