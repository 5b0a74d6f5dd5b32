// Sans-I/O readers for the socket.io protocol (src/protocol/socketio.cpp):
// one Engine.IO v4 packet, as a transport hands it over (a WebSocket text
// message, or one element of a polling payload), split into what it says,
// and the two JSON payloads the protocol looks into (a CONNECT's `auth`
// object, an EVENT's `[name, ...args]` array).
//
// Nothing here allocates more than the input's size or does more than one
// pass over it: every message comes from a client. Nothing throws except
// std::bad_alloc.
#pragma once

#include <livecast/config.hpp>
#include <livecast/error.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

LIVECAST_BEGIN_NAMESPACE
namespace detail {

// Engine.IO v4 packet types: the first character of every packet.
enum class EngineIoType : char {
  open = '0',     // server -> client only
  close = '1',
  ping = '2',     // the server's heartbeat; a client's is tolerated
  pong = '3',
  message = '4',  // carries one Socket.IO packet
  upgrade = '5',  // only during a transport upgrade, which the transport handles
  noop = '6',
};

// Socket.IO v5 packet types: the first character after Engine.IO's "4".
enum class SocketIoType : char {
  connect = '0',
  disconnect = '1',
  event = '2',
  ack = '3',
  connect_error = '4',  // server -> client only
  binary_event = '5',
  binary_ack = '6',
};

// The header of a Socket.IO packet, with its JSON payload still as text.
struct SocketIoPacket {
  SocketIoType type = SocketIoType::event;
  std::string_view space = "/";          // the namespace ("/" when the packet names none)
  std::optional<std::int64_t> ack_id;    // the digits before the payload, when any
  std::string_view payload;              // the JSON text after the header; empty when none
};

// A reader's refusal: the error the client is told.
struct PacketError {
  Errc code = Errc::bad_request;
  std::string message;
  // A refused BINARY_EVENT's ack id, so that the refusal answers the
  // client's acknowledgement rather than arriving as an error event.
  std::optional<std::int64_t> ack_id;
};

// Reads the text after Engine.IO's "4". Refuses binary packets (5, 6),
// types a client never sends, ack ids that do not fit int64, and a namespace
// that never ends; any namespace is returned as read (the caller judges it).
// On success `error` is left alone.
std::optional<SocketIoPacket> read_socketio_packet(std::string_view text, PacketError& error);

// A CONNECT's payload: a JSON object (the client's `auth`), whose "token"
// member is read when it is a string.
struct ConnectPayload {
  std::string token;
  bool has_token = false;
  // Socket.IO's connection state recovery: the private id and last offset
  // socket.io-client adds to its auth when it comes back ("" when absent
  // or not strings).
  std::string pid;
  std::string offset;
};
std::optional<ConnectPayload> read_connect_payload(std::string_view json, PacketError& error);

// An EVENT's payload, `["name", ...args]`, and what the protocol needs from
// its first argument when the event is a subscription: a string (the topic)
// or an object {topic, recover: {epoch, offset}}.
struct EventPayload {
  std::string name;
  std::string args;  // the arguments after the name, as one compact JSON array ("[]" for none)
  // False when an argument held a lone surrogate escape, which cannot be
  // written as UTF-8 (`args` is then empty): an event refuses it, a
  // subscription judges only its topic.
  bool args_valid = true;
  enum class First { missing, string, object, other };
  First first = First::missing;
  std::string first_string;  // First::string: its value
  // First::object: its members, when they had the right types.
  enum class Member { missing, valid, invalid };
  Member topic = Member::missing;
  std::string topic_value;
  Member recover = Member::missing;  // invalid: not an object, or its epoch/offset missing or mistyped
  std::string epoch;
  std::uint64_t offset = 0;
};
std::optional<EventPayload> read_event_payload(std::string_view json, PacketError& error);

// Checks that an ACK's payload is a JSON array (the client acknowledging a
// server emit, which livecast does not ask for; it is read only to refuse garbage).
bool read_ack_payload(std::string_view json, PacketError& error);

// True when `s` holds a lone surrogate escape decoded by RapidJSON ("\udc00"
// becomes ED B0 80, which is not UTF-8).
bool has_lone_surrogate(std::string_view s) noexcept;

}  // namespace detail
LIVECAST_END_NAMESPACE
