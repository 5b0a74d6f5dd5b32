// The body of POST /publish and its answers, without a socket: every shape
// the API accepts, every one it refuses with its code (and item), numbers
// kept as written, bounds, and garbage that must end in a refusal.
#include "publish_request.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

using namespace livecast;
using namespace livecast::detail;

namespace {

ParsedPublishRequest parse(std::string_view body, std::size_t max_items = 100) {
  return parse_publish_request(body, max_items);
}

}  // namespace

TEST_CASE("one publication: the topic and the data as compact JSON text") {
  auto r = parse(R"( { "topic" : "org:acme:kpi" , "data" : { "total" : 1250.5, "list":[1, "a", null, true] } } )");
  REQUIRE(r.error == Errc::ok);
  CHECK_FALSE(r.batch);
  REQUIRE(r.items.size() == 1);
  CHECK(r.items[0].topic == "org:acme:kpi");
  CHECK(r.items[0].data == R"({"total":1250.5,"list":[1,"a",null,true]})");
}

TEST_CASE("data may be any JSON value, null included; field order does not matter") {
  for (std::string_view data : {"null", "true", "0", "-1.5e-7", R"("text")", "[]", "{}"}) {
    CAPTURE(data);
    auto r = parse(R"({"data":)" + std::string(data) + R"(,"topic":"t"})");
    REQUIRE(r.error == Errc::ok);
    REQUIRE(r.items.size() == 1);
    CHECK(r.items[0].data == data);
    CHECK(r.items[0].topic == "t");
  }
}

TEST_CASE("numbers keep the text the client wrote (no round trip through a double)") {
  auto r = parse(R"({"topic":"t","data":[12345678901234567890123, 0.1, 1E300, 0e41, -0]})");
  REQUIRE(r.error == Errc::ok);
  CHECK(r.items[0].data == "[12345678901234567890123,0.1,1E300,0e41,-0]");
}

TEST_CASE("a batch: items in order, each with its own data") {
  auto r = parse(R"([{"topic":"a","data":1},{"topic":"b","data":{"x":[{"y":2}]}},{"topic":"a","data":"3"}])");
  REQUIRE(r.error == Errc::ok);
  CHECK(r.batch);
  REQUIRE(r.items.size() == 3);
  CHECK(r.items[0].topic == "a");
  CHECK(r.items[0].data == "1");
  CHECK(r.items[1].topic == "b");
  CHECK(r.items[1].data == R"({"x":[{"y":2}]})");
  CHECK(r.items[2].data == R"("3")");
}

TEST_CASE("escapes in topic and data are decoded, and written back as JSON") {
  auto r = parse(R"({"topic":"caf\u00e9","data":"line\nbreak \"q\" \u20ac"})");
  REQUIRE(r.error == Errc::ok);
  CHECK(r.items[0].topic == "caf\xC3\xA9");
  CHECK(r.items[0].data == "\"line\\nbreak \\\"q\\\" \xE2\x82\xAC\"");
}

TEST_CASE("text that is not JSON is invalid_json, with where") {
  const std::string_view bodies[] = {"", "not json", "{", R"({"topic":"t","data":1)", R"({"topic":"t","data":01})",
                                "[1,]", std::string_view("{\"topic\":\"t\",\"data\":\"\0\"}", 24),
                                "{\"topic\":\"t\",\"data\":\"\xC3\x28\"}", R"({"topic":"t","data":1} extra)"};
  for (std::string_view body : bodies) {
    CAPTURE(body);
    auto r = parse(body);
    CHECK(r.error == Errc::invalid_json);
    CHECK(r.message.rfind("not valid JSON", 0) == 0);
    CHECK(r.items.empty());
  }
}

TEST_CASE("wrong shapes are bad_request, naming the item in a batch") {
  struct Case {
    std::string_view body;
    std::string_view message_part;
    std::optional<std::size_t> item;
  };
  const Case cases[] = {
      {"42", "object or an array", std::nullopt},
      {R"("text")", "object or an array", std::nullopt},
      {"[]", "empty batch", std::nullopt},
      {R"({"data":1})", "missing \"topic\"", std::nullopt},
      {R"({"topic":"t"})", "missing \"data\"", std::nullopt},
      {R"({"topic":"","data":1})", "non-empty string", std::nullopt},
      {R"({"topic":7,"data":1})", "non-empty string", std::nullopt},
      {R"({"topic":["t"],"data":1})", "non-empty string", std::nullopt},
      {R"({"topic":"t","data":1,"date":2})", "unknown field \"date\"", std::nullopt},
      // Quoted back as printable ASCII: a key may hold a lone surrogate (not UTF-8).
      {"{\"topic\":\"t\",\"data\":1,\"\\udc00\xC3\xA9\":2}", "unknown field \"?????\"", std::nullopt},
      {R"({"topic":"t","topic":"u","data":1})", "given twice", std::nullopt},
      {R"({"topic":"t","data":1,"data":2})", "given twice", std::nullopt},
      {R"([{"topic":"t","data":1},{"topic":"t"}])", "missing \"data\"", 1},
      {R"([{"topic":"t","data":1},2])", "must be an object", 1},
      {R"([{"topic":"t","data":1},[{"topic":"t","data":1}]])", "must be an object", 1},
      {R"([{"topic":"t","data":1},{"topic":"t","data":1,"x":{}},{"data":1}])", "unknown field \"x\"", 1},
  };
  for (const Case& c : cases) {
    CAPTURE(c.body);
    auto r = parse(c.body);
    CHECK(r.error == Errc::bad_request);
    CHECK(r.message.find(c.message_part) != std::string::npos);
    CHECK(r.item == c.item);
    CHECK(r.items.empty());
  }
}

TEST_CASE("data with a lone surrogate escape is invalid_payload (it is not UTF-8)") {
  auto r = parse(R"([{"topic":"t","data":1},{"topic":"t","data":{"s":"\udc00"}}])");
  CHECK(r.error == Errc::invalid_payload);
  CHECK(r.item == 1);
  CHECK(r.items.empty());
}

TEST_CASE("a batch over max_items is message_too_large; up to it is taken") {
  std::string body = "[";
  for (int i = 0; i < 5; ++i) body += std::string(i ? "," : "") + R"({"topic":"t","data":)" + std::to_string(i) + "}";
  body += "]";
  CHECK(parse(body, 5).error == Errc::ok);
  CHECK(parse(body, 5).items.size() == 5);
  auto r = parse(body, 4);
  CHECK(r.error == Errc::message_too_large);
  CHECK(r.message.find("more than 4") != std::string::npos);
  CHECK(r.items.empty());
}

TEST_CASE("deep nesting in data is parsed without recursion") {
  const std::size_t depth = 100000;
  std::string body = R"({"topic":"t","data":)" + std::string(depth, '[') + std::string(depth, ']') + "}";
  auto r = parse(body);
  REQUIRE(r.error == Errc::ok);
  CHECK(r.items[0].data.size() == 2 * depth);
}

TEST_CASE("garbage never crashes: every refusal has a code and a message") {
  std::mt19937 random(12);
  const std::string seed = R"([{"topic":"a:b","data":{"k":[1,2.5,"x\u00e9",null]}},{"topic":"c","data":true}])";
  for (int round = 0; round < 3000; ++round) {
    std::string body = seed;
    const int edits = 1 + static_cast<int>(random() % 4);
    for (int e = 0; e < edits; ++e) {
      const std::size_t at = random() % body.size();
      switch (random() % 3) {
        case 0: body[at] = static_cast<char>(random() % 256); break;
        case 1: body.erase(at, 1 + random() % 8); break;
        default: body.insert(at, 1, "{}[],:\"\\0e-"[random() % 11]); break;
      }
      if (body.empty()) body = "x";
    }
    auto r = parse(body, 2);
    if (r.error == Errc::ok) {
      CHECK_FALSE(r.items.empty());
    } else {
      CHECK_FALSE(r.message.empty());
      CHECK(r.items.empty());
    }
  }
}

TEST_CASE("answers: the offsets, and errors with their item and the offsets taken") {
  CHECK(publish_answer_body({}) == R"({"offsets":[]})");
  CHECK(publish_answer_body({7, 8, 9}) == R"({"offsets":[7,8,9]})");
  CHECK(publish_error_body(Errc::forbidden, R"(not allowed to publish on "x")", 2) ==
        R"({"error":{"code":"forbidden","message":"not allowed to publish on \"x\"","item":2}})");
  CHECK(publish_error_body(Errc::bad_request, "m") == R"({"error":{"code":"bad_request","message":"m"}})");
  const std::vector<std::optional<std::uint64_t>> taken{3, std::nullopt, 5};
  CHECK(publish_error_body(Errc::backend_unavailable, "retry", std::nullopt, &taken) ==
        R"({"error":{"code":"backend_unavailable","message":"retry"},"offsets":[3,null,5]})");
}
