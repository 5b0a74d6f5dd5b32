// A Backend shared by several livecast instances through one Redis server:
// publications fan out over Redis Pub/Sub, and offsets, epochs, history and
// latest values live in Redis, so a client recovers on any instance.
// Link livecast::redis. Needs Redis >= 5 (streams); tested with 7.0.
//
// Per topic T, under key_prefix (the {T} hash tag keeps one topic's keys in
// one Cluster slot):
//   {T}:stream  Redis Stream, entry id "<offset>-0", fields offset and data
//   {T}:offset  the last assigned offset
//   {T}:epoch   the incarnation of the history; a new one when it was lost
//   {T}:pub     the Pub/Sub channel ("<epoch>:<offset>:<data>")
// The latest value is the stream's last entry. A new epoch starts when the
// epoch, offset or stream key is missing (first publication, expiry, a Redis
// that lost its data); its offsets continue above the highest offset this
// instance delivered, so that live subscribers, which skip offsets they have
// seen, keep receiving. Returning clients with the old epoch are told
// "not recovered".
//
// Threads: the backend runs its connections on one thread of its own, and
// calls the listener and every handler from it. Its members may be called
// from any thread.
#pragma once

#include <livecast/backend.hpp>
#include <livecast/config.hpp>

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

LIVECAST_BEGIN_NAMESPACE

struct RedisBackendSettings {
  // redis://[[user]:password@]host[:port][/db]; port 6379 and db 0 by default.
  std::string url = "redis://127.0.0.1:6379";
  // Prepended to every key and channel, so that applications can share a
  // server. Pub/Sub channels ignore the database number: instances in
  // different databases need different prefixes.
  std::string key_prefix = "livecast:";
  // Publications kept per topic for recovery (approximately: streams are
  // trimmed with MAXLEN ~, so a few more may be kept).
  std::size_t history_size = 1000;
  // A topic's keys expire this long after its last publication.
  std::chrono::seconds history_ttl{std::chrono::hours(24)};
  // Resolve + TCP connect (the AUTH/SELECT/PING handshake is a command). A
  // refused or timed-out attempt is retried with back-off from 50 ms,
  // doubling, up to 2 s, jittered.
  std::chrono::milliseconds connect_timeout{std::chrono::seconds(2)};
  // A command not answered within this time drops the connection. A publish
  // that timed out is reported as failed but may still have been applied.
  std::chrono::milliseconds command_timeout{std::chrono::seconds(5)};
};

// While Redis is unreachable, publish() and read() fail at once with
// Errc::backend_unavailable (no buffering), the listener's on_backend_error
// hears about every lost connection and failed attempt, and sessions stay
// connected; once back, channels are subscribed again.
class RedisBackend final : public Backend {
 public:
  // Throws std::invalid_argument on a malformed URL. Connects on start().
  explicit RedisBackend(RedisBackendSettings settings = {});
  ~RedisBackend() override;
  RedisBackend(const RedisBackend&) = delete;
  RedisBackend& operator=(const RedisBackend&) = delete;

  // Whether both connections (commands and Pub/Sub) are up, and a bounded
  // wait for it: a host may wait at start-up before it publishes. Any thread.
  bool connected() const;
  bool wait_connected(std::chrono::milliseconds timeout) const;

  void start(BackendListener& listener) override;
  void stop() override;
  void publish(const std::string& topic, std::shared_ptr<const std::string> data, PublishHandler done) override;
  void watch(const std::string& topic) override;
  void unwatch(const std::string& topic) override;
  void read(const std::string& topic, const std::optional<StreamPosition>& since, ReadHandler done) override;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

LIVECAST_END_NAMESPACE
