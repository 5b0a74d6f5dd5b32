#include "redis_cluster.hpp"

#include <livecast/error.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <set>
#include <utility>

LIVECAST_BEGIN_NAMESPACE

namespace {

std::uint16_t crc16_xmodem(std::string_view bytes) noexcept {
  std::uint16_t crc = 0;
  for (unsigned char byte : bytes) {
    crc = static_cast<std::uint16_t>(crc ^ (byte << 8));
    for (int bit = 0; bit < 8; ++bit)
      crc = static_cast<std::uint16_t>((crc & 0x8000) ? (crc << 1) ^ 0x1021 : crc << 1);
  }
  return crc;
}

template <class Int>
std::optional<Int> parse_int(std::string_view text) {
  Int v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty()) return std::nullopt;
  return v;
}

bool starts_with(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

// "host:port" (the host may be an IPv6 address with colons of its own).
std::pair<std::string, std::string> split_address(const std::string& address) {
  auto colon = address.rfind(':');
  if (colon == std::string::npos) return {address, ""};
  return {address.substr(0, colon), address.substr(colon + 1)};
}

std::string join_address(const std::string& host, const std::string& port) { return host + ":" + port; }

RedisConnectionSettings for_node(RedisConnectionSettings s, const std::string& host, const std::string& port) {
  s.url.host = host;
  s.url.port = port;
  return s;
}

// The command side and the subscriber are up when every node each needs is.
// A node's failure is passed on at once, with its error; otherwise only a
// change of the whole is, and `on_up` runs before the listener hears "up".
template <class OnUp>
void settle_state(bool now, bool& up, std::error_code ec, const RedisConnection::StateHandler& on_state, OnUp on_up) {
  if (ec) {
    up = now;
    if (on_state) on_state(ec);
    return;
  }
  if (now == up) return;
  up = now;
  if (now) on_up();
  if (on_state) on_state(now ? std::error_code() : make_error_code(Errc::backend_unavailable));
}

}  // namespace

std::uint16_t redis_key_slot(std::string_view key) noexcept {
  if (auto open = key.find('{'); open != std::string_view::npos) {
    auto close = key.find('}', open + 1);
    if (close != std::string_view::npos && close > open + 1) key = key.substr(open + 1, close - open - 1);
  }
  return static_cast<std::uint16_t>(crc16_xmodem(key) % redis_cluster_slots);
}

std::optional<RedisRedirect> parse_redis_redirect(std::string_view error) {
  RedisRedirect r;
  if (starts_with(error, "MOVED ")) {
    r.kind = RedisRedirect::Kind::moved;
    error.remove_prefix(6);
  } else if (starts_with(error, "ASK ")) {
    r.kind = RedisRedirect::Kind::ask;
    error.remove_prefix(4);
  } else {
    return std::nullopt;
  }
  auto space = error.find(' ');
  if (space == std::string_view::npos) return std::nullopt;
  auto slot = parse_int<unsigned>(error.substr(0, space));
  if (!slot || *slot >= redis_cluster_slots) return std::nullopt;
  r.slot = static_cast<std::uint16_t>(*slot);
  std::string_view address = error.substr(space + 1);
  auto colon = address.rfind(':');
  if (colon == std::string_view::npos) return std::nullopt;
  std::string_view port = address.substr(colon + 1);
  auto port_number = parse_int<unsigned>(port);
  if (!port_number || *port_number == 0 || *port_number > 65535) return std::nullopt;
  r.host = std::string(address.substr(0, colon));
  r.port = std::string(port);
  return r;
}

std::optional<std::vector<RedisSlotRange>> parse_cluster_slots(const RedisReply& reply) {
  if (!reply.is_array()) return std::nullopt;
  std::vector<RedisSlotRange> out;
  for (const RedisReply& entry : reply.elements) {
    // [first, last, [host, port, id, ...], replicas...]
    const auto& e = entry.elements;
    if (!entry.is_array() || e.size() < 3 || e[0].type != RedisReply::Type::integer ||
        e[1].type != RedisReply::Type::integer || !e[2].is_array() || e[2].elements.size() < 2 ||
        e[2].elements[1].type != RedisReply::Type::integer)
      return std::nullopt;
    if (e[0].integer < 0 || e[1].integer < e[0].integer || e[1].integer >= redis_cluster_slots) return std::nullopt;
    RedisSlotRange r;
    r.first = static_cast<std::uint16_t>(e[0].integer);
    r.last = static_cast<std::uint16_t>(e[1].integer);
    r.host = e[2].elements[0].string;
    r.port = std::to_string(e[2].elements[1].integer);
    out.push_back(std::move(r));
  }
  return out;
}

std::optional<std::string_view> redis_command_key(const std::vector<std::string_view>& args) {
  if (args.empty()) return std::nullopt;
  std::string command(args[0]);
  std::transform(command.begin(), command.end(), command.begin(), [](unsigned char c) { return std::toupper(c); });
  if (command == "EVAL" || command == "EVALSHA") {
    if (args.size() < 4) return std::nullopt;
    auto keys = parse_int<unsigned>(args[2]);
    if (!keys || *keys == 0) return std::nullopt;
    return args[3];
  }
  if (command == "SCRIPT" || command == "PING" || command == "CLUSTER" || args.size() < 2) return std::nullopt;
  return args[1];
}

// --- RedisCluster -------------------------------------------------------

struct RedisCluster::Node {
  std::string host, port, address;
  std::unique_ptr<RedisConnection> connection;
  bool master = false;
  bool down = false;                            // lost or failed, not ready since
  std::vector<std::function<void()>> waiting;  // for the first connection
};

struct RedisCluster::Command {
  std::vector<std::string> args;
  std::uint16_t slot = 0;
  ReplyHandler done;
  std::chrono::steady_clock::time_point deadline;
  unsigned redirects = 0;
  unsigned tries = 0;
  std::string ask;  // after ASK: the node for the next attempt, with ASKING
};

RedisCluster::RedisCluster(asio::io_context& io, RedisConnectionSettings node, RedisClusterSettings cluster)
    : io_(io),
      node_settings_(std::move(node)),
      settings_(std::move(cluster)),
      jitter_(std::random_device{}()),
      reload_timer_(io),
      slots_(redis_cluster_slots) {
  node_settings_.subscriber = false;
  node_settings_.sharded = false;
}

RedisCluster::~RedisCluster() = default;

void RedisCluster::start() {
  if (started_ || stopped_) return;
  started_ = true;
  refresh();
}

void RedisCluster::shutdown(std::error_code reason) {
  if (stopped_) return;
  stopped_ = true;
  up_ = false;
  reload_timer_.cancel();
  for (auto& [id, timer] : retry_timers_) timer->cancel();  // their commands fail when the handlers run
  for (auto& [address, n] : nodes_) {
    if (n->connection) n->connection->shutdown(reason);
    auto waiting = std::move(n->waiting);
    n->waiting.clear();
    for (auto& run : waiting) run();
  }
}

const std::string& RedisCluster::owner(std::uint16_t slot) const { return slots_[slot % redis_cluster_slots]; }

RedisCluster::Node& RedisCluster::node(const std::string& host, const std::string& port) {
  std::string address = join_address(host, port);
  auto& slot = nodes_[address];
  if (!slot) {
    slot = std::make_unique<Node>();
    slot->host = host;
    slot->port = port;
    slot->address = std::move(address);
  }
  return *slot;
}

RedisCluster::Node* RedisCluster::node_at(const std::string& address) {
  auto it = nodes_.find(address);
  return it == nodes_.end() ? nullptr : it->second.get();
}

void RedisCluster::start_connection(Node& n) {
  if (n.connection || stopped_) return;
  n.down = false;
  n.connection = std::make_unique<RedisConnection>(io_, for_node(node_settings_, n.host, n.port));
  RedisConnection* raw = n.connection.get();
  // A retired connection's last events must not touch the node's new one.
  n.connection->on_state([this, node = &n, raw](std::error_code ec) {
    if (node->connection.get() == raw) on_node_state(*node, ec);
  });
  n.connection->start();
}

void RedisCluster::retire(Node& n) {
  n.master = false;
  n.down = false;
  if (!n.connection) return;
  std::unique_ptr<RedisConnection> c = std::move(n.connection);
  c->shutdown(make_error_code(Errc::backend_unavailable));
  retired_.push_back(std::move(c));
  auto waiting = std::move(n.waiting);
  n.waiting.clear();
  for (auto& run : waiting) run();  // they find no connection and fail
}

void RedisCluster::when_ready(Node& n, std::function<void()> run) {
  if (!n.connection) start_connection(n);
  // Only a first connection is waited for; a node that went down fails fast.
  if (n.connection && !n.connection->connected() && !n.down && !stopped_)
    n.waiting.push_back(std::move(run));
  else
    run();
}

void RedisCluster::send(Node& n, const std::vector<std::string_view>& args, ReplyHandler done) {
  if (!n.connection) {
    done(make_error_code(Errc::backend_unavailable), RedisReply{});
    return;
  }
  n.connection->execute(args, std::move(done));
}

void RedisCluster::on_node_state(Node& n, std::error_code ec) {
  n.down = static_cast<bool>(ec);
  if (!ec) {
    // Before anything that waited: EVALSHA must find the scripts.
    for (const std::string& script : scripts_)
      n.connection->execute({"SCRIPT", "LOAD", script}, [](std::error_code, const RedisReply&) {});
  }
  auto waiting = std::move(n.waiting);
  n.waiting.clear();
  for (auto& run : waiting) run();
  if (!n.master) return;
  update_state(ec);
  if (ec) refresh();  // a failover may have given its slots to another node
}

void RedisCluster::update_state(std::error_code ec) {
  bool now = map_loaded_ && !stopped_;
  for (auto& [address, n] : nodes_)
    if (n->master && n->down) now = false;
  settle_state(now, up_, ec, on_state_, [] {});
}

void RedisCluster::execute(const std::vector<std::string_view>& args, ReplyHandler done) {
  if (stopped_ || !map_loaded_) {
    done(make_error_code(Errc::backend_unavailable), RedisReply{});
    return;
  }
  auto key = redis_command_key(args);
  if (!key) {
    broadcast(args, std::move(done));
    return;
  }
  auto c = std::make_shared<Command>();
  c->args.assign(args.begin(), args.end());
  c->slot = redis_key_slot(*key);
  c->done = std::move(done);
  c->deadline = std::chrono::steady_clock::now() + node_settings_.command_timeout;
  attempt(c);
}

void RedisCluster::attempt(const std::shared_ptr<Command>& c) {
  if (stopped_) {
    finish(c, make_error_code(Errc::backend_unavailable));
    return;
  }
  Node* n = node_at(c->ask.empty() ? slots_[c->slot] : c->ask);
  if (!n) {  // a slot no master serves
    finish(c, make_error_code(Errc::backend_unavailable));
    return;
  }
  when_ready(*n, [this, c, n] {
    if (!n->connection) {
      finish(c, make_error_code(Errc::backend_unavailable));
      return;
    }
    if (!c->ask.empty()) {
      c->ask.clear();
      // Pipelined: the server applies ASKING to the very next command.
      n->connection->execute({"ASKING"}, [](std::error_code, const RedisReply&) {});
    }
    std::vector<std::string_view> args(c->args.begin(), c->args.end());
    n->connection->execute(args, [this, c, n](std::error_code ec, RedisReply reply) {
      on_reply(c, *n, ec, std::move(reply));
    });
  });
}

void RedisCluster::on_reply(const std::shared_ptr<Command>& c, Node& from, std::error_code ec, RedisReply reply) {
  if (ec || !reply.is_error()) {
    finish(c, ec, std::move(reply));
    return;
  }
  if (auto redirect = parse_redis_redirect(reply.string)) {
    if (++c->redirects > settings_.max_redirects) {
      finish(c, make_error_code(Errc::backend_unavailable));
      return;
    }
    const std::string host = redirect->host.empty() ? from.host : redirect->host;
    if (redirect->kind == RedisRedirect::Kind::ask) {
      c->ask = node(host, redirect->port).address;
    } else {
      moved(redirect->slot, host, redirect->port);
    }
    attempt(c);
    return;
  }
  if (starts_with(reply.string, "TRYAGAIN") || starts_with(reply.string, "CLUSTERDOWN")) {
    retry_later(c);
    return;
  }
  finish(c, ec, std::move(reply));
}

void RedisCluster::moved(std::uint16_t slot, const std::string& host, const std::string& port) {
  if (stopped_) return;
  Node& to = node(host, port);
  slot %= redis_cluster_slots;
  if (slots_[slot] != to.address) {
    slots_[slot] = to.address;
    if (!to.master) {
      to.master = true;
      start_connection(to);
    }
    if (on_map_) on_map_();
  }
  refresh();
}

void RedisCluster::retry_later(const std::shared_ptr<Command>& c) {
  const auto delay = std::chrono::milliseconds(std::min(10 << std::min(c->tries, 4u), 100));
  if (stopped_ || std::chrono::steady_clock::now() + delay >= c->deadline) {
    finish(c, make_error_code(Errc::backend_unavailable));
    return;
  }
  ++c->tries;
  const std::uint64_t id = ++next_timer_;
  auto& timer = retry_timers_[id];
  timer = std::make_unique<asio::steady_timer>(io_, delay);
  timer->async_wait([this, c, id](std::error_code ec) {
    retry_timers_.erase(id);
    if (ec) {
      finish(c, make_error_code(Errc::shutting_down));
      return;
    }
    attempt(c);
  });
}

void RedisCluster::finish(const std::shared_ptr<Command>& c, std::error_code ec, RedisReply reply) {
  if (!c->done) return;
  ReplyHandler done = std::move(c->done);
  c->done = nullptr;
  done(ec, std::move(reply));
}

void RedisCluster::broadcast(const std::vector<std::string_view>& args, ReplyHandler done) {
  if (args.size() == 3 && args[0] == "SCRIPT" && args[1] == "LOAD" &&
      std::find(scripts_.begin(), scripts_.end(), args[2]) == scripts_.end())
    scripts_.emplace_back(args[2]);
  struct Gather {
    std::vector<std::string> args;
    ReplyHandler done;
    std::size_t remaining = 0;
    std::error_code error;
    RedisReply last;
  };
  auto gather = std::make_shared<Gather>();
  gather->args.assign(args.begin(), args.end());
  gather->done = std::move(done);
  // Masters still connecting for the first time count: right after the
  // first map, none is ready yet.
  std::vector<Node*> targets;
  for (auto& [address, n] : nodes_)
    if (n->master && n->connection && !n->down) targets.push_back(n.get());
  if (targets.empty()) {
    gather->done(make_error_code(Errc::backend_unavailable), RedisReply{});
    return;
  }
  gather->remaining = targets.size();
  // The first good answer answers; an error only when every node failed.
  for (Node* n : targets)
    when_ready(*n, [this, gather, n] {
      std::vector<std::string_view> views(gather->args.begin(), gather->args.end());
      send(*n, views, [gather](std::error_code ec, RedisReply reply) {
        --gather->remaining;
        if (gather->done && !ec && !reply.is_error()) {
          auto done = std::move(gather->done);
          gather->done = nullptr;
          done({}, std::move(reply));
          return;
        }
        if (ec) gather->error = ec;
        gather->last = std::move(reply);
        if (gather->remaining == 0 && gather->done) gather->done(gather->error, std::move(gather->last));
      });
    });
}

void RedisCluster::refresh() {
  if (!started_ || stopped_) return;
  if (loading_) {
    load_again_ = true;
    return;
  }
  loading_ = true;
  load_again_ = false;
  // Masters that answer first, then the others, then the seeds.
  std::vector<std::string> candidates;
  auto add = [&](const std::string& address) {
    if (std::find(candidates.begin(), candidates.end(), address) == candidates.end()) candidates.push_back(address);
  };
  for (auto& [address, n] : nodes_)
    if (n->master && n->connection && n->connection->connected()) add(address);
  for (auto& [address, n] : nodes_)
    if (n->master) add(address);
  for (auto& [host, port] : settings_.seeds) add(join_address(host, port));
  load_map(std::move(candidates), 0);
}

void RedisCluster::load_map(std::vector<std::string> candidates, std::size_t next) {
  if (stopped_) return;
  if (next >= candidates.size()) {
    map_failed();
    return;
  }
  auto [host, port] = split_address(candidates[next]);
  Node& n = node(host, port);
  when_ready(n, [this, candidates = std::move(candidates), next, &n]() mutable {
    send(n, {"CLUSTER", "SLOTS"},
         [this, candidates = std::move(candidates), next](std::error_code ec, RedisReply reply) mutable {
           if (stopped_) return;
           std::optional<std::vector<RedisSlotRange>> ranges;
           if (!ec && !reply.is_error()) ranges = parse_cluster_slots(reply);
           if (ranges && !ranges->empty()) {
             apply_map(*ranges);
           } else {
             load_map(std::move(candidates), next + 1);
           }
         });
  });
}

void RedisCluster::apply_map(const std::vector<RedisSlotRange>& ranges) {
  loading_ = false;
  load_failures_ = 0;
  std::vector<std::string> slots(redis_cluster_slots);
  std::set<std::string> masters;
  for (const RedisSlotRange& r : ranges) {
    const std::string& address = node(r.host, r.port).address;
    masters.insert(address);
    for (unsigned s = r.first; s <= r.last; ++s) slots[s] = address;
  }
  slots_ = std::move(slots);
  for (auto& [address, n] : nodes_) {
    if (masters.count(address)) {
      n->master = true;
      start_connection(*n);
    } else if (n->connection || n->master) {
      retire(*n);  // a seed that is a replica, or a master that lost its slots
    }
  }
  map_loaded_ = true;
  update_state({});
  if (on_map_) on_map_();
  if (load_again_) refresh();
}

void RedisCluster::map_failed() {
  loading_ = false;
  if (map_loaded_) {
    // The old map keeps routing and MOVED corrects it; the nodes' own
    // connections report what is down.
    if (load_again_) refresh();
    return;
  }
  if (on_state_) on_state_(make_error_code(Errc::backend_unavailable));
  // No map yet: try again with the connections' back-off.
  long long d = node_settings_.min_backoff.count();
  for (unsigned i = 0; i < load_failures_ && d < node_settings_.max_backoff.count(); ++i) d *= 2;
  d = std::min<long long>(d, std::max(node_settings_.max_backoff.count(), node_settings_.min_backoff.count()));
  if (load_failures_ < 32) ++load_failures_;
  std::uniform_int_distribution<long long> spread(d / 2, d);
  reload_timer_.expires_after(std::chrono::milliseconds(spread(jitter_)));
  reload_timer_.async_wait([this](std::error_code ec) {
    if (!ec) refresh();
  });
}

// --- RedisClusterSubscriber --------------------------------------------

RedisClusterSubscriber::RedisClusterSubscriber(asio::io_context& io, RedisConnectionSettings node,
                                               RedisCluster& cluster)
    : io_(io), node_settings_(std::move(node)), cluster_(cluster) {
  node_settings_.subscriber = true;
  node_settings_.sharded = true;
  cluster_.on_map([this] { place_all(); });
}

RedisClusterSubscriber::~RedisClusterSubscriber() = default;

void RedisClusterSubscriber::start() {}  // the cluster's first map places the channels

void RedisClusterSubscriber::shutdown(std::error_code reason) {
  if (stopped_) return;
  stopped_ = true;
  up_ = false;
  for (auto& [address, n] : nodes_)
    if (n->connection) n->connection->shutdown(reason);
}

RedisClusterSubscriber::Node& RedisClusterSubscriber::node(const std::string& address) {
  auto& slot = nodes_[address];
  if (!slot) {
    slot = std::make_unique<Node>();
    slot->address = address;
  }
  Node& n = *slot;
  if (!n.connection && !stopped_) {
    auto [host, port] = split_address(address);
    n.down = false;
    n.connection = std::make_unique<RedisConnection>(io_, for_node(node_settings_, host, port));
    RedisConnection* raw = n.connection.get();
    Node* np = &n;
    n.connection->on_state([this, np, raw](std::error_code ec) {
      if (np->connection.get() == raw) on_node_state(*np, ec);
    });
    n.connection->on_message([this](const std::string& channel, std::string payload) {
      if (on_message_) on_message_(channel, std::move(payload));
    });
    n.connection->on_subscribed([this](const std::string& channel) {
      if (on_subscribed_) on_subscribed_(channel);
    });
    n.connection->on_unsubscribed([this, np, raw](const std::string& channel) {
      if (np->connection.get() != raw) return;
      // The slot moved away: subscribe again wherever the new map says.
      auto it = channels_.find(channel);
      if (it != channels_.end() && it->second == np->address) {
        it->second.clear();
        if (on_moved_) on_moved_(channel);
      }
      cluster_.refresh();
    });
    n.connection->on_error_reply([this, np, raw](const std::string& error) {
      if (np->connection.get() == raw) on_refused(*np, error);
    });
    n.connection->start();
  }
  return n;
}

void RedisClusterSubscriber::on_refused(Node& n, const std::string& error) {
  auto redirect = parse_redis_redirect(error);
  if (!redirect) return;
  // The channels of that slot are not subscribed here: place them again.
  for (auto& [channel, placed_on] : channels_)
    if (placed_on == n.address && redis_key_slot(channel) == redirect->slot) {
      n.connection->unsubscribe(channel);
      placed_on.clear();
      if (on_moved_) on_moved_(channel);
    }
  if (redirect->kind == RedisRedirect::Kind::moved) {
    auto [host, port] = split_address(n.address);
    cluster_.moved(redirect->slot, redirect->host.empty() ? host : redirect->host, redirect->port);
  }
  // ASK: the slot is migrating; the reload after it places them on the target.
  cluster_.refresh();
}

void RedisClusterSubscriber::subscribe(const std::string& channel) {
  auto [it, inserted] = channels_.emplace(channel, std::string());
  if (inserted) place(it->first, it->second);
}

void RedisClusterSubscriber::unsubscribe(const std::string& channel) {
  auto it = channels_.find(channel);
  if (it == channels_.end()) return;
  if (!it->second.empty()) {
    auto n = nodes_.find(it->second);
    if (n != nodes_.end() && n->second->connection) n->second->connection->unsubscribe(channel);
  }
  channels_.erase(it);
}

void RedisClusterSubscriber::place(const std::string& channel, std::string& placed_on) {
  if (stopped_) return;
  const std::string& owner = cluster_.owner(redis_key_slot(channel));
  if (owner == placed_on) return;
  if (!placed_on.empty()) {
    auto n = nodes_.find(placed_on);
    if (n != nodes_.end() && n->second->connection) n->second->connection->unsubscribe(channel);
  }
  const bool moved = !placed_on.empty() && !owner.empty();
  placed_on = owner;
  if (!owner.empty()) node(owner).connection->subscribe(channel);
  if (moved && on_moved_) on_moved_(channel);
}

void RedisClusterSubscriber::place_all() {
  if (stopped_) return;
  for (auto& [channel, placed_on] : channels_) place(channel, placed_on);
  // A connection left without channels goes: its node may be gone for good.
  std::set<std::string> used;
  for (auto& [channel, placed_on] : channels_) used.insert(placed_on);
  for (auto& [address, n] : nodes_)
    if (n->connection && !used.count(address)) {
      std::unique_ptr<RedisConnection> c = std::move(n->connection);
      n->down = false;
      c->shutdown(make_error_code(Errc::backend_unavailable));
      retired_.push_back(std::move(c));
    }
  update_state({});
}

void RedisClusterSubscriber::on_node_state(Node& n, std::error_code ec) {
  n.down = static_cast<bool>(ec);
  update_state(ec);
}

void RedisClusterSubscriber::update_state(std::error_code ec) {
  bool now = cluster_.map_loaded() && !stopped_;
  for (auto& [address, n] : nodes_)
    if (n->connection && n->down) now = false;
  settle_state(now, up_, ec, on_state_, [this] {
    // One fresh confirmation per channel, whichever node it is on.
    for (auto& [address, n] : nodes_)
      if (n->connection) n->connection->resubscribe();
  });
}

// --- RedisCommands / RedisSubscriptions ---------------------------------

RedisCommands::RedisCommands(asio::io_context& io, RedisConnectionSettings settings,
                             std::optional<RedisClusterSettings> cluster) {
  if (cluster)
    cluster_ = std::make_unique<RedisCluster>(io, std::move(settings), std::move(*cluster));
  else
    single_ = std::make_unique<RedisConnection>(io, std::move(settings));
}

void RedisCommands::on_state(RedisConnection::StateHandler h) {
  if (cluster_)
    cluster_->on_state(std::move(h));
  else
    single_->on_state(std::move(h));
}

void RedisCommands::start() { cluster_ ? cluster_->start() : single_->start(); }

void RedisCommands::shutdown(std::error_code reason) {
  cluster_ ? cluster_->shutdown(reason) : single_->shutdown(reason);
}

bool RedisCommands::connected() const noexcept { return cluster_ ? cluster_->connected() : single_->connected(); }

void RedisCommands::execute(const std::vector<std::string_view>& args, RedisConnection::ReplyHandler done) {
  cluster_ ? cluster_->execute(args, std::move(done)) : single_->execute(args, std::move(done));
}

RedisSubscriptions::RedisSubscriptions(asio::io_context& io, RedisConnectionSettings settings,
                                       RedisCommands& commands) {
  if (RedisCluster* cluster = commands.cluster())
    cluster_ = std::make_unique<RedisClusterSubscriber>(io, std::move(settings), *cluster);
  else
    single_ = std::make_unique<RedisConnection>(io, std::move(settings));
}

void RedisSubscriptions::on_message(RedisConnection::MessageHandler h) {
  cluster_ ? cluster_->on_message(std::move(h)) : single_->on_message(std::move(h));
}

void RedisSubscriptions::on_subscribed(RedisConnection::SubscribedHandler h) {
  cluster_ ? cluster_->on_subscribed(std::move(h)) : single_->on_subscribed(std::move(h));
}

void RedisSubscriptions::on_state(RedisConnection::StateHandler h) {
  cluster_ ? cluster_->on_state(std::move(h)) : single_->on_state(std::move(h));
}

void RedisSubscriptions::on_moved(std::function<void(const std::string& channel)> h) {
  if (cluster_) cluster_->on_moved(std::move(h));  // one server: channels never move
}

void RedisSubscriptions::start() { cluster_ ? cluster_->start() : single_->start(); }

void RedisSubscriptions::shutdown(std::error_code reason) {
  cluster_ ? cluster_->shutdown(reason) : single_->shutdown(reason);
}

bool RedisSubscriptions::connected() const noexcept {
  return cluster_ ? cluster_->connected() : single_->connected();
}

void RedisSubscriptions::subscribe(const std::string& channel) {
  cluster_ ? cluster_->subscribe(channel) : single_->subscribe(channel);
}

void RedisSubscriptions::unsubscribe(const std::string& channel) {
  cluster_ ? cluster_->unsubscribe(channel) : single_->unsubscribe(channel);
}

LIVECAST_END_NAMESPACE
