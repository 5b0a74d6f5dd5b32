#include <livecast/json.hpp>
#include <livecast/protocol.hpp>

#include <doctest/doctest.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <memory>
#include <string>

using namespace livecast;
using namespace std::string_literals;

namespace {

const Protocol& v1() {
  static const std::shared_ptr<const Protocol> protocol = make_livecast_v1_protocol();
  return *protocol;
}

// Decodes a message that must be refused; returns the result for more checks.
DecodeResult refused(const std::string& message, Errc expected) {
  DecodeResult r = v1().decode(message);
  CAPTURE(message);
  CHECK_FALSE(r.request.has_value());
  CHECK(r.error == expected);
  CHECK_FALSE(r.message.empty());
  return r;
}

ClientRequest accepted(const std::string& message) {
  DecodeResult r = v1().decode(message);
  CAPTURE(message);
  CAPTURE(r.message);
  REQUIRE(r.request.has_value());
  CHECK(r.error == Errc::ok);
  CHECK(r.id == r.request->id);
  return *r.request;
}

Publication publication(std::string topic, std::uint64_t offset, std::string data) {
  return Publication{std::move(topic), offset, std::make_shared<const std::string>(std::move(data)), "e"};
}

}  // namespace

TEST_CASE("the protocol is called livecast.v1 and is one shared instance") {
  CHECK(v1().name() == "livecast.v1");
  CHECK(make_livecast_v1_protocol()->name() == "livecast.v1");
}

TEST_CASE("subscribe") {
  ClientRequest r = accepted(R"({"op":"subscribe","id":1,"topic":"kpi.revenue"})");
  CHECK(r.op == ClientRequest::Op::subscribe);
  CHECK(r.id == 1);
  CHECK(r.topic == "kpi.revenue");
  CHECK_FALSE(r.recover.has_value());
  CHECK(r.data.empty());
}

TEST_CASE("subscribe with recover") {
  ClientRequest r =
      accepted(R"( { "topic" : "kpi.revenue", "recover" : {"offset":120, "epoch":"abc"}, "op":"subscribe", "id":7 } )");
  CHECK(r.op == ClientRequest::Op::subscribe);
  CHECK(r.id == 7);
  CHECK(r.topic == "kpi.revenue");
  REQUIRE(r.recover.has_value());
  CHECK(r.recover->epoch == "abc");
  CHECK(r.recover->offset == 120);

  ClientRequest zero = accepted(R"({"op":"subscribe","topic":"t","recover":{"epoch":"","offset":0}})");
  REQUIRE(zero.recover.has_value());
  CHECK(zero.recover->epoch.empty());
  CHECK(zero.recover->offset == 0);

  ClientRequest big =
      accepted(R"({"op":"subscribe","topic":"t","recover":{"epoch":"e","offset":18446744073709551615}})");
  REQUIRE(big.recover.has_value());
  CHECK(big.recover->offset == std::numeric_limits<std::uint64_t>::max());
}

TEST_CASE("subscribe with recent history: count and seconds, either or both; malformed ones refused") {
  ClientRequest both = accepted(R"({"op":"subscribe","topic":"t","recent":{"seconds":120,"count":300,"x":[1]}})");
  REQUIRE(both.recent.has_value());
  CHECK(both.recent->count == 300);
  CHECK(both.recent->max_age == std::chrono::seconds(120));
  CHECK_FALSE(both.recover.has_value());

  ClientRequest count = accepted(R"({"op":"subscribe","topic":"t","recent":{"count":5}})");
  REQUIRE(count.recent.has_value());
  CHECK(count.recent->count == 5);
  CHECK(count.recent->max_age.count() == 0);

  ClientRequest none = accepted(R"({"op":"subscribe","topic":"t","recent":{}})");
  CHECK(none.recent == RecentHistory{});

  // With recover, both are read; the broker lets recover win.
  ClientRequest with_recover =
      accepted(R"({"op":"subscribe","topic":"t","recent":{"count":2},"recover":{"epoch":"e","offset":3}})");
  CHECK(with_recover.recent.has_value());
  CHECK(with_recover.recover.has_value());

  // Huge values are bounded, not overflowed.
  ClientRequest huge =
      accepted(R"({"op":"subscribe","topic":"t","recent":{"count":18446744073709551615,"seconds":18446744073709551615}})");
  REQUIRE(huge.recent.has_value());
  CHECK(huge.recent->count == (std::size_t{1} << 30));
  CHECK(huge.recent->max_age > std::chrono::hours(24 * 365));

  // Ignored on other ops, as recover is.
  CHECK_FALSE(accepted(R"({"op":"unsubscribe","topic":"t","recent":{"count":1}})").recent.has_value());

  refused(R"({"op":"subscribe","topic":"t","recent":5})", Errc::bad_request);
  refused(R"({"op":"subscribe","topic":"t","recent":[1]})", Errc::bad_request);
  refused(R"({"op":"subscribe","topic":"t","recent":{"count":-1}})", Errc::bad_request);
  refused(R"({"op":"subscribe","topic":"t","recent":{"count":1.5}})", Errc::bad_request);
  refused(R"({"op":"subscribe","topic":"t","recent":{"seconds":"60"}})", Errc::bad_request);
  refused(R"({"op":"subscribe","topic":"t","recent":{"seconds":{}}})", Errc::bad_request);
}

TEST_CASE("unsubscribe, ping and requests without an id") {
  ClientRequest u = accepted(R"({"op":"unsubscribe","id":2,"topic":"kpi.revenue"})");
  CHECK(u.op == ClientRequest::Op::unsubscribe);
  CHECK(u.id == 2);
  CHECK(u.topic == "kpi.revenue");

  ClientRequest p = accepted(R"({"op":"ping","id":4})");
  CHECK(p.op == ClientRequest::Op::ping);
  CHECK(p.id == 4);

  ClientRequest anonymous = accepted(R"({"op":"ping"})");
  CHECK_FALSE(anonymous.id.has_value());

  ClientRequest quiet = accepted(R"({"op":"subscribe","topic":"t"})");
  CHECK_FALSE(quiet.id.has_value());
}

TEST_CASE("ids: any integer that fits int64") {
  CHECK(accepted(R"({"op":"ping","id":0})").id == 0);
  CHECK(accepted(R"({"op":"ping","id":-5})").id == -5);
  CHECK(accepted(R"({"op":"ping","id":9223372036854775807})").id == std::numeric_limits<std::int64_t>::max());
  CHECK(accepted(R"({"op":"ping","id":-9223372036854775808})").id == std::numeric_limits<std::int64_t>::min());
  CHECK(accepted(R"({"op":"ping","id":4294967296})").id == 4294967296LL);
}

TEST_CASE("publish re-serialises data compactly, nested values included") {
  ClientRequest r = accepted(
      R"({"op":"publish","id":3,"topic":"kpi.revenue","data": { "total" : 1250.5, "tags" : [ "a", "b\"c", null, true ], "n" : {"deep":[[[-1]]]}, "s":"\u00e9\n" } })");
  CHECK(r.op == ClientRequest::Op::publish);
  CHECK(r.id == 3);
  CHECK(r.topic == "kpi.revenue");
  CHECK(r.data ==
        "{\"total\":1250.5,\"tags\":[\"a\",\"b\\\"c\",null,true],\"n\":{\"deep\":[[[-1]]]},\"s\":\"\xc3\xa9\\n\"}");
  CHECK(is_valid_json(r.data));
}

TEST_CASE("publish accepts any JSON value as data") {
  CHECK(accepted(R"({"op":"publish","topic":"t","data":42})").data == "42");
  CHECK(accepted(R"({"op":"publish","topic":"t","data":null})").data == "null");
  CHECK(accepted(R"({"op":"publish","topic":"t","data":false})").data == "false");
  CHECK(accepted(R"({"op":"publish","topic":"t","data":"text"})").data == "\"text\"");
  CHECK(accepted(R"({"op":"publish","topic":"t","data":0.1})").data == "0.1");
  CHECK(accepted(R"({"op":"publish","topic":"t","data":[]})").data == "[]");
  CHECK(accepted(R"({"op":"publish","topic":"t","data":{}})").data == "{}");
  CHECK(accepted(R"({"op":"publish","topic":"t","data":"nul\u0000"})").data == R"("nul\u0000")");
  // A repeated key replaces the earlier value, as JSON.parse does.
  CHECK(accepted(R"({"op":"publish","topic":"t","data":[1,2],"data":{"x":1}})").data == R"({"x":1})");
}

TEST_CASE("publish passes numbers through as the client wrote them") {
  // Parsed to a double and written back, these changed value (found by
  // fuzz_livecast_v1): RapidJSON's default conversion missed the nearest
  // double, drifting again on every pass, and its full-precision one read
  // 0e41 as 2.6e123.
  for (const std::string number : {"25441447000001444445", "2.2250738585072011e-308", "9007199254740993.5", "0e41",
                                   "-0", "1E+2", "-0.000e300", "1.7976931348623157e308"}) {
    CAPTURE(number);
    const std::string data = accepted(R"({"op":"publish","topic":"t","data":[)" + number + "]}").data;
    CHECK(data == "[" + number + "]");
    CHECK(is_valid_json(data));
  }
  // Integers still count as such where one is expected, and only there.
  CHECK(accepted(R"({"op":"ping","id":-0})").id == 0);
  CHECK(accepted(R"({"op":"subscribe","topic":"t","recover":{"epoch":"e","offset":-0}})").recover->offset == 0);
  refused(R"({"op":"subscribe","topic":"t","recover":{"epoch":"e","offset":1e2}})", Errc::bad_request);
  refused(R"({"op":"subscribe","topic":"t","recover":{"epoch":"e","offset":18446744073709551616}})", Errc::bad_request);
  refused(R"({"op":"ping","id":-9223372036854775809})", Errc::bad_request);
  // Out of a double's range: not JSON this server takes.
  refused(R"({"op":"publish","topic":"t","data":1e309})", Errc::invalid_json);
}

TEST_CASE("unknown fields are ignored, however they nest") {
  ClientRequest r = accepted(
      R"({"v":2,"op":"subscribe","extra":{"topic":"wrong","op":"x","recover":5,"data":[1]},"topic":"t","more":[{"id":"x"}],"id":9})");
  CHECK(r.op == ClientRequest::Op::subscribe);
  CHECK(r.topic == "t");
  CHECK(r.id == 9);
  CHECK_FALSE(r.recover.has_value());

  ClientRequest p = accepted(R"({"op":"publish","topic":"t","data":{"op":"x","topic":5},"later":{"a":[1]}})");
  CHECK(p.data == R"({"op":"x","topic":5})");

  ClientRequest rec =
      accepted(R"({"op":"subscribe","topic":"t","recover":{"epoch":"e","x":{"offset":-1},"offset":3}})");
  REQUIRE(rec.recover.has_value());
  CHECK(rec.recover->offset == 3);

  // Fields an op does not use are ignored too.
  ClientRequest ping = accepted(R"({"op":"ping","topic":5,"recover":"x","data":1})");
  CHECK(ping.op == ClientRequest::Op::ping);
  ClientRequest unsub = accepted(R"({"op":"unsubscribe","topic":"t","recover":7})");
  CHECK_FALSE(unsub.recover.has_value());
}

TEST_CASE("text that is not JSON is invalid_json") {
  for (const std::string& message :
       {""s, " "s, "not json"s, "{"s, R"({"op":"ping"} x)"s, R"({"op":"ping"}{})"s, R"({"op":"ping",})"s,
        "{\"op\":\"ping\"}\0"s, "{\"op\":\"pi\xffng\"}"s, R"({"op":"\ud800"})"s}) {
    DecodeResult r = refused(message, Errc::invalid_json);
    CHECK_FALSE(r.id.has_value());
  }
  CHECK(v1().decode("{").message.find("not valid JSON") == 0);
  CHECK(v1().decode(std::string_view()).error == Errc::invalid_json);
}

TEST_CASE("JSON that is not an object is bad_request") {
  for (const char* message : {"[]", "[{\"op\":\"ping\"}]", "1", "\"ping\"", "null", "true"}) {
    DecodeResult r = refused(message, Errc::bad_request);
    CHECK(r.message.find("object") != std::string::npos);
  }
}

TEST_CASE("op missing or not a string is bad_request, with the id when readable") {
  DecodeResult missing = refused(R"({"id":5,"topic":"t"})", Errc::bad_request);
  CHECK(missing.id == 5);
  CHECK(missing.message == "\"op\" must be a string");
  for (const char* message : {R"({"op":1,"id":5})", R"({"op":null,"id":5})", R"({"op":["ping"],"id":5})",
                              R"({"op":{"name":"ping"},"id":5})"}) {
    DecodeResult r = refused(message, Errc::bad_request);
    CHECK(r.id == 5);
  }
}

TEST_CASE("an unknown op is unknown_op, with the id") {
  DecodeResult r = refused(R"({"op":"launch","id":11,"topic":"t"})", Errc::unknown_op);
  CHECK(r.id == 11);
  CHECK(r.message.find("launch") == std::string::npos);  // client text is not echoed
  DecodeResult no_id = refused(R"({"op":"Subscribe","topic":"t"})", Errc::unknown_op);
  CHECK_FALSE(no_id.id.has_value());
  refused(R"({"op":"","topic":"t"})", Errc::unknown_op);
}

TEST_CASE("an id that is not an int64 is bad_request") {
  for (const char* message :
       {R"({"op":"ping","id":"1"})", R"({"op":"ping","id":1.5})", R"({"op":"ping","id":1e3})",
        R"({"op":"ping","id":1.0})", R"({"op":"ping","id":null})", R"({"op":"ping","id":true})",
        R"({"op":"ping","id":[1]})", R"({"op":"ping","id":{"n":1}})", R"({"op":"ping","id":9223372036854775808})",
        R"({"op":"ping","id":-9223372036854775809})", R"({"op":"subscribe","id":"x","topic":"t"})"}) {
    DecodeResult r = refused(message, Errc::bad_request);
    CHECK_FALSE(r.id.has_value());
    CHECK(r.message.find("\"id\"") != std::string::npos);
  }
}

TEST_CASE("a missing, non-string or empty topic is bad_request") {
  for (const char* op : {"subscribe", "unsubscribe", "publish"}) {
    for (const std::string& topic : {""s, R"(,"topic":"")"s, R"(,"topic":5)"s, R"(,"topic":null)"s,
                                     R"(,"topic":["t"])"s, R"(,"topic":{"name":"t"})"s}) {
      std::string message = R"({"op":")"s + op + R"(","id":21,"data":1)" + topic + "}";
      DecodeResult r = refused(message, Errc::bad_request);
      CHECK(r.id == 21);
      CHECK(r.message == "\"topic\" must be a non-empty string");
    }
  }
}

TEST_CASE("a topic with a lone surrogate is invalid_topic") {
  DecodeResult r = refused(R"({"op":"subscribe","id":1,"topic":"a\udc00"})", Errc::invalid_topic);
  CHECK(r.id == 1);
  // A proper pair is fine.
  CHECK(accepted(R"({"op":"subscribe","topic":"\ud83d\ude00"})").topic == "\xf0\x9f\x98\x80");
}

TEST_CASE("a malformed recover is bad_request") {
  for (const char* recover :
       {R"("abc")", "5", "null", "[]", R"(["abc",1])", "{}", R"({"offset":1})", R"({"epoch":"e"})",
        R"({"epoch":1,"offset":1})", R"({"epoch":null,"offset":1})", R"({"epoch":{"e":1},"offset":1})",
        R"({"epoch":"e","offset":-1})", R"({"epoch":"e","offset":1.5})", R"({"epoch":"e","offset":"1"})",
        R"({"epoch":"e","offset":[1]})", R"({"epoch":"e","offset":18446744073709551616})",
        R"({"epoch":"e","offset":null})"}) {
    std::string message = R"({"op":"subscribe","id":8,"topic":"t","recover":)"s + recover + "}";
    DecodeResult r = refused(message, Errc::bad_request);
    CHECK(r.id == 8);
    CHECK(r.message.find("recover") != std::string::npos);
  }
}

TEST_CASE("publish without data is bad_request; data with a lone surrogate is invalid_payload") {
  DecodeResult missing = refused(R"({"op":"publish","id":3,"topic":"t"})", Errc::bad_request);
  CHECK(missing.id == 3);
  CHECK(missing.message.find("\"data\"") != std::string::npos);
  DecodeResult nested_only = refused(R"({"op":"publish","id":3,"topic":"t","x":{"data":1}})", Errc::bad_request);
  CHECK(nested_only.id == 3);
  DecodeResult surrogate =
      refused(R"({"op":"publish","id":4,"topic":"t","data":{"k":["\udfff"]}})", Errc::invalid_payload);
  CHECK(surrogate.id == 4);
}

TEST_CASE("deep nesting is handled without recursion") {
  const std::string deep_open(1000, '[');
  const std::string deep_close(1000, ']');
  // Unbalanced: not JSON.
  refused(R"({"op":"publish","topic":"t","data":)" + deep_open + "}", Errc::invalid_json);
  // Balanced and 1000 deep: published as is.
  ClientRequest r = accepted(R"({"op":"publish","topic":"t","data":)" + deep_open + "1" + deep_close + "}");
  CHECK(r.data == deep_open + "1" + deep_close);
  // Deep in an ignored field.
  CHECK(accepted(R"({"op":"ping","x":)" + deep_open + deep_close + "}").op == ClientRequest::Op::ping);
  // Far deeper than any stack would survive by recursion.
  const std::string very_deep(200000, '[');
  refused(very_deep, Errc::invalid_json);
  ClientRequest huge = accepted(R"({"op":"publish","topic":"t","data":)" + very_deep + std::string(200000, ']') + "}");
  CHECK(huge.data.size() == 400000);
}

TEST_CASE("encode_publication") {
  FramePtr f = v1().encode_publication(publication("kpi.revenue", 121, R"({"total":1250.5})"));
  REQUIRE(static_cast<bool>(f));
  CHECK(f->bytes == R"({"topic":"kpi.revenue","offset":121,"data":{"total":1250.5}})");
  CHECK(f->topic == "kpi.revenue");
  CHECK(f->offset == 121);
  CHECK(f->kind == Frame::Kind::publication);
  CHECK(f->is_publication());
  CHECK(is_valid_json(f->bytes));

  FramePtr max = v1().encode_publication(publication("t", std::numeric_limits<std::uint64_t>::max(), "null"));
  CHECK(max->bytes == R"({"topic":"t","offset":18446744073709551615,"data":null})");

  FramePtr zero = v1().encode_publication(publication("t", 0, "[1,2]"));
  CHECK(zero->bytes == R"({"topic":"t","offset":0,"data":[1,2]})");

  Publication no_data{"t", 1, nullptr, "e"};
  CHECK(v1().encode_publication(no_data)->bytes == R"({"topic":"t","offset":1,"data":null})");
}

TEST_CASE("encode_publication escapes the topic") {
  const std::string topic = "a\"b\\c\nd\x01\xc3\xa9";
  FramePtr f = v1().encode_publication(publication(topic, 5, "1"));
  CHECK(f->bytes == "{\"topic\":\"a\\\"b\\\\c\\nd\\u0001\xc3\xa9\",\"offset\":5,\"data\":1}");
  CHECK(f->topic == topic);
  CHECK(is_valid_json(f->bytes));
}

TEST_CASE("a decoded publish round-trips into a publication frame") {
  ClientRequest r = accepted(R"({"op":"publish","topic":"quo\"te","data":{"v":[1, 2.5, "x"]}})");
  FramePtr f = v1().encode_publication(publication(r.topic, 1, r.data));
  CHECK(f->bytes == R"({"topic":"quo\"te","offset":1,"data":{"v":[1,2.5,"x"]}})");
  CHECK(is_valid_json(f->bytes));
}

TEST_CASE("replies echo the id and carry their metadata; without an id a subscription start is a notice") {
  FramePtr subscribed = v1().encode_subscribed(1, "kpi.revenue", StreamPosition{"e1", 120}, true);
  REQUIRE(static_cast<bool>(subscribed));
  CHECK(subscribed->bytes == R"({"id":1,"ok":{"topic":"kpi.revenue","epoch":"e1","offset":120,"recovered":true}})");
  CHECK(subscribed->kind == Frame::Kind::reply);
  CHECK(subscribed->request_id == 1);
  CHECK(subscribed->topic == "kpi.revenue");
  REQUIRE(subscribed->starts_subscription());
  CHECK(*subscribed->head == StreamPosition{"e1", 120});
  CHECK(subscribed->recovered);
  CHECK_FALSE(subscribed->is_publication());
  CHECK(is_valid_json(subscribed->bytes));

  FramePtr notice = v1().encode_subscribed(std::nullopt, "org:\"acme\"", StreamPosition{"e1", 0}, false);
  CHECK(notice->bytes == R"({"ok":{"topic":"org:\"acme\"","epoch":"e1","offset":0,"recovered":false}})");
  CHECK(notice->kind == Frame::Kind::notice);
  CHECK_FALSE(notice->request_id.has_value());
  CHECK(notice->starts_subscription());
  CHECK_FALSE(notice->recovered);
  CHECK(is_valid_json(notice->bytes));

  FramePtr published = v1().encode_published(3, "kpi.revenue", 122);
  CHECK(published->bytes == R"({"id":3,"ok":{"topic":"kpi.revenue","offset":122}})");
  CHECK(published->kind == Frame::Kind::reply);
  CHECK(published->offset == 122);
  CHECK_FALSE(published->starts_subscription());

  FramePtr unsubscribed = v1().encode_unsubscribed(4, "t");
  CHECK(unsubscribed->bytes == R"({"id":4,"ok":{"topic":"t"}})");
  CHECK(unsubscribed->request_id == 4);

  CHECK(v1().encode_pong(-7)->bytes == R"({"id":-7,"ok":{}})");
  CHECK(v1().encode_pong(std::numeric_limits<std::int64_t>::min())->bytes == R"({"id":-9223372036854775808,"ok":{}})");
}

TEST_CASE("a batch of messages is a JSON object; a poll's carries the cursor") {
  MessageBatchFraming poll = v1().batch_framing(std::string_view("t:e:1"));
  CHECK(poll.content_type == "application/json");
  const std::string body = poll.head + R"({"id":1,"ok":{}})" + poll.separator + R"({"id":2,"ok":{}})" + poll.tail;
  CHECK(body == R"({"cursor":"t:e:1","messages":[{"id":1,"ok":{}},{"id":2,"ok":{}}]})");
  MessageBatchFraming post = v1().batch_framing(std::nullopt);
  CHECK(post.head + post.tail == R"({"messages":[]})");
}

TEST_CASE("encode_error carries the wire code and the escaped message") {
  FramePtr e = v1().encode_error(1, Errc::forbidden, "not allowed to subscribe to this topic");
  REQUIRE(static_cast<bool>(e));
  CHECK(e->bytes == R"({"id":1,"error":{"code":"forbidden","message":"not allowed to subscribe to this topic"}})");
  CHECK(e->kind == Frame::Kind::error);
  CHECK(e->request_id == 1);
  CHECK(is_valid_json(e->bytes));

  FramePtr anonymous = v1().encode_error(std::nullopt, Errc::rate_limited, "too \"many\"\n");
  CHECK(anonymous->bytes == R"({"error":{"code":"rate_limited","message":"too \"many\"\n"}})");
  CHECK(is_valid_json(anonymous->bytes));

  CHECK(v1().encode_error(2, Errc::bad_request, "")->bytes ==
        R"({"id":2,"error":{"code":"bad_request","message":""}})");
}

TEST_CASE("a decode error encodes into a reply the client can match") {
  DecodeResult r = v1().decode(R"({"op":"subscribe","id":42})");
  REQUIRE_FALSE(r.request.has_value());
  FramePtr e = v1().encode_error(r.id, r.error, r.message);
  CHECK(e->bytes == R"({"id":42,"error":{"code":"bad_request","message":"\"topic\" must be a non-empty string"}})");
  CHECK(is_valid_json(e->bytes));

  DecodeResult bad = v1().decode("{\"op\":");
  FramePtr invalid = v1().encode_error(bad.id, bad.error, bad.message);
  CHECK(invalid->bytes.rfind(R"({"error":{"code":"invalid_json","message":"not valid JSON: )", 0) == 0);
  CHECK(is_valid_json(invalid->bytes));
}

TEST_CASE("refresh carries a token; its reply says until when the session lasts") {
  ClientRequest r = accepted(R"({"op":"refresh","id":9,"token":"eyJ.a.b"})");
  CHECK(r.op == ClientRequest::Op::refresh);
  CHECK(r.id == 9);
  CHECK(r.token == "eyJ.a.b");
  CHECK(r.topic.empty());
  CHECK(refused(R"({"op":"refresh","id":9})", Errc::bad_request).id == 9);
  refused(R"({"op":"refresh","token":""})", Errc::bad_request);
  refused(R"({"op":"refresh","token":42})", Errc::bad_request);
  const auto at = std::chrono::system_clock::time_point(std::chrono::milliseconds(1767225600123));
  auto reply = v1().encode_refreshed(9, at);
  CHECK(reply->bytes == R"({"id":9,"ok":{"expires_at":1767225600123}})");
  CHECK(reply->kind == Frame::Kind::reply);
  CHECK(reply->request_id == 9);
  CHECK(v1().encode_refreshed(3, std::nullopt)->bytes == R"({"id":3,"ok":{}})");
}
