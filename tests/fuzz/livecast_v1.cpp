// Fuzzes livecast.v1's decoder through the public Protocol interface, the way
// a session hands it each client message, and checks what a client can make
// the server say back.
//
// Properties, for every input:
// - decode() returns (no exception, no crash) either a request or an error
//   code with a non-empty UTF-8 message, never both;
// - an accepted request has a valid UTF-8 topic (the server echoes it inside
//   text frames, which a browser drops its connection over otherwise), and a
//   publish carries valid JSON data no bigger than the message;
// - re-encoding the request as a canonical message and decoding that gives
//   the same request (the "data" text is stable under a second pass);
// - every frame the encoders build from what was decoded is valid JSON and
//   valid UTF-8, including the long-poll framing with the input as cursor.
#include "fuzz_check.hpp"

#include <livecast/json.hpp>
#include <livecast/protocol.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

using namespace livecast;

namespace {

const Protocol& v1() {
  static const std::shared_ptr<const Protocol> protocol = make_livecast_v1_protocol();
  return *protocol;
}

bool needs_topic(ClientRequest::Op op) {
  return op == ClientRequest::Op::subscribe || op == ClientRequest::Op::unsubscribe ||
         op == ClientRequest::Op::publish;
}

// The canonical message for a request; nullopt for an op this target does
// not know how to write back (one added to the protocol later).
std::optional<std::string> canonical_message(const ClientRequest& r) {
  std::string out = "{\"op\":";
  switch (r.op) {
    case ClientRequest::Op::subscribe: out += "\"subscribe\""; break;
    case ClientRequest::Op::unsubscribe: out += "\"unsubscribe\""; break;
    case ClientRequest::Op::publish: out += "\"publish\""; break;
    case ClientRequest::Op::ping: out += "\"ping\""; break;
    case ClientRequest::Op::refresh: out += "\"refresh\""; break;
    default: return std::nullopt;
  }
  if (r.id) out += ",\"id\":" + std::to_string(*r.id);
  if (needs_topic(r.op)) {
    out += ",\"topic\":";
    append_json_string(out, r.topic);
  }
  if (r.op == ClientRequest::Op::refresh) {
    // Like the epoch, the token is never echoed and may hold a lone surrogate.
    if (!is_valid_utf8(r.token)) return std::nullopt;
    out += ",\"token\":";
    append_json_string(out, r.token);
  }
  if (r.recover) {
    // The epoch may hold a lone surrogate (the decoder accepts "\udc00"
    // there, it is only compared); such bytes cannot be written back as they are.
    if (!is_valid_utf8(r.recover->epoch)) return std::nullopt;
    out += ",\"recover\":{\"epoch\":";
    append_json_string(out, r.recover->epoch);
    out += ",\"offset\":" + std::to_string(r.recover->offset) + "}";
  }
  if (r.op == ClientRequest::Op::publish) out += ",\"data\":" + r.data;
  out += "}";
  return out;
}

bool same_request(const ClientRequest& a, const ClientRequest& b) {
  return a.op == b.op && a.id == b.id && a.topic == b.topic && a.recover == b.recover && a.data == b.data &&
         a.token == b.token;
}

void check_frame(const FramePtr& frame) {
  FUZZ_CHECK(frame != nullptr);
  FUZZ_CHECK(is_valid_json(frame->bytes));
  FUZZ_CHECK(is_valid_utf8(frame->bytes));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
  const std::string_view message(reinterpret_cast<const char*>(bytes), size);
  const DecodeResult result = v1().decode(message);

  // The long-poll framing with a client-chosen cursor (the HTTP transport
  // echoes the one it tracks, which a client influences through topic names).
  const MessageBatchFraming framing = v1().batch_framing(message);
  const std::string empty_batch = framing.head + framing.tail;
  FUZZ_CHECK(is_valid_json(empty_batch));
  FUZZ_CHECK(is_valid_utf8(empty_batch));

  if (!result.request) {
    FUZZ_CHECK(result.error != Errc::ok);
    FUZZ_CHECK(!result.message.empty());
    FUZZ_CHECK(is_valid_utf8(result.message));
    check_frame(v1().encode_error(result.id, result.error, result.message));
    return 0;
  }

  const ClientRequest& request = *result.request;
  FUZZ_CHECK(result.error == Errc::ok);
  FUZZ_CHECK(result.id == request.id);
  if (needs_topic(request.op)) {
    FUZZ_CHECK(!request.topic.empty());
    FUZZ_CHECK(is_valid_utf8(request.topic));
  } else {
    FUZZ_CHECK(request.topic.empty());
  }
  FUZZ_CHECK(request.token.empty() == (request.op != ClientRequest::Op::refresh));
  if (request.op == ClientRequest::Op::publish) {
    FUZZ_CHECK(is_valid_json(request.data));
    FUZZ_CHECK(is_valid_utf8(request.data));
    // Compact re-writing never grows: numbers pass as written, and what the
    // writer escapes had to be escaped in the message already.
    FUZZ_CHECK(request.data.size() <= message.size());
  } else {
    FUZZ_CHECK(request.data.empty());
  }
  if (request.op != ClientRequest::Op::subscribe) FUZZ_CHECK(!request.recover);

  if (auto canonical = canonical_message(request)) {
    const DecodeResult again = v1().decode(*canonical);
    FUZZ_CHECK(again.request.has_value());
    FUZZ_CHECK(same_request(*again.request, request));
  }

  // What the server says back about this request.
  const StreamPosition head = request.recover.value_or(StreamPosition{"e", 1});
  check_frame(v1().encode_subscribed(request.id, request.topic, head, true));
  check_frame(v1().encode_unsubscribed(request.id.value_or(0), request.topic));
  check_frame(v1().encode_published(request.id.value_or(0), request.topic, head.offset));
  check_frame(v1().encode_pong(request.id.value_or(0)));
  check_frame(v1().encode_refreshed(request.id.value_or(0), std::nullopt));
  const auto expires_ms = static_cast<std::int64_t>(head.offset % (std::uint64_t{1} << 40));
  check_frame(v1().encode_refreshed(request.id.value_or(0),
                                    std::chrono::system_clock::time_point(std::chrono::milliseconds(expires_ms))));
  if (request.op == ClientRequest::Op::publish) {
    const Publication publication{request.topic, head.offset, std::make_shared<const std::string>(request.data), head.epoch};
    check_frame(v1().encode_publication(publication));
  }
  return 0;
}
