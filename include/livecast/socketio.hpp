// Socket.IO compatibility: a Protocol that speaks Engine.IO v4 and
// Socket.IO v5, so that an unchanged socket.io-client 4.x connects to
// livecast (docs/socketio.md, "Coming from Socket.IO").
//
//   BrokerSettings settings;
//   settings.protocols = {make_livecast_v1_protocol(), make_socketio_protocol()};
//   // the WebSocket and HTTP transports then serve /socket.io/ as well
//
// How Socket.IO's ideas map onto livecast's:
//   - a room is a topic: a server-side join is BrokerSettings::server_joins,
//     and `io.to(room).emit(event, data)` is `broker.publish(room, data)`,
//     which arrives as the event SocketIoSettings::event_name(room) names;
//   - the client's `auth` in its CONNECT goes to the Authenticator
//     (HandshakeRequest::auth, and its token as HandshakeRequest::token());
//     a refusal reaches the client as `connect_error` with the reason;
//   - `socket.emit(name, ...args, ack)` reaches
//     BrokerSettings::on_client_event, whose answer is the acknowledgement;
//     the events subscribe_event and unsubscribe_event are subscriptions
//     (through the Authorizer), answered in the acknowledgement;
//   - errors that answer no acknowledgement arrive as the event error_event.
// Only the main namespace "/" exists; binary attachments are refused.
#pragma once

#include <livecast/config.hpp>
#include <livecast/protocol.hpp>

#include <functional>
#include <memory>
#include <string>
#include <string_view>

LIVECAST_BEGIN_NAMESPACE

struct SocketIoSettings {
  // The event a publication on `topic` arrives as; empty: the topic's own
  // name. Called once per publication (not per client), from any thread; it
  // must not block, and if it throws the topic's name is used.
  std::function<std::string(std::string_view topic)> event_name;
  // `socket.emit(subscribe_event, topic, ack)` (or `{topic}`) subscribes;
  // the ack gets `{topic, epoch, offset, recovered}` or `{error: {code, message}}`.
  std::string subscribe_event = "subscribe";
  std::string unsubscribe_event = "unsubscribe";
  // Errors with no acknowledgement to answer: `{code, message}`.
  std::string error_event = "livecast:error";
  // Socket.IO 4.6+'s connection state recovery (its server option
  // `connectionStateRecovery`): the CONNECT answer carries a private id
  // (`pid`) and every publication an offset as its event's last argument;
  // a client that comes back within RecoverySettings::resume_window gets
  // its rooms back with what it missed, and `socket.recovered` true, from
  // the topics' history: across instances with the Redis backend. Where
  // history cannot cover the gap, `socket.recovered` is false and the
  // session starts over (server-side joins again). Off by default, as in
  // Socket.IO, since listeners then receive one more argument.
  bool connection_state_recovery = false;
};

// The protocol's name on the broker (find_protocol): "socket.io".
inline constexpr std::string_view socketio_protocol_name = "socket.io";

// Defined in src/protocol/socketio.cpp.
std::shared_ptr<const Protocol> make_socketio_protocol(SocketIoSettings settings = {});

LIVECAST_END_NAMESPACE
