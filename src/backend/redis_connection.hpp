// One connection to a Redis server on Asio: resolve, connect, AUTH/SELECT,
// pipelined commands answered in FIFO order, timeouts, and reconnection with
// capped, jittered exponential back-off. In subscriber mode it also keeps a
// set of channels, subscribes them again after every reconnect and hands
// pushed messages to a callback; sharded, it does the same with Redis 7's
// SSUBSCRIBE for one Cluster node.
//
// Threads: every member is called on the io_context's (single) thread, and
// every callback runs there.
#pragma once

#include "redis_protocol.hpp"

#include <livecast/config.hpp>

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

LIVECAST_BEGIN_NAMESPACE

// redis://[[user]:password@]host[:port][/db]
struct RedisUrl {
  std::string host = "127.0.0.1";
  std::string port = "6379";
  std::string user;
  std::string password;
  int db = 0;

  static std::optional<RedisUrl> parse(std::string_view url);
};

struct RedisConnectionSettings {
  RedisUrl url;
  std::chrono::milliseconds connect_timeout{2000};
  // A command unanswered for this long means the server is gone: the
  // connection is dropped and every pending command fails.
  std::chrono::milliseconds command_timeout{5000};
  std::chrono::milliseconds min_backoff{50};
  std::chrono::milliseconds max_backoff{2000};
  // Commands written but not yet answered; past it execute() fails at once.
  std::size_t max_pending = 100000;
  // Command bytes not yet taken by the kernel (a Redis that stopped reading);
  // past it execute() fails at once, so a stuck server costs bounded memory.
  std::size_t max_queued_bytes = 64 * 1024 * 1024;
  bool subscriber = false;
  // Subscriber mode with SSUBSCRIBE/SUNSUBSCRIBE (sharded Pub/Sub, Redis >= 7).
  bool sharded = false;
};

// Settings for `url` (throws std::invalid_argument when it is malformed).
RedisConnectionSettings redis_connection_settings(const std::string& url, std::chrono::milliseconds connect_timeout,
                                                  std::chrono::milliseconds command_timeout);

class RedisConnection {
 public:
  using ReplyHandler = std::function<void(std::error_code, RedisReply)>;
  // A pushed Pub/Sub message (subscriber mode).
  using MessageHandler = std::function<void(const std::string& channel, std::string payload)>;
  // The server confirmed a SUBSCRIBE (SSUBSCRIBE when sharded).
  using SubscribedHandler = std::function<void(const std::string& channel)>;
  // The server dropped a channel unasked (sharded: its slot moved to another
  // node); it is no longer in the set.
  using UnsubscribedHandler = std::function<void(const std::string& channel)>;
  // An error reply that no command waits for (subscriber mode: a refused
  // SSUBSCRIBE, e.g. MOVED).
  using ErrorReplyHandler = std::function<void(const std::string& error)>;
  // Ready (no error: connected and the handshake answered), or lost / failed
  // to connect (error).
  using StateHandler = std::function<void(std::error_code)>;

  RedisConnection(asio::io_context& io, RedisConnectionSettings settings);
  ~RedisConnection();
  RedisConnection(const RedisConnection&) = delete;
  RedisConnection& operator=(const RedisConnection&) = delete;

  void on_message(MessageHandler h) { on_message_ = std::move(h); }
  void on_subscribed(SubscribedHandler h) { on_subscribed_ = std::move(h); }
  void on_state(StateHandler h) { on_state_ = std::move(h); }
  void on_unsubscribed(UnsubscribedHandler h) { on_unsubscribed_ = std::move(h); }
  void on_error_reply(ErrorReplyHandler h) { on_error_reply_ = std::move(h); }

  // Starts connecting (and reconnecting whenever the connection is lost).
  void start();
  // Closes for good; pending commands fail with `reason`.
  void shutdown(std::error_code reason);

  // Connected, and the handshake (AUTH, SELECT, PING) answered.
  bool connected() const noexcept { return ready_; }

  // Sends one command; `done` runs once with its reply, or with
  // Errc::backend_unavailable when not connected, too many are pending, or the
  // connection is lost before the reply. An error reply is not an error_code:
  // check reply.is_error().
  void execute(const std::vector<std::string_view>& args, ReplyHandler done);

  // Subscriber mode: the channels to be subscribed to, now and after every
  // reconnect.
  void subscribe(const std::string& channel);
  void unsubscribe(const std::string& channel);
  // Subscribes every channel of the set again when ready: the server confirms
  // each one again, which lets a caller wait for a fresh confirmation.
  void resubscribe();

 private:
  enum class State { idle, connecting, connected, stopped };

  void connect();
  void connect_to(const asio::ip::tcp::resolver::results_type& endpoints);
  void on_connected();
  void fail(std::error_code reason);
  void schedule_reconnect();
  void write(std::string_view command_bytes);
  void flush();
  void read();
  void handle_reply(RedisReply reply);
  void arm_command_timer();

  struct Pending {
    ReplyHandler done;
    std::chrono::steady_clock::time_point deadline;
  };

  asio::io_context& io_;
  RedisConnectionSettings settings_;
  asio::ip::tcp::resolver resolver_;
  asio::ip::tcp::socket socket_;
  asio::steady_timer connect_timer_;
  asio::steady_timer retry_timer_;
  asio::steady_timer command_timer_;
  State state_ = State::idle;
  bool ready_ = false;
  std::uint64_t generation_ = 0;  // bumped per connection attempt; stale callbacks see another value
  unsigned attempt_ = 0;          // failed attempts since the last success (back-off exponent)
  std::minstd_rand jitter_;
  std::unique_ptr<RedisReplyParser> parser_;
  std::deque<Pending> pending_;
  std::string outgoing_;  // queued while a write is in flight
  std::string writing_;   // the bytes of the write in flight
  std::size_t bytes_in_flight_ = 0;  // of writing_, until its write completes
  bool write_in_flight_ = false;
  bool command_timer_armed_ = false;
  std::vector<char> read_buffer_;
  std::set<std::string> channels_;  // subscriber mode
  MessageHandler on_message_;
  SubscribedHandler on_subscribed_;
  StateHandler on_state_;
  UnsubscribedHandler on_unsubscribed_;
  ErrorReplyHandler on_error_reply_;
};

LIVECAST_END_NAMESPACE
