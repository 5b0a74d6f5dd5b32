// What a transport sees of the broker: shards to run on, handshakes to
// authenticate, sessions to open, feed and close, and each session's outgoing
// frames. Transport authors include this header (and transport.hpp);
// embedders never need it. Get it from Broker::session_host().
//
// The path of a client through it:
//   handshake    authenticate(request)           -> Principal, or a refusal
//   open         open_session(shard, principal, protocol, connection)
//   messages     handle_message(session, bytes)  (rate limit, size, Protocol::decode, execute)
//                execute(session, request)       (a request the transport built: SSE/poll URL topics)
//   writing      SessionConnection::frames_ready -> take_frames ... frames_written
//   end          close_session(session)
//
// Threads: everything about a session runs on the thread of the shard that
// owns it (Session::shard()); shard_count(), shard_context(), accepting(),
// draining(), find_protocol(), protocol(), check_publish(), count_error(),
// report_error() and log() may be called from any thread.
#pragma once

#include <livecast/config.hpp>
#include <livecast/error.hpp>
#include <livecast/handshake.hpp>
#include <livecast/log.hpp>
#include <livecast/principal.hpp>
#include <livecast/protocol.hpp>
#include <livecast/publication.hpp>
#include <livecast/session.hpp>
#include <livecast/transport.hpp>

#include <asio/io_context.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

LIVECAST_BEGIN_NAMESPACE

// Implemented by transports: how the core asks a connection to act. Called
// only on the thread of the shard that owns the session.
class SessionConnection {
 public:
  virtual ~SessionConnection() = default;
  // The session's queue went from empty to non-empty: schedule a write.
  virtual void frames_ready() = 0;
  // Close the connection. Must not call back into the broker synchronously:
  // the transport reports the closed session later, from its own handler.
  virtual void close(CloseCode code, std::string_view reason) = 0;
};

class SessionHost {
 public:
  // --- shards (any thread) ---
  virtual std::size_t shard_count() const noexcept = 0;
  // The io_context of `shard`: a transport's sockets and timers for the
  // sessions of that shard live on it.
  virtual asio::io_context& shard_context(std::size_t shard) noexcept = 0;
  // Runs `f` on `shard`'s thread and waits for it; inline when called on
  // that thread or when the shard's thread is not running (for start/stop).
  virtual void execute_on_shard(std::size_t shard, const std::function<void()>& f) = 0;
  // False once the broker stops, and while it drains: refuse new handshakes (503).
  virtual bool accepting() const noexcept = 0;
  // While the broker drains (Broker::drain): the Retry-After of that 503;
  // nullopt otherwise. A handshake already past the check when the drain
  // began may still open its session: the drain closes it like the others.
  virtual std::optional<std::chrono::seconds> draining() const noexcept = 0;

  // --- handshakes ---
  // The Authenticator's verdict; nullopt when it threw (reported to
  // on_error): a server fault, not a verdict on the token.
  virtual std::optional<AuthResult> authenticate(const HandshakeRequest& request) = 0;
  // The index of the protocol called `name`; the default (0) for an empty name.
  virtual std::optional<std::size_t> find_protocol(std::string_view name) const noexcept = 0;
  virtual const Protocol& protocol(std::size_t index) const noexcept = 0;
  virtual const SessionSettings& session_settings() const noexcept = 0;
  // Answers a plain HTTP request with the host's handler (default: 404); a
  // handler that throws is reported to on_error and answered with 500.
  virtual HttpResponse serve_http(const HttpHandler& handler, const HttpRequest& request) = 0;

  // --- sessions (on the session's shard thread) ---
  // After the Authenticator accepted: opens a session on `shard` and runs the
  // server-side joins (their replies may be queued before this returns).
  virtual std::shared_ptr<Session> open_session(std::size_t shard, Principal principal, std::size_t protocol,
                                                SessionConnection& connection) = 0;
  // For a protocol that connects in band (Protocol::connects_in_band): opens
  // a session with no principal yet, and queues the protocol's greeting. Its
  // first request must be a connect (ClientRequest::Op::connect), which the
  // broker authenticates with `request` plus the request's credentials; until
  // then it can do nothing else, and it is closed with CloseCode::unauthorized
  // if none comes within SessionSettings::connect_timeout.
  virtual std::shared_ptr<Session> open_unauthenticated(std::size_t shard, std::size_t protocol,
                                                        SessionConnection& connection, HandshakeRequest request,
                                                        const Greeting& greeting) = 0;
  // The session goes on over another connection of the same shard
  // (Engine.IO's upgrade from polling to a WebSocket): from now on the core
  // calls `connection`, which is told at once if frames are waiting.
  virtual void rebind(Session& session, SessionConnection& connection) = 0;
  // Queues the protocol's heartbeat (Protocol::encode_heartbeat) for the
  // session; false when its protocol has none, and the transport pings its
  // own way.
  virtual bool heartbeat(Session& session) = 0;
  // One client message: the session's rate limit and size limit, then its
  // Protocol's decode, then execute().
  virtual void handle_message(Session& session, std::string_view message) = 0;
  // A request the transport built itself (the topics an SSE or poll URL
  // names): run as if sent, without protocol text, outside the rate limit.
  virtual void execute(Session& session, ClientRequest request) = 0;
  // The connection ended: the session leaves its topics and its queue is
  // freed. Call before the last reference to the session goes away.
  virtual void close_session(Session& session) = 0;

  // --- a session's outgoing frames (its bounded send queue) ---
  // Moves queued frames to `out` (appending): at least one, then as many as
  // fit in `max_bytes`. Their bytes count against the session's budget, as
  // in flight, until frames_written() or set_in_flight() says otherwise.
  virtual std::size_t take_frames(Session& session, std::vector<FramePtr>& out,
                                  std::size_t max_bytes = std::numeric_limits<std::size_t>::max()) = 0;
  // `bytes` of what was taken reached the socket.
  virtual void frames_written(Session& session, std::size_t bytes) noexcept = 0;
  // For transports that only know how much they hold themselves.
  virtual void set_in_flight(Session& session, std::size_t bytes) noexcept = 0;
  virtual bool has_frames(const Session& session) const noexcept = 0;

  // --- publishing on a client's behalf (any thread) ---
  // Whether `principal` may publish on `topic`, before anything is published
  // (HTTP's POST /publish checks a whole batch first): Errc::ok,
  // invalid_topic, forbidden, or internal_error when the Authorizer threw
  // (counted and reported to on_error). Publish through Broker::publish.
  virtual Errc check_publish(std::string_view topic, const Principal& principal) = 0;

  // --- errors and events (any thread) ---
  // An event for BrokerSettings::log (a transport started or stopped); never
  // per request. The sink's exceptions are swallowed.
  virtual void log(LogLevel level, std::string_view name, std::vector<LogField> fields = {}) noexcept = 0;
  // An error the transport handled itself (e.g. an oversized frame refused
  // before it became a message), in BrokerMetrics::errors_by_code.
  virtual void count_error(Errc e) noexcept = 0;
  // A failure that is not a client's fault, to the host's on_error (rate limited).
  virtual void report_error(const std::string& what, std::error_code ec) = 0;

 protected:
  ~SessionHost() = default;  // owned by the Broker
};

LIVECAST_END_NAMESPACE
