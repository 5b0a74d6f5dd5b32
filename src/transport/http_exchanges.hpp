// The three ways the HTTP transport serves a session over plain HTTP, each an
// HttpExchange on one HttpConnection (docs/protocol.md, "HTTP fallbacks"):
//   SseStream      GET /sse:  an event stream, one event per frame, the cursor as event id
//   LongPoll       GET /poll: waits for news, answers with a batch and the cursor
//   PostedMessage  POST /poll: runs one client message, answers with its reply
// (the last two are BatchExchanges: answered once, with a batch of frames).
// Each owns its session (a SessionConnection) for its duration, follows
// positions through frame metadata (CursorTracker) and formats batches
// with the session's Protocol, so any protocol works over them.
//
// Threads: on the connection's shard thread. Handlers posted by an exchange
// hold it (shared_ptr) and do nothing once it ended.
#pragma once

#include "cursor_tracker.hpp"
#include "http_connection.hpp"
#include "http_counters.hpp"

#include <livecast/config.hpp>
#include <livecast/http_transport.hpp>
#include <livecast/session_host.hpp>

#include <asio/steady_timer.hpp>

#include <atomic>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

LIVECAST_BEGIN_NAMESPACE
namespace detail {

// What an SSE or poll URL subscribes: its topics in order, the cursor's
// positions to recover from, and recent history for the others.
struct UrlSubscriptions {
  std::vector<std::string> topics;
  StreamCursor cursor;
  RecentRequests recent;
};

// What every exchange of one shard shares.
struct HttpExchangeContext {
  SessionHost& host;
  std::size_t shard;
  const HttpTransportSettings& settings;
  HttpCounters& counters;
};

// An exchange that owns a session: opening it, the topics of the URL, and
// closing it, once.
class SessionExchange : public HttpExchange,
                        public SessionConnection,
                        public std::enable_shared_from_this<SessionExchange> {
 public:
  void end() override;
  // SessionConnection: called from inside broker code, so both act on a
  // later turn.
  void frames_ready() override;
  void close(CloseCode code, std::string_view reason) override;

 protected:
  SessionExchange(const HttpExchangeContext& context, HttpConnection& connection, std::size_t protocol)
      : context_(context), connection_(connection), protocol_(protocol) {}

  void open(Principal principal);
  // The URL's topics in order, as if the client had sent subscribe requests
  // with ids 1..N (and its cursor's positions to recover from, or the
  // recent history asked for topics the cursor has no position on).
  void subscribe_all(const UrlSubscriptions& url);
  void end_session();
  const Protocol& protocol() const { return context_.host.protocol(protocol_); }
  SessionHost& host() const { return context_.host; }

  // Frames were queued (on a later turn than the broker's call).
  virtual void on_frames() = 0;
  virtual void on_session_closed(CloseCode code, const std::string& reason) = 0;
  virtual void on_end() {}

  const HttpExchangeContext& context_;
  HttpConnection& connection_;  // outlives the exchange until end()
  std::size_t protocol_;
  std::shared_ptr<Session> session_;
  CursorTracker tracker_;
  bool ended_ = false;

 private:
  bool frames_posted_ = false;
};

class SseStream final : public SessionExchange {
 public:
  // The request was admitted (topics, cursor, protocol and token valid).
  static void start(const HttpExchangeContext& context, HttpConnection& connection, std::size_t protocol,
                    Principal principal, const UrlSubscriptions& url);

  SseStream(const HttpExchangeContext& context, HttpConnection& connection, std::size_t protocol)
      : SessionExchange(context, connection, protocol), heartbeat_(connection.context()) {}

  bool fill(HttpOutput& out) override;
  void written() override;
  void shut_down() override;

 private:
  void on_frames() override { connection_.write_ready(); }
  void on_session_closed(CloseCode code, const std::string& reason) override;
  void on_end() override;
  void begin_close(CloseCode code, std::string_view reason);
  void stop_counting();
  void arm_heartbeat();
  void add_event(HttpOutput& out, const FramePtr& frame, bool with_id);

  asio::steady_timer heartbeat_;
  std::string head_;      // the response head, until written
  std::string text_;      // event-stream text before the next frames (retry, heartbeat)
  std::string closing_;   // the close event, after the last frames
  bool chunked_ = true;   // chunked, or close-delimited for HTTP/1.0 clients
  bool end_stream_ = false;
  bool counted_active_ = false;  // in HttpCounters::sse_active
  std::size_t taken_bytes_ = 0;  // frames in the write under way
};

// An exchange answered once, with a batch of the session's frames: it
// collects what the session queues until it has its answer (or time is up),
// then ends the session and writes the batch in the protocol's framing.
class BatchExchange : public SessionExchange {
 public:
  bool fill(HttpOutput& out) override;
  void shut_down() override { answer(); }

 protected:
  BatchExchange(const HttpExchangeContext& context, HttpConnection& connection, std::size_t protocol,
                std::atomic<std::uint64_t>& answered_counter)
      : SessionExchange(context, connection, protocol), timer_(connection.context()), counter_(answered_counter) {}

  // Takes what the session queued into frames_; true when it is time to answer.
  virtual bool collect() = 0;
  // How the protocol frames the batch (a poll's carries the cursor).
  virtual MessageBatchFraming framing() const = 0;
  void answer();
  // Answers after `after` unless it answered before.
  void answer_after(std::chrono::milliseconds after);

  asio::steady_timer timer_;
  std::vector<FramePtr> frames_;  // the answer's messages
  std::vector<FramePtr> taken_;   // scratch for take_frames
  bool answered_ = false;

 private:
  void on_frames() override {
    if (!answered_ && collect()) answer();
  }
  void on_session_closed(CloseCode, const std::string&) override { answer(); }
  void on_end() override { timer_.cancel(); }

  std::atomic<std::uint64_t>& counter_;
};

class LongPoll final : public BatchExchange {
 public:
  static void start(const HttpExchangeContext& context, HttpConnection& connection, std::size_t protocol,
                    Principal principal, const UrlSubscriptions& url, std::chrono::milliseconds timeout);

  LongPoll(const HttpExchangeContext& context, HttpConnection& connection, std::size_t protocol)
      : BatchExchange(context, connection, protocol, context.counters.polls) {}

 private:
  // True when the answer is full; news starts the coalescing window.
  bool collect() override;
  MessageBatchFraming framing() const override { return protocol().batch_framing(tracker_.cursor()); }

  std::size_t bytes_ = 0;
  bool coalescing_ = false;
};

class PostedMessage final : public BatchExchange {
 public:
  static void start(const HttpExchangeContext& context, HttpConnection& connection, std::size_t protocol,
                    Principal principal);

  PostedMessage(const HttpExchangeContext& context, HttpConnection& connection, std::size_t protocol)
      : BatchExchange(context, connection, protocol, context.counters.posts) {}

 private:
  // Keeps what answers the request; true once its reply is in.
  bool collect() override;
  MessageBatchFraming framing() const override { return protocol().batch_framing(std::nullopt); }

  std::optional<std::int64_t> id_;
};


}  // namespace detail
LIVECAST_END_NAMESPACE
