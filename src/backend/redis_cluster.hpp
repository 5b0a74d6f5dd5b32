// Redis Cluster for RedisBackend: the sans-I/O parts (key slots, MOVED/ASK
// errors, the CLUSTER SLOTS reply), a command router over one connection per
// master, and sharded Pub/Sub over one subscriber connection per master.
// RedisCommands and RedisSubscriptions give the backend one object each,
// whether it talks to one server or to a cluster.
//
// Threads: like RedisConnection, everything runs on the io_context's (single)
// thread, and every callback runs there.
#pragma once

#include "redis_connection.hpp"
#include "redis_protocol.hpp"

#include <livecast/config.hpp>

#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <vector>

LIVECAST_BEGIN_NAMESPACE

constexpr std::uint16_t redis_cluster_slots = 16384;

// The slot of a key: CRC16 (XMODEM) of the key, or of the text between its
// first '{' and the next '}' when that text is not empty, mod 16384.
std::uint16_t redis_key_slot(std::string_view key) noexcept;

// "MOVED <slot> <host>:<port>" or "ASK <slot> <host>:<port>". An empty host
// (Redis 7 without a known endpoint) means the host of the node that answered.
struct RedisRedirect {
  enum class Kind { moved, ask };
  Kind kind = Kind::moved;
  std::uint16_t slot = 0;
  std::string host;
  std::string port;
};
std::optional<RedisRedirect> parse_redis_redirect(std::string_view error);

// One entry of CLUSTER SLOTS: the slots first..last and their master.
struct RedisSlotRange {
  std::uint16_t first = 0;
  std::uint16_t last = 0;
  std::string host;
  std::string port;
};
// Nothing when the reply is not a well-formed CLUSTER SLOTS answer.
std::optional<std::vector<RedisSlotRange>> parse_cluster_slots(const RedisReply& reply);

// The key a command is routed by: for EVAL/EVALSHA the first KEY (args[3],
// when numkeys > 0), otherwise args[1]. Nothing for a keyless command.
std::optional<std::string_view> redis_command_key(const std::vector<std::string_view>& args);

struct RedisClusterSettings {
  // host/port pairs tried, in order, when no known master answers CLUSTER SLOTS.
  std::vector<std::pair<std::string, std::string>> seeds;
  // MOVED and ASK answers followed per command before it fails.
  unsigned max_redirects = 5;
};

// Commands routed to the master of their key's slot. The slot map comes from
// CLUSTER SLOTS; MOVED updates one slot at once and reloads the map in the
// background; ASK sends ASKING and the command once to the target;
// TRYAGAIN/CLUSTERDOWN are retried with a short back-off within the command
// timeout. A keyless command (SCRIPT LOAD) goes to every master, and scripts
// loaded that way are loaded again on every master that (re)connects, so that
// EVALSHA keeps working per node.
//
// connected(): the map is loaded and no master's connection is down (one that
// is still connecting for the first time does not count as down: commands
// for it wait for it).
class RedisCluster {
 public:
  using ReplyHandler = RedisConnection::ReplyHandler;
  using StateHandler = RedisConnection::StateHandler;

  // `node` is the template of every node's connection (credentials, timeouts);
  // its host and port are replaced per node.
  RedisCluster(asio::io_context& io, RedisConnectionSettings node, RedisClusterSettings cluster);
  ~RedisCluster();
  RedisCluster(const RedisCluster&) = delete;
  RedisCluster& operator=(const RedisCluster&) = delete;

  void on_state(StateHandler h) { on_state_ = std::move(h); }
  // After every successful map load, and after a MOVED changed one slot.
  void on_map(std::function<void()> h) { on_map_ = std::move(h); }

  void start();
  void shutdown(std::error_code reason);
  bool connected() const noexcept { return up_; }
  bool map_loaded() const noexcept { return map_loaded_; }

  void execute(const std::vector<std::string_view>& args, ReplyHandler done);

  // "host:port" of the master serving `slot`; empty while unknown.
  const std::string& owner(std::uint16_t slot) const;
  // A MOVED seen elsewhere (a refused SSUBSCRIBE): the slot's new owner, and
  // a map reload in the background.
  void moved(std::uint16_t slot, const std::string& host, const std::string& port);
  // Reloads the map in the background (coalesced).
  void refresh();

 private:
  struct Node;
  struct Command;

  Node& node(const std::string& host, const std::string& port);
  Node* node_at(const std::string& address);
  void start_connection(Node& n);
  void retire(Node& n);
  void when_ready(Node& n, std::function<void()> run);
  void send(Node& n, const std::vector<std::string_view>& args, ReplyHandler done);
  void on_node_state(Node& n, std::error_code ec);
  void attempt(const std::shared_ptr<Command>& c);
  void on_reply(const std::shared_ptr<Command>& c, Node& from, std::error_code ec, RedisReply reply);
  void retry_later(const std::shared_ptr<Command>& c);
  void finish(const std::shared_ptr<Command>& c, std::error_code ec, RedisReply reply = {});
  void broadcast(const std::vector<std::string_view>& args, ReplyHandler done);
  void load_map(std::vector<std::string> candidates, std::size_t next);
  void apply_map(const std::vector<RedisSlotRange>& ranges);
  void map_failed();
  void update_state(std::error_code ec);

  asio::io_context& io_;
  RedisConnectionSettings node_settings_;
  RedisClusterSettings settings_;
  bool started_ = false;
  bool stopped_ = false;
  bool up_ = false;
  bool map_loaded_ = false;
  bool loading_ = false;
  bool load_again_ = false;
  unsigned load_failures_ = 0;
  std::minstd_rand jitter_;
  asio::steady_timer reload_timer_;
  std::map<std::string, std::unique_ptr<Node>> nodes_;  // "host:port" -> node, never erased
  std::vector<std::unique_ptr<RedisConnection>> retired_;  // kept alive: Asio may still hold their handlers
  std::vector<std::string> slots_;                          // slot -> "host:port"
  std::vector<std::string> scripts_;                        // SCRIPT LOAD bodies, loaded on every master
  std::uint64_t next_timer_ = 0;
  std::unordered_map<std::uint64_t, std::unique_ptr<asio::steady_timer>> retry_timers_;
  StateHandler on_state_;
  std::function<void()> on_map_;
};

// Sharded Pub/Sub over a cluster: a channel is SSUBSCRIBEd on the master of
// its slot, through one subscriber connection per master; when the map
// changes, or a node drops a channel because its slot moved, the channel
// moves to its new master.
//
// connected(): the map is loaded and no subscriber connection is down. On
// becoming connected every channel is subscribed again, so that each one is
// confirmed once more (the backend waits for those confirmations).
class RedisClusterSubscriber {
 public:
  RedisClusterSubscriber(asio::io_context& io, RedisConnectionSettings node, RedisCluster& cluster);
  ~RedisClusterSubscriber();
  RedisClusterSubscriber(const RedisClusterSubscriber&) = delete;
  RedisClusterSubscriber& operator=(const RedisClusterSubscriber&) = delete;

  void on_message(RedisConnection::MessageHandler h) { on_message_ = std::move(h); }
  void on_subscribed(RedisConnection::SubscribedHandler h) { on_subscribed_ = std::move(h); }
  void on_state(RedisConnection::StateHandler h) { on_state_ = std::move(h); }
  // A channel lost its node (its slot moved, or the node refused it): it is
  // subscribed again on the slot's owner and confirmed through
  // on_subscribed like any other; what was published meanwhile missed it.
  void on_moved(std::function<void(const std::string& channel)> h) { on_moved_ = std::move(h); }

  void start();
  void shutdown(std::error_code reason);
  bool connected() const noexcept { return up_; }

  void subscribe(const std::string& channel);
  void unsubscribe(const std::string& channel);

 private:
  struct Node {
    std::string address;
    std::unique_ptr<RedisConnection> connection;
    bool down = false;  // lost or failed, not ready since
  };

  Node& node(const std::string& address);
  void place(const std::string& channel, std::string& placed_on);
  void place_all();
  void on_refused(Node& n, const std::string& error);
  void on_node_state(Node& n, std::error_code ec);
  void update_state(std::error_code ec);

  asio::io_context& io_;
  RedisConnectionSettings node_settings_;
  RedisCluster& cluster_;
  bool stopped_ = false;
  bool up_ = false;
  std::map<std::string, std::unique_ptr<Node>> nodes_;  // "host:port" -> node
  std::map<std::string, std::string> channels_;          // channel -> "host:port" it is subscribed on ("" none)
  std::vector<std::unique_ptr<RedisConnection>> retired_;  // kept alive: Asio may still hold their handlers
  RedisConnection::MessageHandler on_message_;
  RedisConnection::SubscribedHandler on_subscribed_;
  RedisConnection::StateHandler on_state_;
  std::function<void(const std::string& channel)> on_moved_;
};

// What RedisBackend holds: one connection, or a cluster.
class RedisCommands {
 public:
  RedisCommands(asio::io_context& io, RedisConnectionSettings settings, std::optional<RedisClusterSettings> cluster);

  void on_state(RedisConnection::StateHandler h);
  void start();
  void shutdown(std::error_code reason);
  bool connected() const noexcept;
  void execute(const std::vector<std::string_view>& args, RedisConnection::ReplyHandler done);

  RedisCluster* cluster() noexcept { return cluster_.get(); }

 private:
  std::unique_ptr<RedisConnection> single_;
  std::unique_ptr<RedisCluster> cluster_;
};

class RedisSubscriptions {
 public:
  // In cluster mode, `commands` provides the slot map.
  RedisSubscriptions(asio::io_context& io, RedisConnectionSettings settings, RedisCommands& commands);

  void on_message(RedisConnection::MessageHandler h);
  void on_subscribed(RedisConnection::SubscribedHandler h);
  void on_state(RedisConnection::StateHandler h);
  // Cluster mode only: see RedisClusterSubscriber::on_moved.
  void on_moved(std::function<void(const std::string& channel)> h);
  void start();
  void shutdown(std::error_code reason);
  bool connected() const noexcept;
  void subscribe(const std::string& channel);
  void unsubscribe(const std::string& channel);

 private:
  std::unique_ptr<RedisConnection> single_;
  std::unique_ptr<RedisClusterSubscriber> cluster_;
};

LIVECAST_END_NAMESPACE
