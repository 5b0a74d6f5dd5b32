// The Broker: what an embedder constructs, starts, publishes through and
// watches. It owns the topics of every shard and the Backend, takes
// publications from any thread, and runs the protocol's requests for the
// sessions that transports open (transports reach it through
// session_host.hpp; embedders never need that header).
//
//   livecast::Broker broker;                         // or Broker broker(host_io_context);
//   livecast::WebSocketTransport ws(broker, {});
//   broker.start(); ws.start();
//   broker.publish("org:acme:kpi.revenue", R"({"total":1250.5})");   // any thread
//
// Threads. A broker has shards, each an io_context run by one thread:
//  - Broker(settings): livecast runs `settings.threads` threads of its own,
//    one shard each (call start()); transports spread sessions over them.
//  - Broker(io_context&, settings): one shard on the host's io_context, which
//    the host runs from one thread (a strand-free, single-threaded service).
// publish(), presence(), topic() and metrics() may be called from any thread.
//
// Callbacks. Every hook in BrokerSettings is the host's code running on a
// broker thread: one that throws is caught, reported to on_error, and the
// client gets a clear error; a shard thread never dies of it.
#pragma once

#include <livecast/authorizer.hpp>
#include <livecast/backend.hpp>
#include <livecast/client_event.hpp>
#include <livecast/config.hpp>
#include <livecast/error.hpp>
#include <livecast/handshake.hpp>
#include <livecast/json.hpp>
#include <livecast/log.hpp>
#include <livecast/principal.hpp>
#include <livecast/protocol.hpp>
#include <livecast/session.hpp>
#include <livecast/session_control.hpp>
#include <livecast/topic.hpp>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace asio {
class io_context;
}

LIVECAST_BEGIN_NAMESPACE

class SessionHost;

// What a subscribe may make the backend read. Every subscribe reads (the
// latest value, or the missed publications when the client recovers), and a
// client can ask for many at once: many topics, many sessions, and over
// long-polling a new session per request. These bound the work one client
// can cause.
struct RecoverySettings {
  // Publications replayed by one recovery. A client that missed more is told
  // "not recovered" and gets the latest value, as when its position fell out
  // of history; it reloads what it shows from its own source.
  std::size_t max_publications = 1000;
  // Backend reads running at once over the process; more wait their turn.
  std::size_t max_reads_in_flight = 64;
  // Of them, for one client: a principal with an id, otherwise one session.
  std::size_t max_reads_in_flight_per_client = 8;
  // A client's reads waiting for a turn; beyond, a subscribe is refused with
  // Errc::rate_limited (the client retries later).
  std::size_t max_reads_waiting_per_client = 512;
  // Sessions of protocols that resume them (Protocol::resumes_sessions:
  // Socket.IO's connection state recovery). How long a session whose
  // connection dropped may be resumed: its record is kept in the backend
  // (with Redis, any instance resumes it) that long. A client that closed
  // on purpose, or that the server sent away for good, leaves none; a crash
  // (kill -9) leaves none either, as with Socket.IO.
  std::chrono::milliseconds resume_window = std::chrono::minutes(2);
  // Publications a resumable session remembers having queued, to tell
  // which ones its client may have missed (about 16 bytes each). A client
  // that lagged by more when its connection dropped is not resumed.
  std::size_t resume_tracked_publications = 128;
  // How long Broker::stop waits for the records of the sessions closed
  // before it to reach the backend.
  std::chrono::milliseconds resume_flush_timeout = std::chrono::seconds(2);
};

// Spreading clients over the instances that share a backend (Redis). A load
// balancer places each new connection once; after a rolling restart the
// instance restarted last holds few clients, and long-lived sessions never
// move by themselves. An instance above its share closes some of its
// sessions, a few at a time, with CloseCode::reconnect_after: the clients
// come back through the load balancer, which spreads them. The counts come
// from the backend's presence (Backend::set_local_presence under
// Backend::sessions_presence_name), so an instance knows its peers' counts
// about a second late and a crashed peer's count expires with presence_ttl.
// See docs/operations.md, "Rebalancing".
struct RebalanceSettings {
  // The highest share of the sessions of every instance sharing the backend
  // that this one should hold, e.g. 0.4 with three instances (a third, plus
  // a margin that keeps clients from being moved for nothing). 0: off (the
  // default). An instance that knows of no peer sessions never sheds.
  double max_session_share = 0;
  // How often it compares its count with the total.
  std::chrono::milliseconds interval{2000};
  // The part of its excess shed at each interval. The shed clients land on
  // every instance, this one included, so shedding the whole excess at once
  // would overshoot; halves converge within a few intervals.
  double shed_fraction = 0.5;
  // The reconnect delay each shed close names, drawn uniformly from [min, max].
  std::chrono::milliseconds reconnect_delay_min{0};
  std::chrono::milliseconds reconnect_delay_max{1000};
};

// How publications of one topic go out (BrokerSettings::topic_delivery).
struct TopicDelivery {
  // At most this many publications a second go out on the topic (0: no
  // limit). What goes at each turn is the latest value published since the
  // last one: conflation at the source, before the backend, so that a KPI
  // tile fed at 10,000 updates a second costs its subscribers (and Redis)
  // max_rate. The values replaced meanwhile are never stored or sent; a
  // publish `done` handler hears offset 0 for them.
  double max_rate = 0;
  // For map-like topics (a table of per-merchant values published one row
  // at a time): the name of a top-level member of the publication's JSON
  // object whose value, a string or a number, is the row's key ("" : off).
  // While a client lags, its send queue keeps only the latest publication
  // of each key: a newer one replaces the queued older one (which the client
  // then never gets; BrokerMetrics::publications_coalesced), so a lagging
  // table catches up with one row per key instead of every change, and
  // rows of other keys are never dropped to make room for one busy key.
  // Publications whose data is not an object, or whose member is missing or
  // an object, array, null or bool, have no key and are never coalesced.
  // Numbers are compared as written (1 and 1.0 are two keys). The client
  // sees gaps in offsets: it should not resubscribe on them
  // (docs/protocol.md).
  std::string coalesce_by;
  // For gauges and counters published on every tick whether or not they
  // moved: a publication whose JSON text is the same as the last one this
  // instance sent on the topic is not sent again (its `done` hears offset 0;
  // BrokerMetrics::publications_unchanged). Subscribers still get the value
  // when they subscribe, as the topic's latest. With max_rate, what is
  // compared is what a turn would send: a KPI tile is then published when
  // it changes, at most at the topic's rate. Per instance.
  bool only_changes = false;
};

struct BrokerSettings {
  // Shards (threads) when livecast runs its own; ignored with a host io_context.
  std::size_t threads = 1;
  // Limits and slow-consumer policy of every session.
  SessionSettings session;
  // Bounds on the backend reads that subscribes (and recoveries) cause.
  RecoverySettings recovery;
  // Longest topic name accepted, in bytes.
  std::size_t max_topic_bytes = 256;
  // Largest publication payload accepted by publish(), in bytes.
  std::size_t max_payload_bytes = 1024 * 1024;
  // Decides who a connecting client is. Default: everyone, anonymously.
  // Called on a shard thread; must not block.
  Authenticator authenticator = allow_anonymous();
  // Decides every subscribe and publish. Default: anyone subscribes to
  // anything; clients publish nothing.
  Authorizer authorizer = Authorizer::subscribe_anything();
  // Server-side joins: topics a session is subscribed to as soon as it
  // connects (e.g. "org:<org>" and "org:<org>:<role>"). They go through the
  // Authorizer too; the client is told with a reply that carries no id.
  std::function<std::vector<std::string>(const Principal&)> server_joins;
  // Per-topic delivery settings (TopicDelivery), asked on every publish from
  // the publishing thread, and again for each publication reaching this
  // instance (from the backend's thread; with Redis, other instances'
  // publications too): keep it cheap (a prefix test). Empty, or an answer
  // that throws: no limit and no coalescing.
  std::function<TopicDelivery(std::string_view topic)> topic_delivery;
  // What the host hears of sessions opening, subscribing, unsubscribing and
  // closing (session_control.hpp). Called on the session's shard thread;
  // must be cheap and must not block.
  SessionHooks hooks;
  // Named events from clients (client_event.hpp: Socket.IO's emit), with
  // their acknowledgements. Default: none; every event is refused.
  ClientEventHandler on_client_event;
  // Shedding sessions above a share of all instances' (off by default).
  RebalanceSettings rebalance;
  // Wire protocols spoken; empty means livecast.v1 only. The first is the
  // default for clients that name none.
  std::vector<std::shared_ptr<const Protocol>> protocols;
  // Failures that are not a client's fault (backend errors, refused server
  // joins, a hook that threw), at most 10 per second. Called from any
  // thread; must not block. Its own exceptions are swallowed.
  std::function<void(const std::string& what, std::error_code)> on_error;
  // Readiness (Broker::readiness) turns false once the backend has been
  // unavailable this long, so that a load balancer sends new clients to
  // instances that can serve them; sessions already open stay connected.
  std::chrono::milliseconds backend_unavailable_grace{10000};
  // Structured events for the operator (log.hpp; names in docs/operations.md,
  // "Logging"): started, stopped, backend lost and back, hooks that threw,
  // what goes to on_error, transports started and stopped. Never per message.
  // Default: one line per event at info and above on stderr; empty: none.
  LogSink log = stderr_log();
};

// Whether the instance should be given new clients: what a load balancer's
// readiness probe (/readyz) asks.
struct Readiness {
  bool ready = true;
  std::string reason;  // why not ("stopped", "draining", "backend unavailable"); empty when ready
};

// How Broker::drain empties the instance (docs/operations.md, "Draining an
// instance"). Each session is closed once, the closes spread evenly over
// `duration`, with CloseCode::reconnect_after and the reason
// "reconnect after <N> ms", N drawn uniformly from [reconnect_delay_min,
// reconnect_delay_max]: clients come back over duration + reconnect_delay_max
// rather than all in the same second.
struct DrainSettings {
  // The window over which sessions are closed.
  std::chrono::milliseconds duration{10000};
  // The reconnect delay each close names, drawn uniformly from [min, max].
  std::chrono::milliseconds reconnect_delay_min{0};
  std::chrono::milliseconds reconnect_delay_max{5000};
  // A session due to close with frames still queued is closed once they are
  // handed to its connection, or after this long regardless.
  std::chrono::milliseconds flush_grace{1000};
  // At duration + deadline_grace, sessions still open are closed with
  // CloseCode::going_away at once, and `done` runs.
  std::chrono::milliseconds deadline_grace{2000};
  // Retry-After (seconds) of the 503 that refuses a handshake while draining.
  std::chrono::seconds retry_after{5};
};

// A histogram of durations in seconds with fixed buckets.
struct LatencyHistogram {
  // Upper bounds of the buckets, in seconds; one more bucket holds the rest.
  static constexpr std::size_t bound_count = 14;
  static constexpr std::array<double, bound_count> bounds{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                          0.1,    0.25,  0.5,    1,     2.5,   5,     10};
  // Observations per bucket (not cumulative): counts[i] were at most
  // bounds[i] and above bounds[i - 1]; counts[bound_count] above every bound.
  std::array<std::uint64_t, bound_count + 1> counts{};
  std::uint64_t count = 0;  // the sum of counts
  double sum = 0;           // of the observations, in seconds
};

// A snapshot of the broker's counters (all monotonic but the *_active ones,
// send_queue_bytes and subscribe_reads_in_flight/_waiting).
struct BrokerMetrics {
  // Broker::drain: 1 from the call on. Sessions it closed with
  // CloseCode::reconnect_after, and stragglers it closed at its deadline.
  std::uint64_t draining = 0;
  std::uint64_t drain_closes = 0;
  std::uint64_t drain_forced_closes = 0;
  // Sessions closed with CloseCode::reconnect_after by rebalancing (RebalanceSettings).
  std::uint64_t rebalance_closes = 0;
  std::uint64_t publications = 0;          // accepted by publish()
  std::uint64_t publish_errors = 0;        // refused by publish() or failed in the backend
  std::uint64_t deliveries = 0;            // publication frames queued to sessions
  std::uint64_t dropped = 0;               // publications dropped by slow-consumer policies
  // Queued publications replaced by a newer one of the same key (TopicDelivery::coalesce_by).
  std::uint64_t publications_coalesced = 0;
  // Publications a shard that fell behind dropped before fanning them out:
  // more of one topic waited for it than one session's send queue may hold
  // (SessionSettings::send_queue_bytes), so no subscriber could have had
  // them all. Never under SlowConsumerPolicy::disconnect.
  std::uint64_t publications_shed = 0;
  // Publications not sent for being the same as the topic's last (TopicDelivery::only_changes).
  std::uint64_t publications_unchanged = 0;
  std::uint64_t slow_consumer_closes = 0;  // sessions closed by SlowConsumerPolicy::disconnect
  std::uint64_t sessions_opened = 0;
  std::uint64_t sessions_closed = 0;
  std::uint64_t sessions_active = 0;
  std::uint64_t subscriptions_active = 0;
  std::uint64_t topics_active = 0;         // topics with a subscription on this instance
  std::uint64_t send_queue_bytes = 0;      // queued in sessions' send queues or being written, now
  std::uint64_t messages_received = 0;     // client messages handed to the broker
  std::uint64_t errors_sent = 0;           // error replies, any code
  std::uint64_t backend_errors = 0;
  std::uint64_t history_losses = 0;        // topics whose live subscribers were told "not recovered"
  std::uint64_t callback_errors = 0;       // host hooks that threw (each also reported to on_error)
  // Subscribes that asked to recover from a position, by outcome.
  std::uint64_t recoveries_recovered = 0;
  std::uint64_t recoveries_not_recovered = 0;  // history lost or trimmed, or more than max_publications missed
  std::uint64_t publications_replayed = 0;     // sent by recoveries
  std::uint64_t bytes_replayed = 0;            // their payload bytes
  // Subscribes that asked for recent history (RecentHistory), and the
  // publications sent to them before the live ones (the latest value included).
  std::uint64_t recent_history_reads = 0;
  std::uint64_t recent_publications_sent = 0;
  // Backend reads for subscribes (RecoverySettings).
  std::uint64_t subscribe_reads = 0;           // started
  std::uint64_t subscribe_reads_waited = 0;    // had to wait for a turn
  std::uint64_t subscribe_reads_refused = 0;   // over max_reads_waiting_per_client
  std::uint64_t subscribe_reads_in_flight = 0; // now
  std::uint64_t subscribe_reads_waiting = 0;   // now
  // Error replies by code, indexed by static_cast<size_t>(Errc).
  std::array<std::uint64_t, errc_count> errors_by_code{};
  // From a publication reaching this instance's broker to its frame being
  // taken for the socket by the transport, per delivery. With the
  // in-process backend it starts within publish(); with Redis it starts
  // when the publication came back from Redis (the Redis hop is not in it).
  LatencyHistogram delivery_latency;

  std::uint64_t errors(Errc e) const noexcept { return errors_by_code[static_cast<std::size_t>(e)]; }
};

class Broker final {
 public:
  // livecast runs settings.threads threads of its own; call start(). Throws
  // std::invalid_argument for a setting it cannot work with.
  explicit Broker(BrokerSettings settings = {}, std::unique_ptr<Backend> backend = nullptr);
  // One shard on the host's io_context; nothing to start. Destroy the broker
  // from the host's thread or after the host stopped running the context.
  explicit Broker(asio::io_context& host, BrokerSettings settings = {}, std::unique_ptr<Backend> backend = nullptr);
  ~Broker();

  Broker(const Broker&) = delete;
  Broker& operator=(const Broker&) = delete;

  // Starts livecast's own threads (no-op with a host io_context, or when
  // already started).
  void start();
  // Stops livecast's threads; queued work is discarded. Publications are
  // refused afterwards with Errc::shutting_down. Stop transports first.
  void stop();

  // --- publishing (any thread) ---

  // Publishes JSON text the caller already serialised. Validates it once
  // (JSON, UTF-8); never blocks on subscribers and never throws. Returns
  // invalid_topic, invalid_payload, message_too_large or shutting_down;
  // backend failures are reported to settings.on_error and counted.
  std::error_code publish(std::string_view topic, std::string_view json);
  // Text overloads, so that a string literal is JSON text, never a Json string.
  std::error_code publish(std::string_view topic, const char* json) { return publish(topic, std::string_view(json)); }
  std::error_code publish(std::string_view topic, const std::string& json) {
    return publish(topic, std::string_view(json));
  }
  // Publishes a value built with the Json builder: valid JSON by
  // construction, but its strings hold whatever bytes the host gave. Sent as
  // they are, bytes that are not UTF-8 make a browser close its socket (1007)
  // and every instance reading from Redis drop the publication; dump() would
  // replace them with U+FFFD, silently altering the host's data. So such a
  // value is refused with invalid_payload, counted like bad JSON text.
  std::error_code publish(std::string_view topic, const Json& value);
  // As the text overload; `done` runs on any thread once the backend took
  // the publication (with its offset) or failed.
  std::error_code publish(std::string_view topic, std::string_view json, Backend::PublishHandler done);

  // --- what there is to see (any thread) ---

  // A view of one topic: latest value, history, presence.
  Topic topic(std::string name) { return Topic(*this, std::move(name)); }

  // How many subscriptions `topic` has over every instance sharing the
  // backend (this one alone with the in-process backend); server-side joins
  // count. A Redis backend answers from counts each instance refreshes, so
  // another instance's change shows within about a second, and a crashed
  // instance's count expires. `done` runs on any thread.
  void presence(const std::string& topic, Backend::PresenceHandler done);

  BrokerMetrics metrics() const;
  // False once stopped, from drain() on, and while the backend has been
  // unavailable for longer than settings().backend_unavailable_grace.
  Readiness readiness() const;

  // Empties the instance for a restart (docs/operations.md): readiness turns
  // false ("draining") and new handshakes are refused with 503 and
  // Retry-After at once; then every session, and any opened meanwhile, is
  // closed over settings.duration (DrainSettings), each once its queued
  // frames are out. Publishing goes on meanwhile. `done` runs once, on any
  // thread, when every session is closed, at the deadline, or when the
  // broker stops first; its exceptions are swallowed. Any thread; returns at
  // once. While draining, a second call changes nothing but adds its `done`.
  // Throws std::invalid_argument for a negative duration or min > max.
  void drain(DrainSettings settings = {}, std::function<void()> done = {});
  const BrokerSettings& settings() const noexcept;
  Backend& backend() noexcept;
  const Backend& backend() const noexcept;

  // --- host control of sessions (any thread, host mode and after stop()) ---
  //
  // A principal is named by its id; the empty id (anonymous) names no one:
  // anonymous sessions are counted by session_count() but never listed or
  // closed by principal, so that an empty id read from a revocation list
  // cannot close every anonymous client. `done` runs exactly once: on the
  // thread of the last shard to answer, or on the caller's (possibly before
  // the call returns) once stopped, when it gets nothing (an empty list, 0);
  // a question still unanswered when the broker stops is answered by stop().

  // Sessions open now over every shard (relaxed counters: exact once the
  // shards are quiet).
  std::size_t session_count() const noexcept;
  // The sessions of `principal_id` on every shard, at most `max_sessions`
  // of them (lowest ids first) so that a listing cannot build a huge answer
  // by accident; SessionList::total counts them all.
  void sessions(std::string principal_id, std::function<void(SessionList)> done, std::size_t max_sessions = 1000);
  // Closes every session of `principal_id` on every shard with `code` and
  // `reason` (e.g. CloseCode::unauthorized, "token revoked": the client
  // does not reconnect); `done` gets how many it closed (sessions already
  // closing are not counted). Sessions opened later are the Authenticator's
  // to refuse.
  void close_sessions(std::string principal_id, CloseCode code, std::string reason,
                      std::function<void(std::size_t closed)> done = {});

  // --- for transports ---

  // The broker's side that transports use (session_host.hpp).
  SessionHost& session_host() noexcept;

 private:
  friend class Topic;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

LIVECAST_END_NAMESPACE
