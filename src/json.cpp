// is_valid_json: RapidJSON's SAX reader with a handler that keeps nothing, so
// validating a publication builds no DOM.
#include <livecast/json.hpp>

#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>

#include <cstring>

LIVECAST_BEGIN_NAMESPACE

bool is_valid_json(std::string_view text) noexcept {
  // The reader treats a NUL byte as the end of input, so "1\0junk" would pass;
  // a raw NUL is never valid JSON anyway.
  if (text.empty() || std::memchr(text.data(), '\0', text.size()) != nullptr) return false;
  rapidjson::MemoryStream stream(text.data(), text.size());
  rapidjson::BaseReaderHandler<rapidjson::UTF8<>> ignore_everything;
  rapidjson::Reader reader;
  // Iterative: nesting depth costs heap proportional to the input, not stack.
  // Without kParseStopWhenDoneFlag, anything after the value is an error.
  constexpr unsigned flags = rapidjson::kParseIterativeFlag | rapidjson::kParseValidateEncodingFlag;
  return !reader.Parse<flags>(stream, ignore_everything).IsError();
}

LIVECAST_END_NAMESPACE
