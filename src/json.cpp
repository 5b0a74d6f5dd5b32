// is_valid_json: RapidJSON's SAX reader with a handler that keeps nothing, so
// validating a publication builds no DOM. is_valid_utf8 and
// append_json_string share one strict reading of UTF-8.
#include <livecast/json.hpp>

#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>

#include <cstdint>
#include <cstring>

LIVECAST_BEGIN_NAMESPACE

namespace {

// The bytes at `p` that form one step of UTF-8 decoding, for a lead byte
// >= 0x80: a well-formed sequence, or a maximal ill-formed subpart (the
// longest prefix of some well-formed sequence, or else one byte), which a
// decoder replaces with one U+FFFD.
struct Utf8Step {
  std::size_t length;
  bool valid;
};

// Table 3-7 of the Unicode Standard (RFC 3629 section 4): the second byte's
// range depends on the lead byte, which is what shuts out overlong forms
// (E0 80..9F, F0 80..8F; C0 and C1 never lead), surrogates (ED A0..BF) and
// code points above U+10FFFF (F4 90..BF; F5..FF never lead).
Utf8Step next_utf8_step(const unsigned char* p, std::size_t available) noexcept {
  const unsigned char lead = p[0];
  std::size_t length = 0;
  unsigned char low = 0x80, high = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    if (lead == 0xE0) low = 0xA0;
    if (lead == 0xED) high = 0x9F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    if (lead == 0xF0) low = 0x90;
    if (lead == 0xF4) high = 0x8F;
  } else {
    return {1, false};  // a continuation byte, or one that never occurs in UTF-8
  }
  for (std::size_t k = 1; k < length; ++k) {
    if (k == available || p[k] < low || p[k] > high) return {k, false};  // truncated or broken
    low = 0x80;
    high = 0xBF;
  }
  return {length, true};
}

// True when the 8 bytes at `p` are all ASCII: text is mostly ASCII, and this
// lets the checks skip it a word at a time.
bool ascii_word(const unsigned char* p) noexcept {
  std::uint64_t word;
  std::memcpy(&word, p, sizeof word);
  return (word & 0x8080808080808080ULL) == 0;
}

}  // namespace

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

bool is_valid_utf8(std::string_view text) noexcept {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const std::size_t n = text.size();
  std::size_t i = 0;
  while (i < n) {
    if (n - i >= 8 && ascii_word(p + i)) {
      i += 8;
    } else if (p[i] < 0x80) {
      ++i;
    } else {
      const Utf8Step step = next_utf8_step(p + i, n - i);
      if (!step.valid) return false;
      i += step.length;
    }
  }
  return true;
}

std::size_t json_string_size(std::string_view s) noexcept {
  std::size_t n = 2;
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\' || c == '\n' || c == '\r' || c == '\t' || c == '\b' || c == '\f')
      n += 2;
    else if (c < 0x20)
      n += 6;
    else
      n += 1;
  }
  return n;
}

void append_json_string(std::string& out, std::string_view s) {
  static constexpr char hex[] = "0123456789abcdef";
  static constexpr std::string_view replacement = "\xEF\xBF\xBD";  // U+FFFD
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const std::size_t n = s.size();
  out.push_back('"');
  // Bytes that need no change are appended in runs, not one by one.
  std::size_t run = 0;
  std::size_t i = 0;
  while (i < n) {
    const unsigned char c = p[i];
    if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
      ++i;
      continue;
    }
    if (c >= 0x80) {
      const Utf8Step step = next_utf8_step(p + i, n - i);
      if (!step.valid) {
        out.append(s.data() + run, i - run);
        out.append(replacement);
        run = i + step.length;
      }
      i += step.length;
      continue;
    }
    out.append(s.data() + run, i - run);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        out += "\\u00";
        out.push_back(hex[c >> 4]);
        out.push_back(hex[c & 0xF]);
    }
    run = ++i;
  }
  out.append(s.data() + run, n - run);
  out.push_back('"');
}

LIVECAST_END_NAMESPACE
