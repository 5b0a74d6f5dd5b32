// The wire protocol seam: how client messages are decoded and how replies,
// errors, notices and publications are encoded. `livecast.v1`
// (docs/protocol.md) is the built-in one; another (a Socket.IO-compatible
// one, a line-oriented test protocol) is added beside it without touching
// Broker, Topic, Session or any transport. Protocols are stateless and
// thread-safe.
//
// The encoders are non-virtual: each asks the protocol for the bytes
// (encode_*_text) and wraps them in a Frame whose metadata (kind, request id,
// topic, position) it sets itself, so that the metadata transports rely on
// cannot disagree with what was encoded.
#pragma once

#include <livecast/config.hpp>
#include <livecast/error.hpp>
#include <livecast/publication.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

LIVECAST_BEGIN_NAMESPACE

// A decoded client request. Transports that take a request from somewhere
// other than a protocol message (an SSE or poll URL names its topics) build
// one themselves and hand it to the broker as it is.
struct ClientRequest {
  // connect: the credentials of a protocol that authenticates in its first
  // message (Protocol::connects_in_band). event: a named client event for the
  // host's ClientEventHandler. close: the client says goodbye. heartbeat: an
  // answer to the server's heartbeat (or a no-op): nothing to do, nothing sent.
  enum class Op { subscribe, unsubscribe, publish, ping, refresh, connect, event, close, heartbeat };
  Op op = Op::ping;
  // Echoed in the reply. Without one, subscribe still replies (with no id);
  // ping, unsubscribe, publish and refresh send no reply on success.
  std::optional<std::int64_t> id;
  std::string topic;                       // subscribe, unsubscribe, publish
  std::optional<StreamPosition> recover;   // subscribe: resume after this position
  // subscribe without `recover`: recent history besides the latest value
  // (ignored with `recover`, whose answer already continues the client's own).
  std::optional<RecentHistory> recent;
  std::string data;                        // publish: the JSON text of "data"; event: a JSON array of its arguments
  std::string event;                       // event: its name
  // connect: the JSON object the client sent as its credentials (Socket.IO's
  // `auth`), "" when none; its "token" string member, if any, is `token`.
  std::string auth;
  // refresh: a newer token for the same principal, so that the session
  // outlives the one it connected with (Principal::expires_at). connect: the
  // token of the credentials.
  std::string token;
  // connect, for a protocol that resumes sessions (Protocol::resumes_sessions):
  // the private id of the session the client resumes ("" for a new one),
  // and the token of the last publication it received from it
  // (publication_token; "" when none).
  std::string resume_id;
  std::string resume_after;
  // close: the client's transport is closing, not the client leaving (an
  // Engine.IO close, where Socket.IO's DISCONNECT is the leaving): a
  // resumable session is kept for its return.
  bool may_return = false;
};

// A short text naming a publication, its topic and offset, that a client of
// a protocol that resumes sessions hands back when it resumes (Socket.IO's
// offset, the last argument of each event). Not a secret.
std::string publication_token(std::string_view topic, std::uint64_t offset);

// decode()'s answer: a request, or an error to reply with (and the request id
// when it could be read, so the client can match the error to its request).
struct DecodeResult {
  std::optional<ClientRequest> request;
  Errc error = Errc::ok;
  std::string message;
  std::optional<std::int64_t> id;
  // With an error: what the protocol answers itself, instead of its
  // encode_error, when its own rules say how to refuse (Socket.IO refuses a
  // CONNECT to a namespace it does not serve with a CONNECT_ERROR in that
  // namespace). The session goes on, connected or not.
  std::string answer;

  static DecodeResult ok(ClientRequest r) {
    auto id = r.id;
    return {std::move(r), Errc::ok, {}, id, {}};
  }
  static DecodeResult fail(Errc e, std::string why, std::optional<std::int64_t> id = {}) {
    return {std::nullopt, e, std::move(why), id, {}};
  }
  static DecodeResult refuse_with(Errc e, std::string why, std::string answer) {
    return {std::nullopt, e, std::move(why), std::nullopt, std::move(answer)};
  }
};

// What a protocol that greets its clients (encode_greeting) tells them when
// the session opens: Engine.IO's open packet carries all of it.
struct Greeting {
  std::string session_id;                 // the connection's id for the client (Engine.IO's sid)
  std::chrono::milliseconds heartbeat_interval{0};  // how often the server's heartbeat comes
  std::chrono::milliseconds heartbeat_timeout{0};   // how long the client waits past that before giving up
  std::size_t max_message_bytes = 0;      // largest message the server accepts
  std::vector<std::string> upgrades;      // transports the client may upgrade to (polling -> websocket)
};

// How several messages travel in one HTTP body (a long-poll answer, the
// answer to a POSTed message): `head`, the messages separated by
// `separator`, then `tail`. The messages go out unjoined, as they are.
struct MessageBatchFraming {
  std::string content_type;
  std::string head;
  std::string separator;
  std::string tail;
};

class Protocol {
 public:
  virtual ~Protocol() = default;
  // Also the WebSocket subprotocol name offered by clients, and the value of
  // `protocol=` on the HTTP fallbacks.
  virtual std::string_view name() const noexcept = 0;
  virtual DecodeResult decode(std::string_view message) const = 0;

  // A publication, built once and shared by every session on this protocol.
  FramePtr encode_publication(const Publication& publication) const {
    auto f = make(encode_publication_text(publication), Frame::Kind::publication, std::nullopt);
    f->topic = publication.topic;
    f->offset = publication.offset;
    f->epoch = publication.epoch;
    return f;
  }
  // A subscription starts at `head`: the reply to a subscribe request, or,
  // without id, a notice (a server-side join; live subscribers starting over
  // after the history they followed was lost). `recovered`: the publications
  // after the client's asked position follow; otherwise the latest value does.
  // Null when the protocol says nothing (Socket.IO tells no one of a join).
  FramePtr encode_subscribed(std::optional<std::int64_t> id, const std::string& topic, const StreamPosition& head,
                             bool recovered) const {
    std::string text = encode_subscribed_text(id, topic, head, recovered);
    if (text.empty()) return nullptr;
    auto f = make(std::move(text), id ? Frame::Kind::reply : Frame::Kind::notice, id);
    f->topic = topic;
    f->head = head;
    f->recovered = recovered;
    return f;
  }
  FramePtr encode_unsubscribed(std::int64_t id, const std::string& topic) const {
    auto f = make(encode_unsubscribed_text(id, topic), Frame::Kind::reply, id);
    f->topic = topic;
    return f;
  }
  // A client's publication was accepted at `offset`.
  FramePtr encode_published(std::int64_t id, const std::string& topic, std::uint64_t offset) const {
    auto f = make(encode_published_text(id, topic, offset), Frame::Kind::reply, id);
    f->topic = topic;
    f->offset = offset;
    return f;
  }
  FramePtr encode_pong(std::int64_t id) const { return make(encode_pong_text(id), Frame::Kind::reply, id); }
  // A refresh was accepted: the session now lasts until `expires_at` (none: no end).
  FramePtr encode_refreshed(std::int64_t id, std::optional<std::chrono::system_clock::time_point> expires_at) const {
    return make(encode_refreshed_text(id, expires_at), Frame::Kind::reply, id);
  }
  FramePtr encode_error(std::optional<std::int64_t> id, Errc code, std::string_view message) const {
    return make(encode_error_text(id, code, message), Frame::Kind::error, id);
  }
  // A refusal decode() wrote itself (DecodeResult::answer).
  FramePtr encode_refusal(const DecodeResult& refused) const {
    if (refused.answer.empty()) return encode_error(refused.id, refused.error, refused.message);
    return make(refused.answer, Frame::Kind::error, refused.id);
  }
  // The host answered a client event (ClientRequest::Op::event) that asked
  // for an acknowledgement: `args`, a JSON array, are the answer's arguments.
  // Null for a protocol without events.
  FramePtr encode_ack(std::int64_t id, std::string_view args) const {
    std::string text = encode_ack_text(id, args);
    return text.empty() ? nullptr : make(std::move(text), Frame::Kind::reply, id);
  }

  // --- protocols that connect in band (Socket.IO: Engine.IO's open packet,
  // then a CONNECT message carrying the credentials) ---

  // True when a client's credentials arrive in its first message
  // (ClientRequest::Op::connect) rather than with the transport's
  // handshake: the transport then opens the session before authenticating
  // (SessionHost::open_unauthenticated) and the broker authenticates the
  // connect request.
  virtual bool connects_in_band() const noexcept { return false; }
  // True when a binary message is never one of this protocol's messages
  // but part of one decode() refuses (Socket.IO's binary attachments,
  // which follow their packet): the transport drops it, counted as
  // Errc::bad_request, instead of closing the connection.
  virtual bool drops_binary_messages() const noexcept { return false; }
  // True when a client that lost its connection may come back to its
  // session (Socket.IO's connection state recovery): the connect answer
  // gives it a private resume id, each publication carries its
  // publication_token, and a connect with both (ClientRequest::resume_id,
  // resume_after) gets the session's subscriptions back with what was
  // missed, or a new session when history cannot cover the gap
  // (RecoverySettings::resume_window; docs/socketio.md).
  virtual bool resumes_sessions() const noexcept { return false; }
  // What the server says first, as soon as the session opens (Engine.IO's
  // open packet); null when the protocol says nothing first.
  FramePtr encode_greeting(const Greeting& greeting) const {
    std::string text = encode_greeting_text(greeting);
    return text.empty() ? nullptr : make(std::move(text), Frame::Kind::notice, std::nullopt);
  }
  // The connect request was accepted (`session_id`: the session's public
  // name for the client; `resume_id`: the private id it resumes the session
  // with, "" when the protocol does not resume sessions) or refused
  // (`reason`, the Authenticator's).
  FramePtr encode_connected(std::string_view session_id, std::string_view resume_id = {}) const {
    return make(encode_connected_text(session_id, resume_id), Frame::Kind::reply, std::nullopt);
  }
  FramePtr encode_connect_refused(std::string_view reason) const {
    return make(encode_connect_refused_text(reason), Frame::Kind::error, std::nullopt);
  }
  // The server's heartbeat, which the client must answer (Engine.IO's ping);
  // null when the protocol has none and the transport pings its own way.
  FramePtr encode_heartbeat() const {
    std::string text = encode_heartbeat_text();
    return text.empty() ? nullptr : make(std::move(text), Frame::Kind::notice, std::nullopt);
  }
  // Said before the server closes the session with `code` (Socket.IO's
  // DISCONNECT, which tells the client not to reconnect); null for nothing.
  FramePtr encode_farewell(CloseCode code, std::string_view reason) const {
    std::string text = encode_farewell_text(code, reason);
    return text.empty() ? nullptr : make(std::move(text), Frame::Kind::notice, std::nullopt);
  }

  // How an HTTP body carries several of this protocol's messages; `cursor`
  // (the client's positions, see docs/protocol.md) for a long-poll answer,
  // nullopt for the answer to a POSTed message.
  virtual MessageBatchFraming batch_framing(std::optional<std::string_view> cursor) const = 0;

 protected:
  virtual std::string encode_publication_text(const Publication& publication) const = 0;
  virtual std::string encode_subscribed_text(std::optional<std::int64_t> id, const std::string& topic,
                                             const StreamPosition& head, bool recovered) const = 0;
  virtual std::string encode_unsubscribed_text(std::int64_t id, const std::string& topic) const = 0;
  virtual std::string encode_published_text(std::int64_t id, const std::string& topic,
                                            std::uint64_t offset) const = 0;
  virtual std::string encode_pong_text(std::int64_t id) const = 0;
  virtual std::string encode_refreshed_text(std::int64_t id,
                                            std::optional<std::chrono::system_clock::time_point> expires_at) const = 0;
  virtual std::string encode_error_text(std::optional<std::int64_t> id, Errc code,
                                        std::string_view message) const = 0;
  virtual std::string encode_ack_text(std::int64_t, std::string_view) const { return {}; }
  // For in-band protocols; the defaults say nothing ("" sends no frame).
  virtual std::string encode_greeting_text(const Greeting&) const { return {}; }
  virtual std::string encode_connected_text(std::string_view, std::string_view) const { return {}; }
  virtual std::string encode_connect_refused_text(std::string_view reason) const {
    return encode_error_text(std::nullopt, Errc::unauthorized, reason);
  }
  virtual std::string encode_heartbeat_text() const { return {}; }
  virtual std::string encode_farewell_text(CloseCode, std::string_view) const { return {}; }

 private:
  static std::shared_ptr<Frame> make(std::string bytes, Frame::Kind kind, std::optional<std::int64_t> id) {
    auto f = std::make_shared<Frame>();
    f->bytes = std::move(bytes);
    f->kind = kind;
    f->request_id = id;
    return f;
  }
};

// The livecast.v1 JSON protocol. Defined in src/protocol/livecast_v1.cpp.
std::shared_ptr<const Protocol> make_livecast_v1_protocol();

LIVECAST_END_NAMESPACE
