#include <livecast/json.hpp>

#include <doctest/doctest.h>

#include <cstdint>
#include <limits>
#include <string>

using namespace livecast;
using namespace std::string_literals;

TEST_CASE("Json dumps scalars") {
  CHECK(Json().dump() == "null");
  CHECK(Json(nullptr).dump() == "null");
  CHECK(Json(true).dump() == "true");
  CHECK(Json(false).dump() == "false");
  CHECK(Json(0).dump() == "0");
  CHECK(Json(-42).dump() == "-42");
  CHECK(Json(42L).dump() == "42");
  CHECK(Json(std::numeric_limits<long long>::min()).dump() == "-9223372036854775808");
  CHECK(Json(std::numeric_limits<long long>::max()).dump() == "9223372036854775807");
  CHECK(Json(7u).dump() == "7");
  CHECK(Json(7ul).dump() == "7");
  CHECK(Json(7ull).dump() == "7");
}

TEST_CASE("Json dumps doubles in their shortest exact form, non-finite ones as null") {
  CHECK(Json(0.1).dump() == "0.1");
  CHECK(Json(1250.5).dump() == "1250.5");
  CHECK(Json(-2.5).dump() == "-2.5");
  CHECK(Json(1.0).dump() == "1");
  CHECK(Json(1e300).dump() == "1e+300");
  CHECK(std::stod(Json(0.1 + 0.2).dump()) == 0.1 + 0.2);  // needs all 17 digits
  CHECK(Json(std::numeric_limits<double>::quiet_NaN()).dump() == "null");
  CHECK(Json(std::numeric_limits<double>::infinity()).dump() == "null");
  CHECK(Json(-std::numeric_limits<double>::infinity()).dump() == "null");
  for (double v : {0.1, 1250.5, 1e300, 0.1 + 0.2, -2.5, 5e-324}) CHECK(is_valid_json(Json(v).dump()));
}

TEST_CASE("Json escapes strings") {
  CHECK(Json("plain").dump() == "\"plain\"");
  CHECK(Json(std::string("a\"b\\c")).dump() == R"("a\"b\\c")");
  CHECK(Json(std::string_view("\n\r\t\b\f")).dump() == R"("\n\r\t\b\f")");
  CHECK(Json("\x01\x1f"s).dump() == R"("\u0001\u001f")");
  CHECK(Json("nul\0byte"s).dump() == R"("nul\u0000byte")");
  CHECK(Json("caf\xc3\xa9 \xe2\x82\xac").dump() == "\"caf\xc3\xa9 \xe2\x82\xac\"");  // UTF-8 passes through
  CHECK(Json("/").dump() == "\"/\"");
  CHECK(is_valid_json(Json("\x01\"\\\n\x7f"s).dump()));
}

TEST_CASE("Json builds nested arrays and objects in insertion order") {
  Json value = Json::object({{"revenue", 1250.5},
                             {"currency", "EUR"},
                             {"tags", Json::array({"a", "b"})},
                             {"nested", Json::object({{"empty", Json::array()}, {"none", nullptr}})}});
  CHECK(value.dump() == R"({"revenue":1250.5,"currency":"EUR","tags":["a","b"],"nested":{"empty":[],"none":null}})");
  CHECK(is_valid_json(value.dump()));
  CHECK(Json::object().dump() == "{}");
  CHECK(Json::array().dump() == "[]");
  CHECK(Json::object({{"k\"ey", 1}}).dump() == R"({"k\"ey":1})");
}

TEST_CASE("Json push_back and set append; on other kinds they do nothing") {
  Json array = Json::array();
  array.push_back(1).push_back("two").push_back(Json::array({3}));
  CHECK(array.dump() == R"([1,"two",[3]])");

  Json object = Json::object();
  object.set("a", 1).set("b", Json::object()).set("a", 2);  // keys are not deduplicated
  CHECK(object.dump() == R"({"a":1,"b":{},"a":2})");

  Json number(5);
  number.push_back(1).set("x", 2);
  CHECK(number.dump() == "5");
  Json array_set = Json::array();
  array_set.set("x", 1);
  CHECK(array_set.dump() == "[]");
  Json object_push = Json::object();
  object_push.push_back(1);
  CHECK(object_push.dump() == "{}");
}

TEST_CASE("dump_to appends") {
  std::string out = "prefix:";
  Json::array({1, 2}).dump_to(out);
  CHECK(out == "prefix:[1,2]");
}

TEST_CASE("is_valid_json accepts one JSON value with surrounding whitespace") {
  for (const char* text :
       {"null", "true", "false", "0", "-1", "1.5e10", "\"s\"", "[]", "{}", " \t\r\n[1, {\"a\": [null]}] \n",
        R"({"a":"\u00e9\ud83d\ude00"})", "\"caf\xc3\xa9\"", "[\"\xf0\x9f\x98\x80\"]"}) {
    CAPTURE(text);
    CHECK(is_valid_json(text));
  }
}

TEST_CASE("is_valid_json rejects everything else") {
  const std::string rejected[] = {
      "",
      "   ",
      "{}{}",        // trailing value
      "[1] x",       // trailing garbage
      "[1]\0"s,      // a NUL after the value
      "\"a\0b\""s,   // raw NUL inside a string
      "{\"a\":1,}",  // trailing comma
      "[1,]",
      "{'a':1}",  // single quotes
      "{a:1}",    // unquoted key
      "[NaN]",
      "[Infinity]",
      "01",
      "[1",
      "{\"a\"}",
      "\"unterminated",
      "\"tab\there\"",  // raw control character in a string
      "// comment\n1",
      "\"\\x41\"",          // unknown escape
      R"("\ud800")",        // lone high surrogate
      R"("\ud800\u0041")",  // high surrogate without its low half
      "\"\xff\"",           // a byte that is never UTF-8
      "\"\xc3\"",           // truncated sequence
      "\"\xc0\xaf\"",       // overlong encoding
      "\"\xed\xa0\x80\"",   // a surrogate encoded directly
      "[\"\x80\"]",         // lone continuation byte
  };
  for (const std::string& text : rejected) {
    CAPTURE(text);
    CHECK_FALSE(is_valid_json(text));
  }
}

TEST_CASE("is_valid_json handles extreme nesting without overflowing the stack") {
  CHECK_FALSE(is_valid_json(std::string(100000, '[')));
  CHECK_FALSE(is_valid_json(std::string(100000, '{')));
  const std::string balanced = std::string(100000, '[') + std::string(100000, ']');
  CHECK(is_valid_json(balanced));
  std::string objects;
  for (int i = 0; i < 50000; ++i) objects += "{\"a\":";
  objects += "1";
  objects += std::string(50000, '}');
  CHECK(is_valid_json(objects));
}

TEST_CASE("is_valid_json reads only the given bytes") {
  const std::string text = "[1]garbage";
  CHECK(is_valid_json(std::string_view(text).substr(0, 3)));
  CHECK_FALSE(is_valid_json(std::string_view(text).substr(0, 2)));
}

TEST_CASE("is_valid_utf8 accepts well-formed UTF-8 of every length") {
  const std::string accepted[] = {
      "",
      "plain ascii",
      "nul\0byte"s,               // U+0000 is a code point like any other
      "\x7f",                     // last one-byte code point
      "\xc2\x80",                 // U+0080, first two-byte
      "\xdf\xbf",                 // U+07FF, last two-byte
      "\xe0\xa0\x80",             // U+0800, first three-byte
      "\xed\x9f\xbf",             // U+D7FF, just below the surrogates
      "\xee\x80\x80",             // U+E000, just above them
      "\xef\xbf\xbf",             // U+FFFF
      "\xf0\x90\x80\x80",         // U+10000, first four-byte
      "\xf4\x8f\xbf\xbf",         // U+10FFFF, the last code point
      "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
      std::string(15, 'a') + "\xc3\xa9" + std::string(15, 'b'),  // after and before whole ASCII words
  };
  for (const std::string& text : accepted) {
    CAPTURE(text);
    CHECK(is_valid_utf8(text));
  }
}

TEST_CASE("is_valid_utf8 rejects what RFC 3629 forbids") {
  const std::string rejected[] = {
      "\xc0\x80",           // overlong U+0000
      "a\xc0\xaf",          // overlong '/'
      "\xc1\xbf",           // overlong U+007F
      "\xe0\x80\x80",       // overlong three-byte
      "\xe0\x9f\xbf",       // overlong U+07FF
      "\xf0\x80\x80\x80",   // overlong four-byte
      "\xf0\x8f\xbf\xbf",   // overlong U+FFFF
      "\xed\xa0\x80",       // surrogate U+D800
      "\xed\xbf\xbf",       // surrogate U+DFFF
      "\xf4\x90\x80\x80",   // U+110000, above the last code point
      "\xf5\x80\x80\x80",   // lead bytes F5..FF never occur
      "\xf7\xbf\xbf\xbf",
      "\xf8\x88\x80\x80\x80",
      "\xfe",
      "\xff",
      "\x80",               // stray continuation bytes
      "\xbf",
      "a\x80z",
      "\xc3\xa9\xa9",
      "\xc3",               // truncated sequences
      "\xe2\x82",
      "\xf0\x9f\x98",
      "\xc3\x28",           // a lead byte followed by ASCII
      "\xe2\x28\xa1",
      "\xf0\x9f\x28\x80",
      std::string(20, 'a') + "\xc3",                       // truncated after whole ASCII words
      std::string(15, 'a') + "\xff" + std::string(15, 'b'),  // a bad byte between them
  };
  for (const std::string& text : rejected) {
    CAPTURE(text);
    CHECK_FALSE(is_valid_utf8(text));
  }
}

TEST_CASE("is_valid_utf8 reads only the given bytes") {
  const std::string text = "\xc3\xa9";
  CHECK(is_valid_utf8(text));
  CHECK_FALSE(is_valid_utf8(std::string_view(text).substr(0, 1)));
}

TEST_CASE("append_json_string replaces each maximal ill-formed subsequence with U+FFFD") {
  const std::string fffd = "\xef\xbf\xbd";
  auto quoted = [](std::string_view s) {
    std::string out;
    append_json_string(out, s);
    return out;
  };
  CHECK(quoted("a\xc3\x28") == "\"a" + fffd + "(\"");                 // the lead byte alone, the '(' kept
  CHECK(quoted("\xc0\xaf") == "\"" + fffd + fffd + "\"");             // C0 never starts a sequence
  CHECK(quoted("\xed\xa0\x80") == "\"" + fffd + fffd + fffd + "\"");  // ED A0 is not a prefix of any
  CHECK(quoted("\xf4\x90\x80\x80") == "\"" + fffd + fffd + fffd + fffd + "\"");
  CHECK(quoted("\xe2\x82") == "\"" + fffd + "\"");                    // a truncated prefix is one
  CHECK(quoted("\xf0\x9f\x98" "x") == "\"" + fffd + "x\"");
  CHECK(quoted("\xff\x80") == "\"" + fffd + fffd + "\"");
  CHECK(quoted("\"\xff\n") == "\"\\\"" + fffd + "\\n\"");             // escapes still apply around it
  CHECK(quoted("caf\xc3\xa9 \xf4\x8f\xbf\xbf") == "\"caf\xc3\xa9 \xf4\x8f\xbf\xbf\"");  // valid: unchanged
  for (const char* text : {"\xc3\x28", "\xed\xa0\x80", "\xf0\x9f\x98", "\x80", "ok\xf5"}) {
    CAPTURE(text);
    CHECK(is_valid_json(quoted(text)));
  }
  std::string out = "prefix:";
  append_json_string(out, "\xc3");
  CHECK(out == "prefix:\"" + fffd + "\"");
}

TEST_CASE("Json dump stays valid UTF-8; valid_utf8 says whether a value needed replacing") {
  const std::string fffd = "\xef\xbf\xbd";
  Json bad_string = Json::object({{"ok", "caf\xc3\xa9"}, {"list", Json::array({1, "\xed\xa0\x80"})}});
  Json bad_key = Json::object({{"\xc3\x28", 1}});
  CHECK(bad_string.dump() == "{\"ok\":\"caf\xc3\xa9\",\"list\":[1,\"" + fffd + fffd + fffd + "\"]}");
  CHECK(bad_key.dump() == "{\"" + fffd + "(\":1}");
  CHECK(is_valid_json(bad_string.dump()));
  CHECK(is_valid_json(bad_key.dump()));
  CHECK_FALSE(bad_string.valid_utf8());
  CHECK_FALSE(bad_key.valid_utf8());
  CHECK_FALSE(Json("\xff").valid_utf8());
  CHECK(Json::object({{"caf\xc3\xa9", Json::array({"\xf0\x9f\x98\x80", nullptr, true, 1, 2.5})}}).valid_utf8());
  CHECK(Json().valid_utf8());
  CHECK(Json(3).valid_utf8());
  CHECK(Json::array().valid_utf8());
}
