// socket.io: Engine.IO v4 packets carrying Socket.IO v5 packets, so that an
// unchanged socket.io-client 4.x talks to livecast (socketio.hpp).
//
// Every message a transport hands over, and every frame built here, is ONE
// Engine.IO packet (a WebSocket text message, or one element of a polling
// payload, which the transports split and join on \x1e). Only the main
// namespace "/" exists and binary attachments are refused, so a Socket.IO
// packet here is always `4` + type + [ack id] + [JSON].
//
// Decoding (client -> server):
//   "2" (a client ping), "3" (pong), "6" (noop), "43<id>[...]" -> heartbeat
//   "1" (Engine.IO close), "41" (DISCONNECT)                    -> close
//   "40", "40{auth}"                                            -> connect
//                                   (with recovery: auth's pid and offset resume)
//   "42[<id>][subscribe_event, topic | {topic, recover}]"       -> subscribe
//   "42[<id>][unsubscribe_event, topic | {topic}]"              -> unsubscribe
//   "42[<id>][name, ...args]"                                   -> event
//   anything else: refused (binary packets, other namespaces, "0", "5",
//   "2probe", reserved event names, bad JSON, ack ids past INT64_MAX).
// The packet readers live in socketio_packet.cpp; encoding is here, each
// frame built by concatenation.
#include <livecast/socketio.hpp>

#include "socketio_packet.hpp"

#include <livecast/json.hpp>

#include <charconv>
#include <chrono>
#include <exception>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

LIVECAST_BEGIN_NAMESPACE

namespace {

using detail::EventPayload;
using detail::PacketError;
using detail::SocketIoType;

template <class Integer>
void append_integer(std::string& out, Integer value) {
  char digits[24];
  const auto converted = std::to_chars(digits, digits + sizeof digits, value);
  out.append(digits, converted.ptr);
}

// Names socket.io-client keeps for itself: a client cannot emit them, so a
// packet carrying one was not written by it.
bool is_reserved_event(std::string_view name) noexcept {
  return name == "connect" || name == "connect_error" || name == "disconnect" || name == "disconnecting" ||
         name == "newListener" || name == "removeListener";
}

std::string_view trim_json_space(std::string_view s) noexcept {
  constexpr std::string_view space = " \t\r\n";
  const std::size_t first = s.find_first_not_of(space);
  if (first == std::string_view::npos) return {};
  return s.substr(first, s.find_last_not_of(space) - first + 1);
}

DecodeResult refused(PacketError error) {
  return DecodeResult::fail(error.code, std::move(error.message), error.ack_id);
}

ClientRequest request(ClientRequest::Op op, std::optional<std::int64_t> id = std::nullopt) {
  ClientRequest r;
  r.op = op;
  r.id = id;
  return r;
}

class SocketIoProtocol final : public Protocol {
 public:
  explicit SocketIoProtocol(SocketIoSettings settings) : settings_(std::move(settings)) {}

  std::string_view name() const noexcept override { return socketio_protocol_name; }
  bool connects_in_band() const noexcept override { return true; }
  // Binary attachments follow a BINARY_EVENT, which decode() refuses (and
  // answers): they are dropped, and the connection goes on.
  bool drops_binary_messages() const noexcept override { return true; }
  bool resumes_sessions() const noexcept override { return settings_.connection_state_recovery; }

  DecodeResult decode(std::string_view message) const override {
    if (message.empty()) return DecodeResult::fail(Errc::bad_request, "empty Engine.IO packet");
    const std::string_view rest = message.substr(1);
    switch (message[0]) {
      case '1': {  // Engine.IO close: the transport's, so the client may come back
        if (!rest.empty()) break;
        ClientRequest r = request(ClientRequest::Op::close);
        r.may_return = true;
        return DecodeResult::ok(std::move(r));
      }
      case '2':  // a client's ping: engine.io-client sends none in v4, but it harms nobody
      case '3':  // the answer to the server's heartbeat
      case '6':  // noop
        if (!rest.empty()) break;
        return DecodeResult::ok(request(ClientRequest::Op::heartbeat));
      case '4':
        return decode_socketio(rest);
      case '0':
        return DecodeResult::fail(Errc::unknown_op, "Engine.IO open (0) is sent by servers only");
      case '5':
        return DecodeResult::fail(Errc::bad_request, "Engine.IO upgrade (5) outside a transport upgrade");
      case 'b':
        return DecodeResult::fail(Errc::bad_request, "binary attachments are not supported");
      default:
        return DecodeResult::fail(Errc::unknown_op, "unknown Engine.IO packet type");
    }
    // "2probe" belongs to the transport's upgrade, which answers it before any decode.
    return DecodeResult::fail(Errc::bad_request, "unexpected data after an Engine.IO close, ping, pong or noop");
  }

  MessageBatchFraming batch_framing(std::optional<std::string_view>) const override {
    // Engine.IO v4's polling payload: packets separated by the record
    // separator, which no frame built here contains (control characters are
    // always escaped inside JSON strings).
    return MessageBatchFraming{"text/plain; charset=UTF-8", "", "\x1e", ""};
  }

 protected:
  // 42["<event>",<data>], with connection state recovery 42["<event>",<data>,"<offset>"]
  std::string encode_publication_text(const Publication& publication) const override {
    static constexpr std::string_view head = "42[";
    static constexpr std::string_view null_data = "null";
    std::string custom;
    const std::string_view event = event_name(publication.topic, custom);
    const std::string_view data = publication.data ? std::string_view(*publication.data) : null_data;
    // The offset socket.io-client hands back when it reconnects (it keeps
    // the last string argument of each event): the publication's token.
    const std::string offset = settings_.connection_state_recovery
                                   ? publication_token(publication.topic, publication.offset)
                                   : std::string();
    std::string out;
    out.reserve(head.size() + json_string_size(event) + 1 + data.size() + offset.size() + 4);
    out.append(head);
    append_json_string(out, event);
    out.push_back(',');
    out.append(data);
    if (!offset.empty()) {
      out.append(",\"");
      out.append(offset);  // hex digits, '-' and decimal digits: nothing to escape
      out.push_back('"');
    }
    out.push_back(']');
    return out;
  }

  // With id, the acknowledgement 43<id>[{"topic":..,"epoch":..,"offset":n,"recovered":b}].
  // Without (a server-side join, a subscription starting over): nothing, as
  // a Socket.IO room join tells the client nothing.
  std::string encode_subscribed_text(std::optional<std::int64_t> id, const std::string& topic,
                                     const StreamPosition& head, bool recovered) const override {
    if (!id) return {};
    std::string out;
    out.reserve(80 + json_string_size(topic) + json_string_size(head.epoch));
    open_ack(out, *id);
    out.append("[{\"topic\":");
    append_json_string(out, topic);
    out.append(",\"epoch\":");
    append_json_string(out, head.epoch);
    out.append(",\"offset\":");
    append_integer(out, head.offset);
    out.append(recovered ? ",\"recovered\":true}]" : ",\"recovered\":false}]");
    return out;
  }

  // 43<id>[{"topic":..}]
  std::string encode_unsubscribed_text(std::int64_t id, const std::string& topic) const override {
    std::string out;
    open_ack(out, id);
    out.append("[{\"topic\":");
    append_json_string(out, topic);
    out.append("}]");
    return out;
  }

  // 43<id>[{"topic":..,"offset":n}]
  std::string encode_published_text(std::int64_t id, const std::string& topic, std::uint64_t offset) const override {
    std::string out;
    open_ack(out, id);
    out.append("[{\"topic\":");
    append_json_string(out, topic);
    out.append(",\"offset\":");
    append_integer(out, offset);
    out.append("}]");
    return out;
  }

  // Engine.IO's pong (nothing in Socket.IO asks for a ping reply).
  std::string encode_pong_text(std::int64_t) const override { return "3"; }

  // 43<id>[{"expires_at":<unix ms>|null}]
  std::string encode_refreshed_text(std::int64_t id,
                                    std::optional<std::chrono::system_clock::time_point> expires_at) const override {
    std::string out;
    open_ack(out, id);
    out.append("[{\"expires_at\":");
    if (expires_at)
      append_integer(out,
                     std::chrono::duration_cast<std::chrono::milliseconds>(expires_at->time_since_epoch()).count());
    else
      out.append("null");
    out.append("}]");
    return out;
  }

  // With id, the acknowledgement 43<id>[{"error":{"code":..,"message":..}}];
  // without, the event 42["<error_event>",{"code":..,"message":..}].
  std::string encode_error_text(std::optional<std::int64_t> id, Errc code, std::string_view message) const override {
    std::string out;
    out.reserve(64 + json_string_size(settings_.error_event) + json_string_size(message));
    if (id) {
      open_ack(out, *id);
      out.append("[{\"error\":");
    } else {
      out.append("42[");
      append_json_string(out, settings_.error_event);
      out.push_back(',');
    }
    out.append("{\"code\":");
    append_json_string(out, to_wire_name(code));
    out.append(",\"message\":");
    append_json_string(out, message);
    out.append(id ? "}}]" : "}]");
    return out;
  }

  // 43<id><args>: the broker checked that `args` is a JSON array.
  std::string encode_ack_text(std::int64_t id, std::string_view args) const override {
    std::string out;
    out.reserve(24 + args.size());
    open_ack(out, id);
    out.append(args);
    return out;
  }

  // Engine.IO's open packet: 0{"sid":..,"upgrades":[..],"pingInterval":ms,"pingTimeout":ms,"maxPayload":n}
  std::string encode_greeting_text(const Greeting& greeting) const override {
    std::string out = "0{\"sid\":";
    append_json_string(out, greeting.session_id);
    out.append(",\"upgrades\":[");
    for (std::size_t i = 0; i < greeting.upgrades.size(); ++i) {
      if (i) out.push_back(',');
      append_json_string(out, greeting.upgrades[i]);
    }
    out.append("],\"pingInterval\":");
    append_integer(out, greeting.heartbeat_interval.count());
    out.append(",\"pingTimeout\":");
    append_integer(out, greeting.heartbeat_timeout.count());
    out.append(",\"maxPayload\":");
    append_integer(out, greeting.max_message_bytes);
    out.push_back('}');
    return out;
  }

  // CONNECT's answer: 40{"sid":..}, with connection state recovery 40{"sid":..,"pid":..}
  std::string encode_connected_text(std::string_view session_id, std::string_view resume_id) const override {
    std::string out = "40{\"sid\":";
    append_json_string(out, session_id);
    if (!resume_id.empty()) {
      out.append(",\"pid\":");
      append_json_string(out, resume_id);
    }
    out.push_back('}');
    return out;
  }

  // CONNECT_ERROR: 44{"message":..}, which socket.io-client raises as `connect_error`.
  std::string encode_connect_refused_text(std::string_view reason) const override {
    std::string out = "44{\"message\":";
    append_json_string(out, reason);
    out.push_back('}');
    return out;
  }

  // Engine.IO v4: the server pings, the client answers "3".
  std::string encode_heartbeat_text() const override { return "2"; }

  // Socket.IO's DISCONNECT ("41") makes socket.io-client give up for good
  // ("io server disconnect"); a connection that just ends makes it reconnect
  // on its own. So:
  //   "41": normal (the host closed it), unauthorized, forbidden_origin,
  //         policy_violation, protocol_error, rate_limited: trying again
  //         would be refused the same way, or the host meant it;
  //   "":   going_away, reconnect_after, token_expired, idle_timeout,
  //         slow_consumer, internal_error, message_too_large and the rest:
  //         a new connection (with a new token, to another instance, with a
  //         fresh queue) can work, so automatic reconnection should run.
  // (ends_session_for_good, error.hpp, says which.)
  std::string encode_farewell_text(CloseCode code, std::string_view) const override {
    return ends_session_for_good(code) ? "41" : std::string();
  }

 private:
  // A namespace sent back as it came must be printable ASCII without the
  // comma that ends it (and short): nothing that could break the packet,
  // the UTF-8 of a text frame or a polling payload's separator.
  static bool echoable_namespace(std::string_view space) noexcept {
    if (space.size() > 128) return false;
    for (char c : space)
      if (c < 0x21 || c > 0x7e || c == ',') return false;
    return true;
  }

  // The text after Engine.IO's "4": one Socket.IO packet.
  DecodeResult decode_socketio(std::string_view text) const {
    PacketError error;
    const std::optional<detail::SocketIoPacket> packet = detail::read_socketio_packet(text, error);
    if (!packet) return refused(std::move(error));
    // Only an EVENT's id is the client's: an error answering it goes to the
    // client's acknowledgement. An ACK's id is the server's own count (and
    // would meet an unrelated emit of the client's), other packets have none.
    const std::optional<std::int64_t> id =
        packet->type == SocketIoType::event ? packet->ack_id : std::optional<std::int64_t>();
    if (packet->space != "/") {
      // Only "/" is served. A CONNECT elsewhere is refused in its own
      // namespace, which is where socket.io-client listens for the answer
      // (its `connect_error`); the main namespace's session goes on.
      if (packet->type == SocketIoType::connect && echoable_namespace(packet->space)) {
        std::string answer = "44" + std::string(packet->space) + ",";
        answer += R"({"message":"Invalid namespace"})";
        return DecodeResult::refuse_with(Errc::bad_request, "Invalid namespace", std::move(answer));
      }
      return DecodeResult::fail(Errc::bad_request, "Invalid namespace", id);
    }
    const std::string_view payload = trim_json_space(packet->payload);
    switch (packet->type) {
      case SocketIoType::connect: {
        ClientRequest r = request(ClientRequest::Op::connect);
        if (payload.empty()) return DecodeResult::ok(std::move(r));
        std::optional<detail::ConnectPayload> auth = detail::read_connect_payload(payload, error);
        if (!auth) return refused(std::move(error));
        r.auth.assign(payload);
        if (auth->has_token) r.token = std::move(auth->token);
        if (settings_.connection_state_recovery) {
          r.resume_id = std::move(auth->pid);
          r.resume_after = std::move(auth->offset);
        }
        return DecodeResult::ok(std::move(r));
      }
      case SocketIoType::disconnect:
        if (!payload.empty()) return DecodeResult::fail(Errc::bad_request, "DISCONNECT (41) carries no payload");
        return DecodeResult::ok(request(ClientRequest::Op::close));
      case SocketIoType::ack:
        // The client acknowledging a server emit: livecast asks for none, so there is nothing to do.
        if (!packet->ack_id) return DecodeResult::fail(Errc::bad_request, "an ACK (43) needs an id");
        if (!detail::read_ack_payload(payload, error)) return refused(std::move(error));
        return DecodeResult::ok(request(ClientRequest::Op::heartbeat));
      case SocketIoType::event:
        return decode_event(payload, id);
      default:  // read_socketio_packet refused the rest
        return DecodeResult::fail(Errc::unknown_op, "unknown Socket.IO packet type", id);
    }
  }

  // 42[<id>][name, ...args]: a subscription, or an event for the host.
  DecodeResult decode_event(std::string_view payload, std::optional<std::int64_t> id) const {
    if (payload.empty())
      return DecodeResult::fail(Errc::bad_request, "an EVENT (42) needs a payload [name, ...args]", id);
    PacketError error;
    std::optional<EventPayload> event = detail::read_event_payload(payload, error);
    if (!event) return DecodeResult::fail(error.code, std::move(error.message), id);
    // Event names are not echoed: they are the client's text and may be anything.
    if (detail::has_lone_surrogate(event->name))
      return DecodeResult::fail(Errc::bad_request, "an event's name must not contain lone surrogates", id);
    if (is_reserved_event(event->name))
      return DecodeResult::fail(Errc::bad_request, "reserved event name", id);

    const bool subscribe = event->name == settings_.subscribe_event;
    if (subscribe || event->name == settings_.unsubscribe_event) {
      ClientRequest r = request(subscribe ? ClientRequest::Op::subscribe : ClientRequest::Op::unsubscribe, id);
      if (std::optional<DecodeResult> bad = read_topic(*event, subscribe, r)) {
        bad->id = id;
        return std::move(*bad);
      }
      return DecodeResult::ok(std::move(r));
    }
    if (!event->args_valid)
      return DecodeResult::fail(Errc::invalid_payload, "an event's arguments must not contain lone surrogates", id);
    ClientRequest r = request(ClientRequest::Op::event, id);
    r.event = std::move(event->name);
    r.data = std::move(event->args);
    return DecodeResult::ok(std::move(r));
  }

  // The topic of a subscribe or unsubscribe event (its first argument, a
  // string or {topic, recover}) into `r`; the refusal when it has none.
  static std::optional<DecodeResult> read_topic(EventPayload& event, bool subscribe, ClientRequest& r) {
    using Member = EventPayload::Member;
    static constexpr std::string_view shape = "the first argument must be a topic, or an object with a \"topic\"";
    if (event.first == EventPayload::First::string) {
      r.topic = std::move(event.first_string);
    } else if (event.first == EventPayload::First::object && event.topic == Member::valid) {
      r.topic = std::move(event.topic_value);
      if (subscribe && event.recover == Member::invalid)
        return DecodeResult::fail(Errc::bad_request,
                                  "\"recover\" must be an object {\"epoch\": string, \"offset\": integer >= 0}");
      if (subscribe && event.recover == Member::valid)
        r.recover = StreamPosition{std::move(event.epoch), event.offset};
    } else {
      return DecodeResult::fail(Errc::bad_request, std::string(shape));
    }
    if (r.topic.empty()) return DecodeResult::fail(Errc::bad_request, "the topic must be a non-empty string");
    if (detail::has_lone_surrogate(r.topic))
      return DecodeResult::fail(Errc::invalid_topic, "the topic must not contain lone surrogates");
    return std::nullopt;
  }

  // The event a publication on `topic` arrives as: the topic itself, or
  // the host's name for it, kept in `custom`.
  std::string_view event_name(const std::string& topic, std::string& custom) const {
    if (!settings_.event_name) return topic;
    try {
      custom = settings_.event_name(topic);
    } catch (...) {
      // A host function that throws falls back to the topic's name (socketio.hpp).
      custom.clear();
    }
    return custom.empty() ? std::string_view(topic) : std::string_view(custom);
  }

  static void open_ack(std::string& out, std::int64_t id) {
    out.append("43");
    append_integer(out, id);
  }

  SocketIoSettings settings_;
};

}  // namespace

std::shared_ptr<const Protocol> make_socketio_protocol(SocketIoSettings settings) {
  return std::make_shared<const SocketIoProtocol>(std::move(settings));
}

LIVECAST_END_NAMESPACE
