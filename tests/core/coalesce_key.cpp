// coalesce_key: the key TopicDelivery::coalesce_by names, read from a
// publication's JSON without a DOM. Only a top-level member's string or
// number is a key; anything else, or text broken before it, is none.
#include "coalesce_key.hpp"

#include <doctest/doctest.h>

#include <string>

using livecast::detail::coalesce_key;

TEST_CASE("a top-level string member is the key, after a quote, with its escapes decoded") {
  CHECK(coalesce_key(R"({"merchant":"m-17","total":12.5})", "merchant") == "\"m-17");
  CHECK(coalesce_key(R"({"total":12.5,"merchant":"m-17"})", "merchant") == "\"m-17");
  // Two spellings of one string are one key.
  CHECK(coalesce_key(R"({"merchant":"m\u002d17"})", "merchant") == "\"m-17");
  CHECK(coalesce_key(R"({"merchant":"a\"b\\c"})", "merchant") == "\"a\"b\\c");
  CHECK(coalesce_key(R"({"merchant":"caf\u00e9"})", "merchant") == "\"caf\xc3\xa9");
  CHECK(coalesce_key(R"( { "merchant" : "" } )", "merchant") == "\"");  // the empty string is a key too
  // An escaped member name is still that name.
  CHECK(coalesce_key(R"({"m\u0065rchant":"x"})", "merchant") == "\"x");
}

TEST_CASE("a number is the key as written, apart from the string of the same digits") {
  CHECK(coalesce_key(R"({"id":42,"v":1})", "id") == "42");
  CHECK(coalesce_key(R"({"id":-1.50e3})", "id") == "-1.50e3");
  CHECK(coalesce_key(R"({"id":1.0})", "id") != coalesce_key(R"({"id":1})", "id"));
  CHECK(coalesce_key(R"({"id":"42"})", "id") != coalesce_key(R"({"id":42})", "id"));
}

TEST_CASE("a member of the same name inside a nested value is not the key") {
  CHECK(coalesce_key(R"({"row":{"merchant":"inner"}})", "merchant").empty());
  CHECK(coalesce_key(R"({"rows":[{"merchant":"inner"}],"v":1})", "merchant").empty());
  CHECK(coalesce_key(R"({"row":{"merchant":"inner"},"merchant":"outer"})", "merchant") == "\"outer");
  CHECK(coalesce_key(R"({"a":[1,"merchant",{"merchant":2}],"merchant":3})", "merchant") == "3");
  // A string value spelled like the member's name is no member.
  CHECK(coalesce_key(R"({"name":"merchant","other":"x"})", "merchant").empty());
}

TEST_CASE("no key: a missing member, a value that is no string or number, a root that is no object") {
  CHECK(coalesce_key(R"({"total":1})", "merchant").empty());
  CHECK(coalesce_key(R"({})", "merchant").empty());
  for (const char* value : {"null", "true", "false", "{}", "[\"m\"]", "{\"merchant\":\"x\"}"}) {
    CAPTURE(value);
    CHECK(coalesce_key(std::string(R"({"merchant":)") + value + "}", "merchant").empty());
  }
  for (const char* root : {R"("merchant")", "42", "null", R"([{"merchant":"x"}])", R"(["merchant","x"])"}) {
    CAPTURE(root);
    CHECK(coalesce_key(root, "merchant").empty());
  }
  CHECK(coalesce_key(R"({"merchant":"x"})", "").empty());  // coalesce_by off
  CHECK(coalesce_key("", "merchant").empty());
}

TEST_CASE("malformed text before the member's value ends gives no key") {
  for (const char* text : {R"({"merchant")", R"({"merchant":)", R"({"merchant":"unterminated)", R"({merchant:"x"})",
                           R"({"a":,"merchant":"x"})", R"({"a":1 "merchant":"x"})", R"({"merchant":"\x"})",
                           R"({"merchant":-})", "{", "garbage"}) {
    CAPTURE(text);
    CHECK(coalesce_key(text, "merchant").empty());
  }
  // The first member of the name counts; reading stops there.
  CHECK(coalesce_key(R"({"merchant":"first","merchant":"second"})", "merchant") == "\"first");
  CHECK(coalesce_key(R"({"merchant":"x", this is not read)", "merchant") == "\"x");
}
