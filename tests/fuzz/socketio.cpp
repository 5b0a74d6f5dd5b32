// Fuzzes the socket.io protocol's decoder through the public Protocol
// interface, the way a session hands it each Engine.IO packet, and checks
// what a client can make the server say back.
//
// Properties, for every input:
// - decode() returns (no exception, no crash) either a request or an error
//   code with a non-empty UTF-8 message, never both;
// - an id (of a request, or of an error) is non-negative and an EVENT's; a
//   subscription has a non-empty UTF-8 topic; an event a name that is not
//   reserved and arguments that are a valid UTF-8 JSON array no bigger than
//   the message; a connect an `auth` that is empty or a JSON object taken
//   from the message;
// - the request written back as a canonical packet decodes to itself;
// - every frame the encoders build from what was decoded is one Engine.IO
//   packet: valid UTF-8, no \x1e (the polling separator), JSON after its type;
// - with connection state recovery on, the same request, and a connect's pid
//   and offset taken from its auth; the offset, placed against a session's
//   record (resume_positions), is placed or refused, never misread.
#include "fuzz_check.hpp"

#include "core/session_resumption.hpp"

#include <livecast/json.hpp>
#include <livecast/socketio.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

using namespace livecast;

namespace {

const Protocol& sio() {
  static const std::shared_ptr<const Protocol> protocol = make_socketio_protocol();
  return *protocol;
}

const Protocol& recovering_sio() {
  static const std::shared_ptr<const Protocol> protocol = [] {
    SocketIoSettings settings;
    settings.connection_state_recovery = true;
    return make_socketio_protocol(settings);
  }();
  return *protocol;
}

// A session's record: two topics, a few publications queued.
const detail::ResumeRecord& record() {
  static const detail::ResumeRecord r = [] {
    detail::ResumeTracker tracker(4);
    tracker.started("a", {"e", 0});
    tracker.started("b", {"e", 10});
    for (std::uint64_t o = 1; o <= 3; ++o) {
      tracker.queued("a", "e", o);
      tracker.queued("b", "e", 10 + o);
    }
    return tracker.record("p", "s");
  }();
  return r;
}


// The canonical packet for a request; nullopt for one with nothing to write back.
std::optional<std::string> canonical_message(const ClientRequest& r) {
  const std::string id = r.id ? std::to_string(*r.id) : std::string();
  switch (r.op) {
    case ClientRequest::Op::connect:
      return "40" + r.auth;
    case ClientRequest::Op::subscribe:
    case ClientRequest::Op::unsubscribe: {
      std::string out = "42" + id + "[";
      append_json_string(out, r.op == ClientRequest::Op::subscribe ? "subscribe" : "unsubscribe");
      out += ",{\"topic\":";
      append_json_string(out, r.topic);
      if (r.recover) {
        // The epoch is only compared, and may hold a lone surrogate, which
        // cannot be written back as it is.
        if (!is_valid_utf8(r.recover->epoch)) return std::nullopt;
        out += ",\"recover\":{\"epoch\":";
        append_json_string(out, r.recover->epoch);
        out += ",\"offset\":" + std::to_string(r.recover->offset) + "}";
      }
      return out + "}]";
    }
    case ClientRequest::Op::event: {
      if (!is_valid_utf8(r.event)) return std::nullopt;
      std::string out = "42" + id + "[";
      append_json_string(out, r.event);
      if (r.data.size() > 2) out += "," + r.data.substr(1);
      else out += "]";
      return out;
    }
    default:
      return std::nullopt;
  }
}

bool same_request(const ClientRequest& a, const ClientRequest& b) {
  return a.op == b.op && a.id == b.id && a.topic == b.topic && a.recover == b.recover && a.data == b.data &&
         a.event == b.event && a.auth == b.auth && a.token == b.token;
}

// One Engine.IO packet: valid UTF-8, no record separator, JSON after the
// first `prefix` characters (the type digits and ack id).
void check_frame(const FramePtr& frame, std::size_t prefix) {
  FUZZ_CHECK(frame != nullptr);
  FUZZ_CHECK(is_valid_utf8(frame->bytes));
  FUZZ_CHECK(frame->bytes.find('\x1e') == std::string::npos);
  FUZZ_CHECK(frame->bytes.size() > prefix);
  FUZZ_CHECK(is_valid_json(std::string_view(frame->bytes).substr(prefix)));
}

std::size_t ack_prefix(std::int64_t id) { return 2 + std::to_string(id).size(); }

void check_recovering(std::string_view message, const DecodeResult& plain) {
  const DecodeResult r = recovering_sio().decode(message);
  FUZZ_CHECK(r.request.has_value() == plain.request.has_value());
  if (!r.request) return;
  FUZZ_CHECK(r.request->op == plain.request->op);
  FUZZ_CHECK(r.request->auth == plain.request->auth);
  if (r.request->op != ClientRequest::Op::connect) {
    FUZZ_CHECK(r.request->resume_id.empty() && r.request->resume_after.empty());
    return;
  }
  FUZZ_CHECK(r.request->resume_id.size() + r.request->resume_after.size() <= r.request->auth.size());
  const auto positions = detail::resume_positions(record(), r.request->resume_after);
  if (positions) {
    FUZZ_CHECK(positions->size() == 2);
    for (const auto& [topic, at] : *positions) FUZZ_CHECK(at.offset <= 13);
  }
  check_frame(recovering_sio().encode_connected(r.request->resume_id, r.request->resume_after), 2);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
  const std::string_view message(reinterpret_cast<const char*>(bytes), size);
  const DecodeResult result = sio().decode(message);
  check_recovering(message, result);

  if (!result.request) {
    FUZZ_CHECK(result.error != Errc::ok);
    FUZZ_CHECK(!result.message.empty());
    FUZZ_CHECK(is_valid_utf8(result.message));
    FUZZ_CHECK(!result.id || *result.id >= 0);
    // Only an EVENT's or a BINARY_EVENT's id is the client's to be answered.
    FUZZ_CHECK(!result.id || message.substr(0, 2) == "42" || message.substr(0, 2) == "45");
    // A refusal the protocol words itself (a CONNECT to another namespace)
    // is one Engine.IO packet of valid UTF-8.
    if (!result.answer.empty()) {
      FUZZ_CHECK(result.answer.rfind("44/", 0) == 0);
      FUZZ_CHECK(is_valid_utf8(result.answer));
      FUZZ_CHECK(result.answer.find('\x1e') == std::string::npos);
    }
    check_frame(sio().encode_error(result.id, result.error, result.message), result.id ? ack_prefix(*result.id) : 2);
    check_frame(sio().encode_connect_refused(result.message), 2);
    return 0;
  }

  const ClientRequest& request = *result.request;
  FUZZ_CHECK(result.error == Errc::ok);
  FUZZ_CHECK(result.id == request.id);
  FUZZ_CHECK(!request.id || *request.id >= 0);
  FUZZ_CHECK(!request.id || message.substr(0, 2) == "42");
  const bool subscription = request.op == ClientRequest::Op::subscribe || request.op == ClientRequest::Op::unsubscribe;
  if (subscription) {
    FUZZ_CHECK(!request.topic.empty());
    FUZZ_CHECK(is_valid_utf8(request.topic));
  } else {
    FUZZ_CHECK(request.topic.empty());
  }
  if (request.op != ClientRequest::Op::subscribe) FUZZ_CHECK(!request.recover);
  if (request.op == ClientRequest::Op::event) {
    FUZZ_CHECK(is_valid_json(request.data));
    FUZZ_CHECK(is_valid_utf8(request.data));
    FUZZ_CHECK(request.data.front() == '[' && request.data.back() == ']');
    FUZZ_CHECK(request.data.size() <= message.size());
    FUZZ_CHECK(request.event != "connect" && request.event != "disconnect" && request.event != "connect_error");
  } else {
    FUZZ_CHECK(request.data.empty());
    FUZZ_CHECK(request.event.empty());
  }
  if (request.op == ClientRequest::Op::connect) {
    FUZZ_CHECK(!request.id);
    if (!request.auth.empty()) {
      FUZZ_CHECK(request.auth.front() == '{');
      FUZZ_CHECK(is_valid_json(request.auth));
      FUZZ_CHECK(message.find(request.auth) != std::string_view::npos);
    }
    FUZZ_CHECK(request.token.size() <= request.auth.size());
  } else {
    FUZZ_CHECK(request.auth.empty());
    FUZZ_CHECK(request.token.empty());
  }

  if (auto canonical = canonical_message(request)) {
    const DecodeResult again = sio().decode(*canonical);
    FUZZ_CHECK(again.request.has_value());
    FUZZ_CHECK(same_request(*again.request, request));
  }

  // What the server says back about this request.
  const std::int64_t id = request.id.value_or(0);
  const StreamPosition head = request.recover.value_or(StreamPosition{"e", 1});
  check_frame(sio().encode_subscribed(id, request.topic, head, true), ack_prefix(id));
  FUZZ_CHECK(!sio().encode_subscribed(std::nullopt, request.topic, head, true));
  check_frame(sio().encode_unsubscribed(id, request.topic), ack_prefix(id));
  check_frame(sio().encode_published(id, request.topic, head.offset), ack_prefix(id));
  const auto expires_ms = static_cast<std::int64_t>(head.offset % (std::uint64_t{1} << 40));
  check_frame(sio().encode_refreshed(id, std::chrono::system_clock::time_point(std::chrono::milliseconds(expires_ms))),
              ack_prefix(id));
  check_frame(sio().encode_connected(request.topic), 2);
  Greeting greeting;
  greeting.session_id = request.event;
  greeting.upgrades = {request.topic};
  check_frame(sio().encode_greeting(greeting), 1);
  if (request.op == ClientRequest::Op::event) {
    check_frame(sio().encode_ack(id, request.data), ack_prefix(id));
    const Publication publication{request.event, head.offset, std::make_shared<const std::string>(request.data), head.epoch};
    check_frame(sio().encode_publication(publication), 2);
    check_frame(recovering_sio().encode_publication(publication), 2);
  }
  return 0;
}
