// A Backend shared by several livecast instances through one Redis server or
// one Redis Cluster: publications fan out over Redis Pub/Sub (sharded Pub/Sub
// in a cluster), and offsets, epochs, history and latest values live in
// Redis, so a client recovers on any instance.
// Link livecast::redis. Needs Redis >= 5 (streams), >= 7 for a cluster;
// tested with 7.0.
//
// Per topic T, under key_prefix (the {T} hash tag keeps one topic's keys in
// one Cluster slot):
//   {T}:stream  Redis Stream, entry id "<offset>-0", fields offset and data
//   {T}:offset  the last assigned offset
//   {T}:epoch   the incarnation of the history; a new one when it was lost
//   {T}:pub     the Pub/Sub channel ("<epoch>:<offset>:<data>")
//   {T}:presence  hash: instance id -> "<subscriptions>:<expiry ms>"
// The latest value is the stream's last entry. A new epoch starts when the
// epoch, offset or stream key is missing (first publication, expiry, a Redis
// that lost its data); its offsets continue above the highest offset the
// publishing instance delivered. Instances that see a new epoch tell their
// live subscribers "not recovered" (BackendListener::on_history_lost), and
// so are returning clients with the old epoch.
//
// After the Pub/Sub connection comes back, each watched topic is read from
// the last position this instance delivered, so the publications made while
// it was away are delivered in order before the live ones (or, when they are
// gone, subscribers are told "not recovered"). Reads for the same topic and
// position that overlap share one Redis command (a reconnect storm).
//
// Threads: the backend runs its connections on one thread of its own, and
// calls the listener and every handler from it. Its members may be called
// from any thread.
#pragma once

#include <livecast/backend.hpp>
#include <livecast/config.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

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
  // Command bytes an instance queues for a Redis that does not take them (a
  // stuck server or network); beyond it publications fail at once with
  // backend_unavailable instead of growing the process.
  std::size_t max_queued_bytes = 64 * 1024 * 1024;
  // An instance's presence counts are refreshed at a third of this period
  // and ignored by the others once it passed (an instance that died).
  std::chrono::milliseconds presence_ttl{std::chrono::seconds(15)};

  // Redis Cluster (Redis >= 7): `url` is the first seed node (its database
  // must be 0; its credentials are used on every node), `cluster_seeds` more
  // of them (redis:// URLs, of which only host and port count), tried in
  // order when no known node answers CLUSTER SLOTS.
  // Commands go to the master of their topic's slot (a topic's keys share
  // the {topic} hash tag), following MOVED and ASK; publications fan out
  // with SPUBLISH/SSUBSCRIBE, one subscriber connection per master that
  // holds a watched topic. connected() then means: the slot map is loaded
  // and no master's connection is down; while one is, publish() fails fast
  // for every topic. Publications made while a topic's slot migrates, before
  // its channel is subscribed on the new owner, are read from the stream
  // then, as after a reconnect.
  bool cluster = false;
  std::vector<std::string> cluster_seeds;
};

// Counters of one RedisBackend, all monotonic.
struct RedisBackendMetrics {
  std::uint64_t publications = 0;           // accepted by Redis
  std::uint64_t publish_failures = 0;       // refused fast or failed in Redis
  std::uint64_t reads = 0;                  // read() calls
  std::uint64_t reads_shared = 0;           // answered by another caller's read command
  std::uint64_t refills = 0;                // topics read again after the Pub/Sub connection came back
  std::uint64_t refilled_publications = 0;  // publications delivered by those reads
  std::uint64_t history_losses = 0;         // topics reported through on_history_lost
  std::uint64_t held_dropped = 0;           // live publications dropped while a refill was slow
  std::uint64_t connection_losses = 0;      // connections (either one) lost or failed to connect
  std::uint64_t rejected_payloads = 0;      // live publications in Redis that were not valid JSON (dropped)
};

// While Redis is unreachable, publish() and read() fail at once with
// Errc::backend_unavailable (no buffering), the listener's on_backend_error
// hears about every lost connection and failed attempt, and sessions stay
// connected; once back, channels are subscribed again.
class RedisBackend final : public Backend {
 public:
  // Throws std::invalid_argument on a malformed URL (or, in cluster mode, a
  // seed URL, or a database other than 0). Connects on start().
  explicit RedisBackend(RedisBackendSettings settings = {});
  ~RedisBackend() override;
  RedisBackend(const RedisBackend&) = delete;
  RedisBackend& operator=(const RedisBackend&) = delete;

  // Whether both connections (commands and Pub/Sub) are up, and a bounded
  // wait for it: a host may wait at start-up before it publishes. Any thread.
  bool connected() const;
  bool wait_connected(std::chrono::milliseconds timeout) const;
  RedisBackendMetrics metrics() const;
  // Names this instance in presence counts (random per construction).
  const std::string& instance_id() const;

  void start(BackendListener& listener) override;
  void stop() override;
  void publish(const std::string& topic, std::shared_ptr<const std::string> data, PublishHandler done) override;
  void watch(const std::string& topic) override;
  void unwatch(const std::string& topic) override;
  void read(const std::string& topic, const std::optional<StreamPosition>& since, std::size_t max_publications,
            ReadHandler done) override;
  void read_recent(const std::string& topic, const RecentHistory& recent, std::size_t max_publications,
                   ReadHandler done) override;
  void set_local_presence(const std::string& topic, std::uint64_t local) override;
  void presence(const std::string& topic, std::uint64_t local, PresenceHandler done) override;
  // Under `<key_prefix>resume:<id>` with an expiry (SET PX), taken with GETDEL.
  void keep_session(const std::string& resume_id, std::string record, std::chrono::milliseconds ttl,
                    KeepHandler done) override;
  void take_session(const std::string& resume_id, TakeHandler done) override;
  // available: connected(); unavailable_for: since the first of the two
  // connections went down (or since start() while never connected);
  // round_trip: the latest PING on the command connection, sent once a
  // second while it is up (none while unavailable).
  BackendHealth health() const override;
  // metrics() as Prometheus metrics (livecast_redis_*).
  void write_metrics(MetricsWriter& out) const override;
  // Under `<key_prefix>agg:{<key>}` (a hash: instance id -> part) and
  // `<key_prefix>agg-claim:{<key>}` (SET NX by the instance that publishes),
  // both expiring after max(1 min, 10 x settle); the claim reads and deletes
  // the parts in one script. Fails at once while Redis is away.
  void merge_window(const std::string& window_key, std::string contribution, std::chrono::milliseconds settle,
                    MergeHandler done) override;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

LIVECAST_END_NAMESPACE
