// A small JSON value builder for publishers that do not already have JSON
// text, and the validator the broker runs once per publication.
#pragma once

#include <livecast/config.hpp>

#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

LIVECAST_BEGIN_NAMESPACE

// True when `text` is exactly one JSON value (RFC 8259), with nothing but
// whitespace around it. Defined in src/json.cpp (RapidJSON, kept out of the
// public headers).
bool is_valid_json(std::string_view text) noexcept;

// Strict RFC 3629 UTF-8 check: a browser closes the WebSocket (1007) on a text frame that is not.
bool is_valid_utf8(std::string_view text) noexcept;

// Appends `s` to `out` as a JSON string literal, quotes included. Never
// writes invalid UTF-8: each maximal ill-formed subsequence of `s` (Unicode's
// "maximal subpart", as browsers decode) becomes one U+FFFD; well-formed
// sequences pass unchanged. Defined in src/json.cpp.
void append_json_string(std::string& out, std::string_view s);
// The length append_json_string() will produce for `s`, quotes included, to
// size a reserve: bytes that are not UTF-8 (each may become the 3 bytes of
// U+FFFD) make it fall short, which costs a reallocation, not correctness.
std::size_t json_string_size(std::string_view s) noexcept;

// A JSON value built in code:
//   Json::object({{"revenue", 1250.5}, {"currency", "EUR"}, {"tags", Json::array({"a", "b"})}})
// Objects keep insertion order. dump() always yields valid JSON: non-finite
// numbers become null, strings are escaped, bytes that are not UTF-8 become
// U+FFFD (see append_json_string; valid_utf8() tells whether any will).
class Json {
 public:
  using Array = std::vector<Json>;
  using Member = std::pair<std::string, Json>;
  using Object = std::vector<Member>;

  Json() noexcept : value_(nullptr) {}
  Json(std::nullptr_t) noexcept : value_(nullptr) {}
  Json(bool b) noexcept : value_(b) {}
  Json(int v) noexcept : value_(static_cast<std::int64_t>(v)) {}
  Json(long v) noexcept : value_(static_cast<std::int64_t>(v)) {}
  Json(long long v) noexcept : value_(static_cast<std::int64_t>(v)) {}
  Json(unsigned v) noexcept : value_(static_cast<std::int64_t>(v)) {}
  Json(unsigned long v) noexcept : Json(static_cast<unsigned long long>(v)) {}
  // Values above INT64_MAX become doubles (JSON numbers have no integer width).
  Json(unsigned long long v) noexcept {
    if (v > static_cast<unsigned long long>(INT64_MAX))
      value_ = static_cast<double>(v);
    else
      value_ = static_cast<std::int64_t>(v);
  }
  Json(double v) noexcept : value_(v) {}
  Json(const char* s) : value_(std::string(s)) {}
  Json(std::string s) noexcept : value_(std::move(s)) {}
  Json(std::string_view s) : value_(std::string(s)) {}

  static Json array(std::initializer_list<Json> items = {}) { return Json(Array(items)); }
  static Json array(Array items) { return Json(std::move(items)); }
  static Json object(std::initializer_list<Member> members = {}) { return Json(Object(members)); }
  static Json object(Object members) { return Json(std::move(members)); }

  // Appends to an array or object built earlier; a no-op on other kinds.
  Json& push_back(Json item) {
    if (auto* a = std::get_if<Array>(&value_)) a->push_back(std::move(item));
    return *this;
  }
  Json& set(std::string key, Json item) {
    if (auto* o = std::get_if<Object>(&value_)) o->emplace_back(std::move(key), std::move(item));
    return *this;
  }

  // True when every string and object key inside is valid UTF-8, i.e. when
  // dump() will not have to replace anything. Broker::publish refuses a value
  // for which this is false rather than publish altered data.
  bool valid_utf8() const {
    struct Visitor {
      bool operator()(std::nullptr_t) const noexcept { return true; }
      bool operator()(bool) const noexcept { return true; }
      bool operator()(std::int64_t) const noexcept { return true; }
      bool operator()(double) const noexcept { return true; }
      bool operator()(const std::string& s) const noexcept { return is_valid_utf8(s); }
      bool operator()(const Array& a) const {
        for (const Json& item : a)
          if (!item.valid_utf8()) return false;
        return true;
      }
      bool operator()(const Object& o) const {
        for (const Member& m : o)
          if (!is_valid_utf8(m.first) || !m.second.valid_utf8()) return false;
        return true;
      }
    };
    return std::visit(Visitor{}, value_);
  }

  std::string dump() const {
    std::string out;
    dump_to(out);
    return out;
  }

  void dump_to(std::string& out) const {
    struct Visitor {
      std::string& out;
      void operator()(std::nullptr_t) const { out += "null"; }
      void operator()(bool b) const { out += b ? "true" : "false"; }
      void operator()(std::int64_t v) const { out += std::to_string(v); }
      void operator()(double v) const {
        if (!std::isfinite(v)) {
          out += "null";
          return;
        }
        // Shortest text that reads back identically; locale-independent.
        char buf[32];
        auto r = std::to_chars(buf, buf + sizeof buf, v);
        out.append(buf, r.ptr);
      }
      void operator()(const std::string& s) const { append_json_string(out, s); }
      void operator()(const Array& a) const {
        out.push_back('[');
        for (std::size_t i = 0; i < a.size(); ++i) {
          if (i) out.push_back(',');
          a[i].dump_to(out);
        }
        out.push_back(']');
      }
      void operator()(const Object& o) const {
        out.push_back('{');
        for (std::size_t i = 0; i < o.size(); ++i) {
          if (i) out.push_back(',');
          append_json_string(out, o[i].first);
          out.push_back(':');
          o[i].second.dump_to(out);
        }
        out.push_back('}');
      }
    };
    std::visit(Visitor{out}, value_);
  }

 private:
  explicit Json(Array a) : value_(std::move(a)) {}
  explicit Json(Object o) : value_(std::move(o)) {}

  std::variant<std::nullptr_t, bool, std::int64_t, double, std::string, Array, Object> value_;
};

LIVECAST_END_NAMESPACE
