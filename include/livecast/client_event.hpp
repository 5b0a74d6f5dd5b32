// Client events: named messages a client sends for the host's code rather
// than for the broker (Socket.IO's `socket.emit("name", ...args, ack)`), and
// the host's answer to them. The protocol decodes them
// (ClientRequest::Op::event); the broker hands each to
// BrokerSettings::on_client_event and sends its answer back as the event's
// acknowledgement when the client asked for one.
//
// Subscribing is not an event: a protocol maps its subscribe message (for
// Socket.IO, the event SocketIoSettings::subscribe_event) to a subscribe,
// which goes through the Authorizer like any other.
//
// Threads: the handler runs on the thread of the shard that owns the
// session, in the middle of the broker's work: it must be cheap and must not
// block (answer from memory, or post the work elsewhere and answer with
// nothing). One that throws is counted in BrokerMetrics::callback_errors,
// reported to on_error, and the client gets Errc::internal_error.
#pragma once

#include <livecast/config.hpp>
#include <livecast/error.hpp>
#include <livecast/session.hpp>

#include <functional>
#include <string>
#include <string_view>
#include <utility>

LIVECAST_BEGIN_NAMESPACE

// One event as the client sent it. Valid only during the handler's call.
struct ClientEvent {
  const Session& session;  // who sent it: Session::principal() says who they are
  std::string_view name;
  std::string_view args;   // its arguments, a JSON array (validated)
  bool wants_ack = false;  // the client waits for an answer
};

// The handler's answer: the acknowledgement's arguments (a JSON array; "[]"
// for none), or an error the client is told instead.
struct ClientEventReply {
  std::string ack = "[]";
  Errc error = Errc::ok;
  std::string message;

  static ClientEventReply acknowledge(std::string args = "[]") { return {std::move(args), Errc::ok, {}}; }
  static ClientEventReply refuse(Errc e, std::string why) { return {{}, e, std::move(why)}; }
};

// Without a handler, every event is refused with Errc::unknown_op.
using ClientEventHandler = std::function<ClientEventReply(const ClientEvent&)>;

LIVECAST_END_NAMESPACE
