// Protocols that connect in band (Protocol::connects_in_band: Socket.IO):
// the transport opens the session before anyone is authenticated, the
// protocol greets the client, and the client's first request, a connect,
// carries the credentials the Authenticator judges. Until then the session
// holds its handshake and can do nothing else; past
// SessionSettings::connect_timeout it is closed. Also the client events of
// such protocols (client_event.hpp) and their heartbeat.
//
// Threads: on the session's shard thread.
#include "broker_impl.hpp"

#include <livecast/json.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <utility>

LIVECAST_BEGIN_NAMESPACE

using detail::SessionState;

std::string detail::random_instance_tag() {
  static constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  std::random_device device;
  std::string tag(10, 'x');
  for (char& c : tag) c = alphabet[device() % 62];
  return tag + "-";
}

std::shared_ptr<Session> Broker::Impl::open_unauthenticated(std::size_t shard, std::size_t protocol,
                                                            SessionConnection& connection, HandshakeRequest request,
                                                            const Greeting& greeting) {
  Shard& s = *shards_[shard];
  auto session = std::make_shared<SessionState>(next_session_id_.fetch_add(1) + 1, Principal{}, shard, protocol,
                                                settings_.session, connection, &s.counters.send_queue_bytes);
  session->set_wire(this->protocol(protocol));
  session->awaiting_connect() = std::make_unique<HandshakeRequest>(std::move(request));
  s.counters.sessions_opened.fetch_add(1, std::memory_order_relaxed);
  // The drain hears of it once connected (a drain closes what connects
  // during it); until then the connect deadline bounds it.
  session->set_connect_deadline(std::chrono::system_clock::now() + settings_.session.connect_timeout);
  schedule_expiry(*session);
  if (FramePtr hello = this->protocol(protocol).encode_greeting(greeting)) session->send(std::move(hello));
  return session;
}

bool Broker::Impl::heartbeat(Session& s) {
  SessionState& session = SessionState::of(s);
  FramePtr beat = protocol(session.protocol()).encode_heartbeat();
  if (!beat) return false;
  session.send(std::move(beat));
  return true;
}

void Broker::Impl::rebind(Session& s, SessionConnection& connection) {
  SessionState& session = SessionState::of(s);
  session.set_connection(connection);
  if (!session.queue().empty()) connection.frames_ready();
}

void Broker::Impl::refuse_connect(SessionState& session, CloseCode code, std::string_view reason) {
  count_error(Errc::unauthorized);
  session.count_error_sent();
  session.send(protocol(session.protocol()).encode_connect_refused(reason));
  session.close(code, reason);
}

void Broker::Impl::connect(SessionState& session, ClientRequest r) {
  if (session.resuming()) {
    // Its connect is being answered (session_resume.cpp): the client waits
    // for that answer before anything else, so this is not one of its.
    if (r.op != ClientRequest::Op::heartbeat)
      send_error(session, r.id, Errc::bad_request, "the connect is not answered yet");
    return;
  }
  if (!session.awaiting_connect()) {
    // One connect per session: a second one (another namespace, a replay)
    // changes nothing.
    if (r.op == ClientRequest::Op::connect) send_error(session, r.id, Errc::bad_request, "already connected");
    return;
  }
  if (r.op == ClientRequest::Op::heartbeat) return;
  if (r.op != ClientRequest::Op::connect) {
    refuse_connect(session, CloseCode::policy_violation, "connect first");
    return;
  }
  HandshakeRequest& request = *session.awaiting_connect();
  request.auth = std::move(r.auth);
  request.auth_token = std::move(r.token);
  std::optional<AuthResult> verdict = authenticate(request);
  if (!verdict) {
    refuse_connect(session, CloseCode::internal_error, "the credentials could not be checked, try again");
    return;
  }
  if (!verdict->accepted()) {
    refuse_connect(session, CloseCode::unauthorized, verdict->reason.empty() ? "unauthorized" : verdict->reason);
    return;
  }
  session.awaiting_connect().reset();
  session.set_principal(std::move(*verdict->principal));
  drain_->opened(session);
  if (session.principal().expires_at) schedule_expiry(session);
  // The session's public name (socket.id): unique across instances, since
  // clients of several behind one balancer may compare theirs.
  std::string name = instance_tag_ + std::to_string(session.id());
  if (!r.resume_id.empty()) {
    resume(session, std::move(r.resume_id), std::move(r.resume_after), std::move(name));  // session_resume.cpp
    return;
  }
  connected(session, name);
}

void Broker::Impl::client_event(SessionState& session, ClientRequest r) {
  ClientEventReply reply = ClientEventReply::refuse(Errc::unknown_op, "no handler for this event");
  if (settings_.on_client_event) {
    const ClientEvent event{session, r.event, r.data.empty() ? std::string_view("[]") : std::string_view(r.data),
                            r.id.has_value()};
    if (!guarded("on_client_event", [&] { reply = settings_.on_client_event(event); }))
      reply = ClientEventReply::refuse(Errc::internal_error, "the server failed on this event");
  }
  if (reply.error != Errc::ok) {
    send_error(session, r.id, reply.error, reply.message);
    return;
  }
  if (!r.id) return;
  const std::size_t first = reply.ack.find_first_not_of(" \t\r\n");
  if (first == std::string::npos || reply.ack[first] != '[' || !is_valid_json(reply.ack)) {
    report_error("on_client_event answered an ack that is not a JSON array", make_error_code(Errc::internal_error));
    send_error(session, r.id, Errc::internal_error, "the server's answer was not valid");
    return;
  }
  if (FramePtr ack = protocol(session.protocol()).encode_ack(*r.id, reply.ack)) session.send(std::move(ack));
}

LIVECAST_END_NAMESPACE
