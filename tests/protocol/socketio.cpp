// The socket.io protocol's codec: every Engine.IO / Socket.IO packet a
// client may send (and many it may not), and the exact bytes of every frame.
#include <livecast/json.hpp>
#include <livecast/socketio.hpp>

#include <doctest/doctest.h>

#include <chrono>
#include <cstdint>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>

using namespace livecast;
using namespace std::string_literals;

namespace {

const Protocol& sio() {
  static const std::shared_ptr<const Protocol> protocol = make_socketio_protocol();
  return *protocol;
}

DecodeResult refused(const Protocol& p, const std::string& message, Errc expected) {
  DecodeResult r = p.decode(message);
  CAPTURE(message);
  CAPTURE(r.message);
  CHECK_FALSE(r.request.has_value());
  CHECK(r.error == expected);
  CHECK_FALSE(r.message.empty());
  CHECK(is_valid_utf8(r.message));
  return r;
}
DecodeResult refused(const std::string& message, Errc expected) { return refused(sio(), message, expected); }

ClientRequest accepted(const Protocol& p, const std::string& message) {
  DecodeResult r = p.decode(message);
  CAPTURE(message);
  CAPTURE(r.message);
  REQUIRE(r.request.has_value());
  CHECK(r.error == Errc::ok);
  CHECK(r.id == r.request->id);
  return *r.request;
}
ClientRequest accepted(const std::string& message) { return accepted(sio(), message); }

Publication publication(std::string topic, std::uint64_t offset, std::string data) {
  return Publication{std::move(topic), offset, std::make_shared<const std::string>(std::move(data)), "e"};
}

// A frame is one Engine.IO packet: a type digit, then (for "4x") JSON.
void check_json_after(const FramePtr& frame, std::size_t prefix) {
  REQUIRE(static_cast<bool>(frame));
  CAPTURE(frame->bytes);
  CHECK(is_valid_utf8(frame->bytes));
  CHECK(frame->bytes.find('\x1e') == std::string::npos);
  CHECK(is_valid_json(frame->bytes.substr(prefix)));
}

}  // namespace

TEST_CASE("the protocol is socket.io, connects in band, and frames polling payloads with \\x1e") {
  CHECK(sio().name() == "socket.io");
  CHECK(sio().name() == socketio_protocol_name);
  CHECK(sio().connects_in_band());
  for (auto cursor : {std::optional<std::string_view>{}, std::optional<std::string_view>{"t:e:1"}}) {
    MessageBatchFraming f = sio().batch_framing(cursor);
    CHECK(f.content_type == "text/plain; charset=UTF-8");
    CHECK(f.head.empty());
    CHECK(f.separator == "\x1e");
    CHECK(f.tail.empty());
  }
}

TEST_CASE("Engine.IO heartbeats, noop and close") {
  CHECK(accepted("3").op == ClientRequest::Op::heartbeat);
  CHECK(accepted("6").op == ClientRequest::Op::heartbeat);
  CHECK(accepted("2").op == ClientRequest::Op::heartbeat);  // a client's ping is tolerated
  CHECK(accepted("1").op == ClientRequest::Op::close);
  CHECK(accepted("1").may_return);  // the transport's close: a resumable session is kept
  CHECK_FALSE(accepted("41").may_return);  // DISCONNECT: the client leaves
  CHECK_FALSE(accepted("3").id.has_value());

  refused("", Errc::bad_request);
  refused("2probe", Errc::bad_request);  // the transport's upgrade, never a session's message
  refused("3probe", Errc::bad_request);
  refused("5", Errc::bad_request);
  refused("0", Errc::unknown_op);
  refused("0{\"sid\":\"x\"}", Errc::unknown_op);
  refused("7", Errc::unknown_op);
  refused("x", Errc::unknown_op);
  refused("{\"op\":\"ping\"}", Errc::unknown_op);  // a livecast.v1 message
  refused("1x", Errc::bad_request);
  refused("bAQID", Errc::bad_request);  // a base64 binary packet of polling
  DecodeResult bin = refused("bAQID", Errc::bad_request);
  CHECK(bin.message == "binary attachments are not supported");
}

TEST_CASE("CONNECT to the main namespace, with and without auth") {
  ClientRequest bare = accepted("40");
  CHECK(bare.op == ClientRequest::Op::connect);
  CHECK(bare.auth.empty());
  CHECK(bare.token.empty());
  CHECK_FALSE(bare.id.has_value());

  ClientRequest with = accepted(R"(40{"token":"abc.def","room":"x"})");
  CHECK(with.op == ClientRequest::Op::connect);
  CHECK(with.auth == R"({"token":"abc.def","room":"x"})");
  CHECK(with.token == "abc.def");

  // The auth object as sent, its whitespace outside trimmed.
  CHECK(accepted("40 { \"a\" : [1, 2.50] } \n").auth == R"({ "a" : [1, 2.50] })");
  // A token that is not a string is no token; the last of repeated keys wins.
  CHECK(accepted(R"(40{"token":12})").token.empty());
  CHECK(accepted(R"(40{"token":{"token":"inner"}})").token.empty());
  CHECK(accepted(R"(40{"token":"a","token":"b"})").token == "b");
  CHECK(accepted(R"(40{"token":"a","token":null})").token.empty());
  CHECK(accepted(R"(40{"x":{"token":"nested"}})").token.empty());
  CHECK(accepted(R"(40{"token":"\u00e9"})").token == "\xc3\xa9");

  // "/" may be named explicitly.
  CHECK(accepted("40/,").op == ClientRequest::Op::connect);
  CHECK(accepted("40/").op == ClientRequest::Op::connect);
  CHECK(accepted(R"(40/,{"token":"t"})").token == "t");
}

TEST_CASE("CONNECT refusals") {
  // Another namespace: refused in that namespace, where socket.io-client
  // listens for its connect_error; one that cannot be echoed safely, plainly.
  CHECK(refused(R"(40/admin,{"token":"t"})", Errc::bad_request).answer == R"(44/admin,{"message":"Invalid namespace"})");
  CHECK(refused("40/admin", Errc::bad_request).message == "Invalid namespace");
  CHECK(refused("40/admin,", Errc::bad_request).answer == R"(44/admin,{"message":"Invalid namespace"})");
  CHECK(refused("40/a\"b,", Errc::bad_request).answer == R"(44/a"b,{"message":"Invalid namespace"})");
  CHECK(refused("40/\xc3\xa9,", Errc::bad_request).answer.empty());
  CHECK(refused(R"(42/admin,["e"])", Errc::bad_request).answer.empty());  // only a CONNECT is answered so
  refused("40[]", Errc::bad_request);
  refused("40\"token\"", Errc::bad_request);
  refused("40null", Errc::bad_request);
  refused("40{", Errc::invalid_json);
  refused("40{\"token\":\"a\"}x", Errc::invalid_json);
  refused("40{\"token\":\"\xc3\x28\"}", Errc::invalid_json);  // not UTF-8
  refused("40{\"token\":\"a\0b\"}"s, Errc::invalid_json);      // a raw NUL
  refused("44{\"message\":\"no\"}", Errc::unknown_op);         // CONNECT_ERROR comes from servers
}

TEST_CASE("DISCONNECT and the client's acknowledgements") {
  CHECK(accepted("41").op == ClientRequest::Op::close);
  CHECK(accepted("41/,").op == ClientRequest::Op::close);
  refused("41/admin,", Errc::bad_request);
  refused("41{}", Errc::bad_request);

  CHECK(accepted("430[]").op == ClientRequest::Op::heartbeat);
  CHECK(accepted(R"(4312["ok",{"a":1}])").op == ClientRequest::Op::heartbeat);
  CHECK_FALSE(accepted("4312[]").id.has_value());  // nothing answers it
  refused("43[]", Errc::bad_request);          // no id
  // No payload (fuzz: regression-ack-empty-payload). An ACK's id counts the
  // server's emits: an error must not answer the client's emit of that number.
  CHECK_FALSE(refused("4312", Errc::invalid_json).id.has_value());
  CHECK_FALSE(refused("4312{}", Errc::bad_request).id.has_value());
  CHECK_FALSE(refused("43/admin,12[]", Errc::bad_request).id.has_value());
  CHECK_FALSE(refused("4012{", Errc::invalid_json).id.has_value());
  refused("4312  ", Errc::invalid_json);
  refused("4312{}", Errc::bad_request);        // not an array
  refused("4312[", Errc::invalid_json);
  refused("43/admin,1[]", Errc::bad_request);
}

TEST_CASE("binary packets, unknown types and empty messages") {
  for (const char* m : {"451-[\"e\",{\"_placeholder\":true,\"num\":0}]", "461-12[{\"_placeholder\":true,\"num\":0}]",
                        "45", "46"}) {
    DecodeResult r = refused(m, Errc::bad_request);
    CHECK(r.message == "binary attachments are not supported");
  }
  // A BINARY_EVENT's ack id is read, so the refusal answers the client's
  // acknowledgement; a BINARY_ACK's id is the server's and is not.
  CHECK(refused("451-0[\"e\",{\"_placeholder\":true,\"num\":0}]", Errc::bad_request).id == std::int64_t{0});
  CHECK(refused("452-17[\"e\"]", Errc::bad_request).id == std::int64_t{17});
  CHECK_FALSE(refused("451-[\"e\"]", Errc::bad_request).id.has_value());
  CHECK_FALSE(refused("451-/admin,3[\"e\"]", Errc::bad_request).id.has_value());
  CHECK_FALSE(refused("451-99999999999999999999999[\"e\"]", Errc::bad_request).id.has_value());
  CHECK_FALSE(refused("461-12[{\"_placeholder\":true,\"num\":0}]", Errc::bad_request).id.has_value());
  refused("4", Errc::bad_request);
  refused("47", Errc::unknown_op);
  refused("4x", Errc::unknown_op);
  refused("4[\"a\"]", Errc::unknown_op);
}

TEST_CASE("EVENT: a client event with and without an acknowledgement") {
  ClientRequest r = accepted(R"(42["chat",{"text":"hi"},2,"x"])");
  CHECK(r.op == ClientRequest::Op::event);
  CHECK(r.event == "chat");
  CHECK(r.data == R"([{"text":"hi"},2,"x"])");
  CHECK_FALSE(r.id.has_value());

  ClientRequest acked = accepted(R"(427["chat"])");
  CHECK(acked.op == ClientRequest::Op::event);
  CHECK(acked.id == 7);
  CHECK(acked.data == "[]");

  CHECK(accepted(R"(420["e"])").id == 0);  // socket.io-client counts ids from 0
  CHECK(accepted(R"(42/,5["e",1])").id == 5);
  // Numbers pass as written; the arguments are compacted.
  CHECK(accepted(R"(42[ "e" , 1.50 , 1E300, -0, 123456789012345678901234567890 , [ ] , { } ])").data ==
        R"([1.50,1E300,-0,123456789012345678901234567890,[],{}])");
  refused(R"(42["e",1e400])", Errc::invalid_json);  // RapidJSON refuses numbers past a double's range
  CHECK(accepted(R"(42["e","\ud83d\ude00 \"q\" \u0001"])").data == "[\"\xf0\x9f\x98\x80 \\\"q\\\" \\u0001\"]");
  // Deep nesting is fine: the reader is iterative.
  std::string deep = "42[\"e\"," + std::string(10000, '[') + std::string(10000, ']') + "]";
  CHECK(accepted(deep).data.size() == 20002);
  // An unknown name is the host's business, even one that looks like ours.
  CHECK(accepted(R"(42["livecast:error",{}])").op == ClientRequest::Op::event);
  CHECK(accepted(R"(42["",1])").event.empty());
}

TEST_CASE("EVENT refusals carry the ack id when it was read") {
  CHECK(refused(R"(423["connect"])", Errc::bad_request).id == 3);
  for (const char* name : {"connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"})
    refused("42[\""s + name + "\",1]", Errc::bad_request);
  CHECK(refused("425[1,2]", Errc::bad_request).id == 5);  // a name that is not a string
  refused(R"(42[{"a":1}])", Errc::bad_request);
  refused(R"(42[["a"]])", Errc::bad_request);
  refused("42[]", Errc::bad_request);
  refused("42{\"a\":1}", Errc::bad_request);
  refused("42\"e\"", Errc::bad_request);
  refused("42", Errc::bad_request);
  CHECK(refused("429", Errc::bad_request).id == 9);
  CHECK(refused("429[\"e\",", Errc::invalid_json).id == 9);
  refused("42[\"e\"]]", Errc::invalid_json);
  refused("42[\"e\",NaN]", Errc::invalid_json);
  refused("42[\"e\",\"\xff\"]", Errc::invalid_json);
  refused("42[\"e\",\"a\0\"]"s, Errc::invalid_json);
  CHECK(refused(R"(421["e","\udc00"])", Errc::invalid_payload).id == 1);
  refused(R"(42["\udfffx"])", Errc::bad_request);  // a lone low surrogate; a high one does not parse
  refused(R"(42["\ud800x"])", Errc::invalid_json);
  refused(R"(42/admin,1["e"])", Errc::bad_request);
  CHECK(refused(R"(42/admin,1["e"])", Errc::bad_request).message == "Invalid namespace");
}

TEST_CASE("ack ids: non-negative and within int64") {
  CHECK(accepted(R"(429223372036854775807["e"])").id == std::numeric_limits<std::int64_t>::max());
  CHECK(accepted(R"(42000012["e"])").id == 12);
  DecodeResult big = refused(R"(429223372036854775808["e"])", Errc::bad_request);
  CHECK_FALSE(big.id.has_value());
  refused("42" + std::string(100000, '9') + "[\"e\"]", Errc::bad_request);
  refused(R"(42-1["e"])", Errc::invalid_json);  // no sign: "-1[...]" is the payload
}

TEST_CASE("subscribe and unsubscribe events") {
  ClientRequest s = accepted(R"(423["subscribe","kpi.revenue"])");
  CHECK(s.op == ClientRequest::Op::subscribe);
  CHECK(s.id == 3);
  CHECK(s.topic == "kpi.revenue");
  CHECK_FALSE(s.recover.has_value());
  CHECK(s.data.empty());
  CHECK(s.event.empty());

  ClientRequest o = accepted(R"(42["subscribe",{"topic":"org:acme","other":[1,{"topic":"no"}]}])");
  CHECK(o.op == ClientRequest::Op::subscribe);
  CHECK(o.topic == "org:acme");
  CHECK_FALSE(o.id.has_value());

  ClientRequest rec = accepted(R"(421["subscribe",{"recover":{"offset":120,"epoch":"k3f9"},"topic":"t"}])");
  REQUIRE(rec.recover.has_value());
  CHECK(rec.recover->epoch == "k3f9");
  CHECK(rec.recover->offset == 120);
  CHECK(accepted(R"(42["subscribe",{"topic":"t","recover":{"epoch":"","offset":18446744073709551615}}])")
            .recover->offset == std::numeric_limits<std::uint64_t>::max());

  ClientRequest u = accepted(R"(424["unsubscribe","kpi.revenue"])");
  CHECK(u.op == ClientRequest::Op::unsubscribe);
  CHECK(u.id == 4);
  CHECK(u.topic == "kpi.revenue");
  ClientRequest uo = accepted(R"(42["unsubscribe",{"topic":"t","recover":{"epoch":"e","offset":1}}])");
  CHECK(uo.topic == "t");
  CHECK_FALSE(uo.recover.has_value());
  // Extra arguments are ignored, even ones an event would be refused for.
  CHECK(accepted(R"(42["subscribe","t",{"x":1}])").topic == "t");
  CHECK(accepted(R"(42["subscribe","t","\udc00"])").topic == "t");
}

TEST_CASE("subscribe refusals") {
  CHECK(refused(R"(428["subscribe"])", Errc::bad_request).id == 8);
  CHECK(refused(R"(428["subscribe",5])", Errc::bad_request).id == 8);
  refused(R"(42["subscribe",null])", Errc::bad_request);
  refused(R"(42["subscribe",["t"]])", Errc::bad_request);
  refused(R"(42["subscribe",""])", Errc::bad_request);
  refused(R"(42["subscribe",{}])", Errc::bad_request);
  refused(R"(42["subscribe",{"topic":1}])", Errc::bad_request);
  refused(R"(42["subscribe",{"topic":"t","topic":2}])", Errc::bad_request);
  CHECK(refused(R"(426["subscribe","\udc00"])", Errc::invalid_topic).id == 6);
  refused(R"(42["unsubscribe",{"topic":"\udfff"}])", Errc::invalid_topic);
  refused(R"(42["subscribe",{"topic":"t","recover":1}])", Errc::bad_request);
  refused(R"(42["subscribe",{"topic":"t","recover":{"epoch":"e"}}])", Errc::bad_request);
  refused(R"(42["subscribe",{"topic":"t","recover":{"epoch":1,"offset":1}}])", Errc::bad_request);
  refused(R"(42["subscribe",{"topic":"t","recover":{"epoch":"e","offset":-1}}])", Errc::bad_request);
  refused(R"(42["subscribe",{"topic":"t","recover":{"epoch":"e","offset":1.5}}])", Errc::bad_request);
  refused(R"(42["subscribe",{"topic":"t","recover":{"epoch":"e","offset":18446744073709551616}}])",
          Errc::bad_request);
}

TEST_CASE("the subscribe and unsubscribe events are settings") {
  SocketIoSettings settings;
  settings.subscribe_event = "join";
  settings.unsubscribe_event = "leave";
  auto p = make_socketio_protocol(settings);
  CHECK(accepted(*p, R"(42["join","t"])").op == ClientRequest::Op::subscribe);
  CHECK(accepted(*p, R"(42["leave","t"])").op == ClientRequest::Op::unsubscribe);
  ClientRequest e = accepted(*p, R"(42["subscribe","t"])");
  CHECK(e.op == ClientRequest::Op::event);
  CHECK(e.data == R"(["t"])");
}

TEST_CASE("a megabyte payload decodes in one bounded pass") {
  const std::string big(1 << 20, 'a');
  const auto start = std::chrono::steady_clock::now();
  CHECK(accepted("42[\"e\",\"" + big + "\"]").data.size() == big.size() + 4);
  CHECK(accepted("42[\"subscribe\",\"" + big + "\"]").topic.size() == big.size());
  refused("42[\"e\",\"" + big, Errc::invalid_json);
  refused("42[" + std::string(1 << 20, '['), Errc::invalid_json);
  refused("42/" + big, Errc::bad_request);
  refused("42" + std::string(1 << 20, '1'), Errc::bad_request);
  std::string many = "42[\"e\"";
  for (int i = 0; i < (1 << 18); ++i) many += ",1";
  many += "]";
  CHECK(accepted(many).data.size() == many.size() - 6);
  CHECK(accepted("40{\"token\":\"" + big + "\"}").token == big);
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(10));
}

TEST_CASE("publications: 42[event, data]") {
  FramePtr f = sio().encode_publication(publication("kpi.revenue", 12, R"({"total":1250.5})"));
  CHECK(f->bytes == R"(42["kpi.revenue",{"total":1250.5}])");
  CHECK(f->is_publication());
  CHECK(f->topic == "kpi.revenue");
  CHECK(f->offset == 12);
  check_json_after(f, 2);

  Publication none{"t", 1, nullptr, "e"};
  CHECK(sio().encode_publication(none)->bytes == R"(42["t",null])");
  // Topic names are escaped, and never leave invalid UTF-8.
  FramePtr odd = sio().encode_publication(publication("a\"b\\c\n\x1e\xff", 1, "1"));
  CHECK(odd->bytes == "42[\"a\\\"b\\\\c\\n\\u001e\xef\xbf\xbd\",1]");
  check_json_after(odd, 2);
}

TEST_CASE("connection state recovery: pid in CONNECT's answer, an offset per event, pid and offset read back") {
  SocketIoSettings settings;
  settings.connection_state_recovery = true;
  const auto recovering = make_socketio_protocol(settings);
  CHECK(recovering->resumes_sessions());
  CHECK_FALSE(sio().resumes_sessions());

  FramePtr f = recovering->encode_publication(publication("kpi.tps", 7, "3"));
  CHECK(f->bytes == "42[\"kpi.tps\",3,\"" + publication_token("kpi.tps", 7) + "\"]");
  CHECK(f->epoch == "e");
  check_json_after(f, 2);
  CHECK(publication_token("kpi.tps", 7) != publication_token("kpi.tps", 8));
  CHECK(publication_token("kpi.tps", 7) != publication_token("kpi.rev", 7));

  CHECK(recovering->encode_connected("s1", "p1")->bytes == R"(40{"sid":"s1","pid":"p1"})");
  CHECK(sio().encode_connected("s1")->bytes == R"(40{"sid":"s1"})");

  // socket.io-client adds {pid, offset} to its auth when it comes back.
  ClientRequest back = accepted(*recovering, R"(40{"token":"t","pid":"p1","offset":"0a1b2c3d-7"})");
  CHECK(back.token == "t");
  CHECK(back.resume_id == "p1");
  CHECK(back.resume_after == "0a1b2c3d-7");
  CHECK(back.auth == R"({"token":"t","pid":"p1","offset":"0a1b2c3d-7"})");
  CHECK(accepted(*recovering, R"(40{"pid":7,"offset":{"x":1}})").resume_id.empty());
  // Without recovery they are only part of the auth.
  CHECK(accepted(R"(40{"pid":"p1","offset":"x"})").resume_id.empty());
}

TEST_CASE("publications arrive as the event event_name says") {
  SocketIoSettings settings;
  settings.event_name = [](std::string_view topic) -> std::string {
    if (topic == "throws") throw std::runtime_error("no");
    if (topic == "empty") return {};
    return "update:" + std::string(topic);
  };
  auto p = make_socketio_protocol(settings);
  CHECK(p->encode_publication(publication("kpi", 1, "[1]"))->bytes == R"(42["update:kpi",[1]])");
  CHECK(p->encode_publication(publication("throws", 1, "2"))->bytes == R"(42["throws",2])");
  CHECK(p->encode_publication(publication("empty", 1, "3"))->bytes == R"(42["empty",3])");
}

TEST_CASE("replies are acknowledgements: 43<id>[...]") {
  FramePtr sub = sio().encode_subscribed(3, "kpi", StreamPosition{"e1", 120}, true);
  REQUIRE(static_cast<bool>(sub));
  CHECK(sub->bytes == R"(433[{"topic":"kpi","epoch":"e1","offset":120,"recovered":true}])");
  CHECK(sub->kind == Frame::Kind::reply);
  CHECK(sub->request_id == 3);
  REQUIRE(sub->head.has_value());
  CHECK(sub->head->offset == 120);
  check_json_after(sub, 3);
  CHECK(sio().encode_subscribed(0, "t", StreamPosition{"", 0}, false)->bytes ==
        R"(430[{"topic":"t","epoch":"","offset":0,"recovered":false}])");
  // A server-side join tells the client nothing.
  CHECK_FALSE(static_cast<bool>(sio().encode_subscribed(std::nullopt, "t", StreamPosition{"e", 1}, false)));

  CHECK(sio().encode_unsubscribed(4, "kpi")->bytes == R"(434[{"topic":"kpi"}])");
  CHECK(sio().encode_published(5, "kpi", 77)->bytes == R"(435[{"topic":"kpi","offset":77}])");
  CHECK(sio().encode_pong(6)->bytes == "3");
  CHECK(sio().encode_refreshed(7, std::nullopt)->bytes == R"(437[{"expires_at":null}])");
  const auto at = std::chrono::system_clock::time_point(std::chrono::milliseconds(1767225600123));
  CHECK(sio().encode_refreshed(7, at)->bytes == R"(437[{"expires_at":1767225600123}])");
  CHECK(sio().encode_ack(9, R"([1,{"a":"b"}])")->bytes == R"(439[1,{"a":"b"}])");
  CHECK(sio().encode_ack(std::numeric_limits<std::int64_t>::max(), "[]")->bytes == "439223372036854775807[]");
}

TEST_CASE("errors: in the acknowledgement, or as the error event") {
  FramePtr acked = sio().encode_error(2, Errc::forbidden, "not \"yours\"");
  CHECK(acked->bytes == R"(432[{"error":{"code":"forbidden","message":"not \"yours\""}}])");
  CHECK(acked->kind == Frame::Kind::error);
  check_json_after(acked, 3);
  FramePtr event = sio().encode_error(std::nullopt, Errc::rate_limited, "too many messages");
  CHECK(event->bytes == R"(42["livecast:error",{"code":"rate_limited","message":"too many messages"}])");
  check_json_after(event, 2);

  SocketIoSettings settings;
  settings.error_event = "oops\"";
  CHECK(make_socketio_protocol(settings)->encode_error(std::nullopt, Errc::bad_request, "m")->bytes ==
        R"(42["oops\"",{"code":"bad_request","message":"m"}])");
  FramePtr bytes = sio().encode_error(std::nullopt, Errc::bad_request, "\x01\xed\xa0\x80\x1e");
  CHECK(bytes->bytes == "42[\"livecast:error\",{\"code\":\"bad_request\",\"message\":\"\\u0001\xef\xbf\xbd\xef\xbf\xbd"
                        "\xef\xbf\xbd\\u001e\"}]");
  check_json_after(bytes, 2);
}

TEST_CASE("a decode refusal encodes as an acknowledgement when it had an id") {
  DecodeResult r = refused(R"(4211["subscribe",7])", Errc::bad_request);
  FramePtr f = sio().encode_error(r.id, r.error, r.message);
  CHECK(f->bytes.rfind("4311[{\"error\":{\"code\":\"bad_request\",", 0) == 0);
  check_json_after(f, 4);
}

TEST_CASE("the Engine.IO open packet, CONNECT's answers, heartbeat") {
  Greeting g;
  g.session_id = "s\"1";
  g.heartbeat_interval = std::chrono::milliseconds(25000);
  g.heartbeat_timeout = std::chrono::milliseconds(20000);
  g.max_message_bytes = 1000000;
  g.upgrades = {"websocket"};
  FramePtr open = sio().encode_greeting(g);
  REQUIRE(static_cast<bool>(open));
  CHECK(open->bytes ==
        R"(0{"sid":"s\"1","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000})");
  check_json_after(open, 1);
  g.upgrades.clear();
  CHECK(sio().encode_greeting(g)->bytes ==
        R"(0{"sid":"s\"1","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000})");

  CHECK(sio().encode_connected("42")->bytes == R"(40{"sid":"42"})");
  FramePtr no = sio().encode_connect_refused("bad \"token\"\n");
  CHECK(no->bytes == R"(44{"message":"bad \"token\"\n"})");
  CHECK(no->kind == Frame::Kind::error);
  check_json_after(no, 2);
  CHECK(sio().encode_heartbeat()->bytes == "2");
}

TEST_CASE("farewells: DISCONNECT only where reconnecting cannot help") {
  for (CloseCode c : {CloseCode::normal, CloseCode::unauthorized, CloseCode::policy_violation, CloseCode::rate_limited,
                      CloseCode::protocol_error, CloseCode::forbidden_origin}) {
    CAPTURE(static_cast<int>(c));
    FramePtr f = sio().encode_farewell(c, "bye");
    REQUIRE(static_cast<bool>(f));
    CHECK(f->bytes == "41");
  }
  for (CloseCode c : {CloseCode::going_away, CloseCode::reconnect_after, CloseCode::token_expired,
                      CloseCode::idle_timeout, CloseCode::slow_consumer, CloseCode::internal_error,
                      CloseCode::message_too_large}) {
    CAPTURE(static_cast<int>(c));
    CHECK_FALSE(static_cast<bool>(sio().encode_farewell(c, "bye")));
  }
}

TEST_CASE("round trips: what decode accepts, the encoders answer with the same id and topic") {
  ClientRequest s = accepted(R"(4217["subscribe",{"topic":"caf\u00e9 \"x\""}])");
  FramePtr reply = sio().encode_subscribed(s.id, s.topic, StreamPosition{"e", 3}, false);
  CHECK(reply->bytes == "4317[{\"topic\":\"caf\xc3\xa9 \\\"x\\\"\",\"epoch\":\"e\",\"offset\":3,\"recovered\":false}]");
  // The topic as the ack carries it reads back as the same topic.
  const std::string again = "42[\"subscribe\"," + reply->bytes.substr(5, reply->bytes.size() - 6) + "]";
  CHECK(accepted(again).topic == s.topic);

  ClientRequest e = accepted(R"(4218["echo",{"a":[1,"2"]},null])");
  FramePtr ack = sio().encode_ack(*e.id, e.data);
  CHECK(ack->bytes == R"(4318[{"a":[1,"2"]},null])");
  // A server emit with the event's arguments is an event the client can send back.
  CHECK(accepted("42[\"echo\"," + e.data.substr(1)).data == e.data);
}
