#include <livecast/redis_backend.hpp>

#include "redis_cluster.hpp"
#include "redis_connection.hpp"
#include "redis_protocol.hpp"
#include "redis_round_trip.hpp"
#include "redis_window_merge.hpp"

#include <livecast/error.hpp>
#include <livecast/json.hpp>

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <condition_variable>
#include <deque>
#include <limits>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <stdexcept>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

LIVECAST_BEGIN_NAMESPACE

namespace {

// KEYS: stream, offset, epoch. ARGV: data, history size, ttl seconds, epoch
// suffix, channel, offset floor. One atomic step per publication, so offsets
// are dense and identical on every instance.
//
// A missing epoch, offset or stream means a new topic or lost history: a new
// epoch starts. Its offsets continue above the floor (the highest offset this
// instance delivered), because live subscribers skip offsets they have seen.
constexpr const char* publish_script = R"lua(
local epoch = redis.call('GET', KEYS[3])
local head = redis.call('GET', KEYS[2])
if not epoch or not head or redis.call('EXISTS', KEYS[1]) == 0 then
  local t = redis.call('TIME')
  epoch = t[1] .. '-' .. t[2] .. '-' .. ARGV[4]
  redis.call('SET', KEYS[3], epoch)
  redis.call('SET', KEYS[2], ARGV[6])
  redis.call('DEL', KEYS[1])
end
local offset = redis.call('INCR', KEYS[2])
local now = redis.call('TIME')
local stored = string.format('%.0f', tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000))
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], offset .. '-0', 'offset', offset, 'data', ARGV[1], 'time', stored)
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[3])
redis.call('EXPIRE', KEYS[3], ARGV[3])
redis.call('PUBLISH', ARGV[5], epoch .. ':' .. offset .. ':' .. ARGV[1])
return {epoch, offset}
)lua";

// KEYS: stream, offset, epoch. ARGV: since epoch, since offset ("" and 0
// without a position), the most entries to return. Returns {epoch, head,
// recovered (1/0), entries}: the entries after `since` when they are all
// still in the stream and no more than the most, otherwise the last entry.
// Atomic, so the head matches the entries. Offsets are consecutive within an
// epoch, so head - since is the count before anything is read.
constexpr const char* read_script = R"lua(
local epoch = redis.call('GET', KEYS[3])
if not epoch then return {'', 0, 0, {}} end
local head = tonumber(redis.call('GET', KEYS[2]) or '0')
local since = tonumber(ARGV[2])
if ARGV[1] == epoch and since <= head and head - since <= tonumber(ARGV[3]) then
  if since == head then return {epoch, head, 1, {}} end
  local first = (since + 1) .. '-0'
  local entries = redis.call('XRANGE', KEYS[1], first, '+', 'COUNT', ARGV[3])
  if #entries > 0 and entries[1][1] == first then return {epoch, head, 1, entries} end
end
return {epoch, head, 0, redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)}
)lua";

// KEYS: stream, offset, epoch. ARGV: the most entries (at least 1), the
// oldest age in ms to keep (0: any). Returns what read_script returns with
// recovered 0 and, oldest first, the last entries of the stream: the newest
// whatever its age, then back while they are young enough. The age is
// judged by Redis's clock, the one that stamped each entry's `time`, so
// instances with skewed clocks agree; an entry without one (written before
// entries had a time) ends the walk.
constexpr const char* recent_script = R"lua(
local epoch = redis.call('GET', KEYS[3])
if not epoch then return {'', 0, 0, {}} end
local head = tonumber(redis.call('GET', KEYS[2]) or '0')
local entries = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', ARGV[1])
local age = tonumber(ARGV[2])
local kept = #entries
if age > 0 and kept > 1 then
  local t = redis.call('TIME')
  local oldest = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) - age
  kept = 1
  while kept < #entries do
    local fields = entries[kept + 1][2]
    local stored = nil
    for i = 1, #fields, 2 do
      if fields[i] == 'time' then stored = tonumber(fields[i + 1]) end
    end
    if not stored or stored < oldest then break end
    kept = kept + 1
  end
end
local ordered = {}
for i = kept, 1, -1 do ordered[#ordered + 1] = entries[i] end
return {epoch, head, 0, ordered}
)lua";

// KEYS: presence hash. ARGV: instance id, subscriptions, ttl ms. This
// instance's entry, with the time after which the others ignore it.
constexpr const char* presence_set_script = R"lua(
if ARGV[2] == '0' then
  redis.call('HDEL', KEYS[1], ARGV[1])
  return 0
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. ':' .. (now + tonumber(ARGV[3])))
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]) * 2)
return 1
)lua";

// KEYS: presence hash. ARGV: instance id. The subscriptions of every other
// instance whose entry has not expired; expired or unreadable entries are
// removed on the way.
constexpr const char* presence_read_script = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local fields = redis.call('HGETALL', KEYS[1])
local total = 0
for i = 1, #fields, 2 do
  if fields[i] ~= ARGV[1] then
    local sep = string.find(fields[i + 1], ':', 1, true)
    local count = sep and tonumber(string.sub(fields[i + 1], 1, sep - 1))
    local expiry = sep and tonumber(string.sub(fields[i + 1], sep + 1))
    if count and expiry and expiry > now then
      total = total + count
    else
      redis.call('HDEL', KEYS[1], fields[i])
    end
  end
end
return total
)lua";

std::optional<std::uint64_t> parse_offset(std::string_view text) {
  std::uint64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end == text.data()) return std::nullopt;
  return v;
}

bool starts_with(const std::string& s, std::string_view prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

// A stream entry [id, [field, value, ...]] as a publication.
std::optional<Publication> entry_to_publication(const std::string& topic, const std::string& epoch,
                                                const RedisReply& entry) {
  if (!entry.is_array() || entry.elements.size() != 2 || !entry.elements[1].is_array()) return std::nullopt;
  auto offset = parse_offset(entry.elements[0].string);  // "<offset>-0"
  if (!offset) return std::nullopt;
  const auto& fields = entry.elements[1].elements;
  for (std::size_t i = 0; i + 1 < fields.size(); i += 2)
    if (fields[i].string == "data") {
      if (!is_valid_json(fields[i + 1].string)) return std::nullopt;  // not written by livecast
      return Publication{topic, *offset, std::make_shared<const std::string>(fields[i + 1].string), epoch};
    }
  return std::nullopt;
}

RedisConnectionSettings connection_settings(const RedisBackendSettings& s, bool subscriber) {
  RedisConnectionSettings c = redis_connection_settings(s.url, s.connect_timeout, s.command_timeout);
  c.subscriber = subscriber;
  c.max_queued_bytes = s.max_queued_bytes;
  if (s.cluster && c.url.db != 0) throw std::invalid_argument("livecast: a Redis Cluster has only database 0");
  return c;
}

std::optional<RedisClusterSettings> cluster_settings(const RedisBackendSettings& s) {
  if (!s.cluster) return std::nullopt;
  RedisClusterSettings c;
  for (const std::string& seed : s.cluster_seeds) {
    auto url = RedisUrl::parse(seed);
    if (!url) throw std::invalid_argument("livecast: malformed Redis URL '" + seed + "'");
    c.seeds.emplace_back(url->host, url->port);
  }
  auto first = RedisUrl::parse(s.url);
  if (first) c.seeds.insert(c.seeds.begin(), {first->host, first->port});
  return c;
}

// In a cluster the subscribers use SSUBSCRIBE, which hears only SPUBLISH (and
// spares the cluster bus the broadcast of every PUBLISH to every node). The
// channel shares the {topic} hash tag, so the shard running the script owns
// it; Redis 7.0 accepts SPUBLISH inside a script.
std::string cluster_script(std::string script) {
  auto at = script.find("redis.call('PUBLISH'");
  if (at != std::string::npos) script.replace(at, 20, "redis.call('SPUBLISH'");
  return script;
}

}  // namespace

class RedisBackend::Impl {
 public:
  explicit Impl(RedisBackendSettings settings)
      : settings_(std::move(settings)),
        publish_script_(settings_.cluster ? cluster_script(publish_script) : std::string(publish_script)),
        commands_(io_, connection_settings(settings_, false), cluster_settings(settings_)),
        subscriber_(io_, connection_settings(settings_, true), commands_),
        presence_flush_timer_(io_),
        presence_refresh_timer_(io_),
        round_trip_(io_, commands_),
        window_merge_(io_, commands_, settings_.key_prefix),
        random_(std::random_device{}()) {
    if (settings_.history_size == 0) settings_.history_size = 1;
    if (settings_.history_ttl.count() <= 0) settings_.history_ttl = std::chrono::seconds(1);
    if (settings_.presence_ttl < std::chrono::milliseconds(300)) settings_.presence_ttl = std::chrono::milliseconds(300);
    instance_id_ = random_suffix() + random_suffix();
  }

  ~Impl() { stop(); }

  void start(BackendListener& listener) {
    std::lock_guard<std::mutex> lock(lifecycle_);
    if (thread_.joinable() || stopped_) return;
    listener_ = &listener;
    commands_.on_state([this](std::error_code ec) { on_commands_state(ec); });
    subscriber_.on_state([this](std::error_code ec) { on_subscriber_state(ec); });
    subscriber_.on_subscribed([this](const std::string& channel) { on_subscribed(channel); });
    subscriber_.on_moved([this](const std::string& channel) { on_moved(channel); });
    subscriber_.on_message([this](const std::string& channel, std::string payload) {
      on_message(channel, std::move(payload));
    });
    work_.emplace(io_.get_executor());
    {
      std::lock_guard<std::mutex> state(state_mutex_);
      down_since_ = std::chrono::steady_clock::now();
    }
    asio::post(io_, [this] {
      commands_.start();
      subscriber_.start();
      schedule_presence_refresh();
      round_trip_.start();
    });
    thread_ = std::thread([this] { io_.run(); });
  }

  void stop() {
    std::lock_guard<std::mutex> lock(lifecycle_);
    if (stopped_) return;
    stopped_ = true;
    accepting_.store(false);
    if (!thread_.joinable()) return;
    asio::post(io_, [this] {
      presence_flush_timer_.cancel();
      presence_refresh_timer_.cancel();
      round_trip_.stop();
      window_merge_.stop(make_error_code(Errc::shutting_down));
      commands_.shutdown(make_error_code(Errc::shutting_down));
      subscriber_.shutdown(make_error_code(Errc::shutting_down));
      for (auto& [channel, reads] : waiting_reads_)
        for (auto& run : reads) run();
      waiting_reads_.clear();
      work_.reset();
      // Handlers queued before this one still run (and fail fast); then stop.
      asio::post(io_, [this] { io_.stop(); });
    });
    thread_.join();
  }

  bool connected() const {
    std::lock_guard<std::mutex> lock(state_mutex_);
    return commands_connected_ && subscriber_connected_;
  }

  bool wait_connected(std::chrono::milliseconds timeout) const {
    std::unique_lock<std::mutex> lock(state_mutex_);
    return state_changed_.wait_for(lock, timeout, [this] { return commands_connected_ && subscriber_connected_; });
  }

  BackendHealth health() const {
    BackendHealth h;
    {
      std::lock_guard<std::mutex> lock(state_mutex_);
      h.available = commands_connected_ && subscriber_connected_;
      if (!h.available)
        h.unavailable_for = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - down_since_);
    }
    // While unavailable, none: the Pub/Sub connection may be the one that
    // went down first, with the command connection's last figure still set.
    if (h.available) h.round_trip = round_trip_.latest();
    return h;
  }

  RedisBackendMetrics metrics() const {
    RedisBackendMetrics m;
    m.publications = metrics_.publications.load();
    m.publish_failures = metrics_.publish_failures.load();
    m.reads = metrics_.reads.load();
    m.reads_shared = metrics_.reads_shared.load();
    m.refills = metrics_.refills.load();
    m.refilled_publications = metrics_.refilled_publications.load();
    m.history_losses = metrics_.history_losses.load();
    m.held_dropped = metrics_.held_dropped.load();
    m.connection_losses = metrics_.connection_losses.load();
    m.rejected_payloads = metrics_.rejected_payloads.load();
    return m;
  }

  const std::string& instance_id() const { return instance_id_; }

  void publish(const std::string& topic, std::shared_ptr<const std::string> data, PublishHandler done) {
    if (!accepting_.load() || !commands_up_.load()) {  // fail fast: no buffering while Redis is away
      metrics_.publish_failures.fetch_add(1);
      if (done) done(make_error_code(accepting_.load() ? Errc::backend_unavailable : Errc::shutting_down), 0);
      return;
    }
    asio::post(io_, [this, topic, data = std::move(data), done = std::move(done)]() mutable {
      send_publish(topic, std::move(data), std::move(done), /*use_sha=*/true);
    });
  }

  void watch(const std::string& topic) {
    asio::post(io_, [this, topic] {
      std::string channel = key(topic, "pub");
      auto [it, inserted] = watched_.try_emplace(channel);
      if (!inserted) return;
      it->second.topic = topic;
      if (subscriber_.connected()) ++unconfirmed_[channel];
      subscriber_.subscribe(channel);
    });
  }

  void unwatch(const std::string& topic) {
    asio::post(io_, [this, topic] {
      std::string channel = key(topic, "pub");
      watched_.erase(channel);
      subscriber_.unsubscribe(channel);
      run_waiting_reads(channel);
    });
  }

  void read(const std::string& topic, const std::optional<StreamPosition>& since, std::size_t max_publications,
            ReadHandler done) {
    if (!accepting_.load()) {
      ReadResult r;
      r.error = make_error_code(Errc::shutting_down);
      done(std::move(r));
      return;
    }
    metrics_.reads.fetch_add(1);
    asio::post(io_, [this, topic, since, max_publications, done = std::move(done)]() mutable {
      when_subscribed(topic, [this, topic, since, max_publications, done = std::move(done)]() mutable {
        shared_read(topic, since, max_publications, std::move(done));
      });
    });
  }

  void read_recent(const std::string& topic, const RecentHistory& recent, std::size_t max_publications,
                   ReadHandler done) {
    if (!accepting_.load()) {
      ReadResult r;
      r.error = make_error_code(Errc::shutting_down);
      done(std::move(r));
      return;
    }
    metrics_.reads.fetch_add(1);
    std::size_t most = std::max<std::size_t>(1, max_publications);
    if (recent.count > 0) most = std::min(most, recent.count);
    // Redis parses COUNT as a signed 64-bit integer.
    most = static_cast<std::size_t>(std::min<std::uint64_t>(most, std::numeric_limits<std::int64_t>::max()));
    const auto age = std::max<std::int64_t>(0, recent.max_age.count());
    asio::post(io_, [this, topic, most, age, done = std::move(done)]() mutable {
      when_subscribed(topic, [this, topic, most, age, done = std::move(done)]() mutable {
        const std::string stream = key(topic, "stream"), offset = key(topic, "offset"), epoch = key(topic, "epoch");
        const std::string count = std::to_string(most), max_age = std::to_string(age);
        commands_.execute({"EVAL", recent_script, "3", stream, offset, epoch, count, max_age},
                          [this, topic, done = std::move(done)](std::error_code ec, RedisReply reply) {
                            ReadResult result = to_read_result(topic, std::nullopt, ec, reply);
                            note_read(topic, result);
                            done(std::move(result));
                          });
      });
    });
  }

  void set_local_presence(const std::string& topic, std::uint64_t local) {
    if (!accepting_.load()) return;
    asio::post(io_, [this, topic, local] {
      local_presence_[topic] = local;
      presence_dirty_.insert(topic);
      schedule_presence_flush();
    });
  }

  void presence(const std::string& topic, std::uint64_t local, PresenceHandler done) {
    if (!accepting_.load()) {
      done(make_error_code(Errc::shutting_down), local);
      return;
    }
    asio::post(io_, [this, topic, local, done = std::move(done)]() mutable {
      const std::string hash = key(topic, "presence");
      commands_.execute({"EVAL", presence_read_script, "1", hash, instance_id_},
                        [local, done = std::move(done)](std::error_code ec, RedisReply reply) {
                          if (ec || reply.type != RedisReply::Type::integer || reply.integer < 0) {
                            done(make_error_code(Errc::backend_unavailable), local);
                            return;
                          }
                          done({}, local + static_cast<std::uint64_t>(reply.integer));
                        });
    });
  }

  void keep_session(const std::string& resume_id, std::string record, std::chrono::milliseconds ttl,
                    KeepHandler done) {
    if (!accepting_.load()) {
      if (done) done(make_error_code(Errc::shutting_down));
      return;
    }
    asio::post(io_, [this, resume_id, record = std::move(record), ttl, done = std::move(done)]() mutable {
      const std::string k = settings_.key_prefix + "resume:" + resume_id;
      const std::string px = std::to_string(std::max<std::int64_t>(1, ttl.count()));
      commands_.execute({"SET", k, record, "PX", px}, [done = std::move(done)](std::error_code ec, RedisReply reply) {
        if (!ec && reply.is_error()) ec = make_error_code(Errc::backend_unavailable);
        if (done) done(ec);
      });
    });
  }

  void take_session(const std::string& resume_id, TakeHandler done) {
    if (!accepting_.load()) {
      done(std::nullopt);
      return;
    }
    asio::post(io_, [this, resume_id, done = std::move(done)]() mutable {
      const std::string k = settings_.key_prefix + "resume:" + resume_id;
      commands_.execute({"GETDEL", k}, [done = std::move(done)](std::error_code ec, RedisReply reply) {
        if (ec || reply.type != RedisReply::Type::string) {
          done(std::nullopt);
          return;
        }
        done(std::move(reply.string));
      });
    });
  }

  // Fails fast while Redis is away, as publish() does: the Aggregator then
  // publishes its own part at once instead of waiting for a merge.
  void merge_window(const std::string& window_key, std::string contribution, std::chrono::milliseconds settle,
                    MergeHandler done) {
    if (!accepting_.load() || !commands_up_.load()) {
      WindowContributions failed;
      failed.error = make_error_code(accepting_.load() ? Errc::backend_unavailable : Errc::shutting_down);
      failed.publish = false;
      done(std::move(failed));
      return;
    }
    asio::post(io_, [this, window_key, part = std::move(contribution), settle, done = std::move(done)]() mutable {
      window_merge_.merge(instance_id_, window_key, std::move(part), settle, std::move(done));
    });
  }

 private:
  // A live publication as it came from Pub/Sub, with the epoch it belongs to.
  struct LivePublication {
    std::string epoch;
    Publication publication;
  };

  // A topic this instance has local subscribers to, by its channel.
  struct WatchedTopic {
    std::string topic;
    // What this instance handed to the listener: the epoch and the highest
    // offset (epoch "" until the first publication or read).
    StreamPosition delivered;
    // Bumped whenever the channel is subscribed again; reads are shared only
    // within one subscription, never with one sent before it.
    std::uint64_t generation = 0;
    // A read from `delivered` is under way after a reconnect: live
    // publications wait behind it, so that the missed ones come first.
    bool refilling = false;
    std::deque<LivePublication> held;
  };

  // Live publications held behind a refill, per topic; beyond it the oldest
  // go (counted) and the refill's answer decides what subscribers are told.
  static constexpr std::size_t max_held = 4096;

  std::string key(const std::string& topic, std::string_view suffix) const {
    std::string k;
    k.reserve(settings_.key_prefix.size() + topic.size() + suffix.size() + 3);
    k += settings_.key_prefix;
    k += '{';
    k += topic;
    k += "}:";
    k += suffix;
    return k;
  }

  std::string random_suffix() {
    static const char digits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
    std::uniform_int_distribution<int> pick(0, 35);
    std::string s;
    for (int i = 0; i < 8; ++i) s.push_back(digits[pick(random_)]);
    return s;
  }

  // --- on the backend's thread ---

  // Runs `run` once the topic's channel is subscribed (at once when it is
  // not watched, or when there is no Pub/Sub connection to wait for), so
  // that no publication falls between a read and the live stream.
  void when_subscribed(const std::string& topic, std::function<void()> run) {
    std::string channel = key(topic, "pub");
    bool waiting = subscriber_.connected() && watched_.count(channel) && unconfirmed_.count(channel);
    if (waiting)
      waiting_reads_[channel].push_back(std::move(run));
    else
      run();
  }

  // Overlapping reads of one topic from one position share one command.
  void shared_read(const std::string& topic, const std::optional<StreamPosition>& since, std::size_t max_publications,
                   ReadHandler done) {
    std::string read_key = topic;
    read_key += '\n';
    auto w = watched_.find(key(topic, "pub"));
    read_key += std::to_string(w == watched_.end() ? 0 : w->second.generation);
    if (since) {
      read_key += '\n';
      read_key += since->epoch;
      read_key += '\n';
      read_key += std::to_string(since->offset);
      read_key += '\n';
      read_key += std::to_string(max_publications);
    }
    auto [it, first] = reads_in_flight_.try_emplace(read_key);
    it->second.push_back(std::move(done));
    if (!first) {
      metrics_.reads_shared.fetch_add(1);
      return;
    }
    send_read(topic, since, max_publications,
              [this, topic, read_key](ReadResult result) {
                auto node = reads_in_flight_.extract(read_key);
                if (node.empty()) return;
                note_read(topic, result);
                auto& handlers = node.mapped();
                for (std::size_t i = 0; i + 1 < handlers.size(); ++i) handlers[i](result);
                handlers.back()(std::move(result));
              },
              /*use_sha=*/true);
  }

  // A read's head is where this instance stands when it delivered nothing yet.
  void note_read(const std::string& topic, const ReadResult& result) {
    if (result.error || result.head.epoch.empty()) return;
    auto w = watched_.find(key(topic, "pub"));
    if (w == watched_.end() || !w->second.delivered.epoch.empty()) return;
    w->second.delivered = result.head;
  }

  void send_publish(const std::string& topic, std::shared_ptr<const std::string> data, PublishHandler done,
                    bool use_sha) {
    const std::string stream = key(topic, "stream"), offset = key(topic, "offset"), epoch = key(topic, "epoch");
    const std::string channel = key(topic, "pub");
    const std::string history = std::to_string(settings_.history_size);
    const std::string ttl = std::to_string(settings_.history_ttl.count());
    const std::string suffix = random_suffix();
    auto known = watched_.find(channel);
    const std::string floor = std::to_string(known == watched_.end() ? 0 : known->second.delivered.offset);
    const bool by_sha = use_sha && !publish_sha_.empty();
    const std::string_view script = by_sha ? std::string_view(publish_sha_) : std::string_view(publish_script_);
    std::vector<std::string_view> args{by_sha ? "EVALSHA" : "EVAL", script,
                                       "3",    stream,  offset, epoch, *data, history, ttl, suffix, channel, floor};
    commands_.execute(args, [this, topic, data, done = std::move(done), by_sha](std::error_code ec,
                                                                                   RedisReply reply) mutable {
      if (!ec && reply.is_error() && by_sha && starts_with(reply.string, "NOSCRIPT")) {
        publish_sha_.clear();  // the server lost its scripts (restart): send the text
        send_publish(topic, std::move(data), std::move(done), /*use_sha=*/false);
        return;
      }
      std::optional<std::uint64_t> assigned;
      if (!ec && reply.is_array() && reply.elements.size() == 2 &&
          reply.elements[1].type == RedisReply::Type::integer && reply.elements[1].integer > 0)
        assigned = static_cast<std::uint64_t>(reply.elements[1].integer);
      if (!assigned) {
        metrics_.publish_failures.fetch_add(1);
        if (done) done(make_error_code(Errc::backend_unavailable), 0);
        return;
      }
      metrics_.publications.fetch_add(1);
      if (done) done({}, *assigned);
    });
  }

  void send_read(const std::string& topic, const std::optional<StreamPosition>& since, std::size_t max_publications,
                 ReadHandler done, bool use_sha) {
    const std::string stream = key(topic, "stream"), offset = key(topic, "offset"), epoch = key(topic, "epoch");
    const std::string since_epoch = since ? since->epoch : std::string();
    const std::string since_offset = std::to_string(since ? since->offset : 0);
    // Redis parses COUNT as a signed 64-bit integer.
    const std::string most =
        std::to_string(std::min<std::uint64_t>(max_publications, std::numeric_limits<std::int64_t>::max()));
    const bool by_sha = use_sha && !read_sha_.empty();
    const std::string_view script = by_sha ? std::string_view(read_sha_) : std::string_view(read_script);
    std::vector<std::string_view> args{by_sha ? "EVALSHA" : "EVAL", script, "3", stream,
                                       offset, epoch, since_epoch, since_offset, most};
    commands_.execute(args, [this, topic, since, max_publications, done = std::move(done),
                             by_sha](std::error_code ec, RedisReply reply) mutable {
      if (!ec && reply.is_error() && by_sha && starts_with(reply.string, "NOSCRIPT")) {
        read_sha_.clear();
        send_read(topic, since, max_publications, std::move(done), /*use_sha=*/false);
        return;
      }
      done(to_read_result(topic, since, ec, reply));
    });
  }

  static ReadResult to_read_result(const std::string& topic, const std::optional<StreamPosition>& since,
                                   std::error_code ec, const RedisReply& reply) {
    ReadResult result;
    const auto& e = reply.elements;
    if (ec || !reply.is_array() || e.size() != 4 || e[1].type != RedisReply::Type::integer ||
        e[2].type != RedisReply::Type::integer || !e[3].is_array()) {
      result.error = make_error_code(Errc::backend_unavailable);
      return result;
    }
    result.head.epoch = e[0].string;
    result.head.offset = static_cast<std::uint64_t>(std::max(0LL, e[1].integer));
    if (result.head.epoch.empty()) {  // never published: nothing to miss from an empty position
      result.recovered = since && since->epoch.empty() && since->offset == 0;
      return result;
    }
    result.recovered = e[2].integer == 1;
    for (const RedisReply& entry : e[3].elements) {
      auto p = entry_to_publication(topic, result.head.epoch, entry);
      if (!p) {
        result = ReadResult{};
        result.error = make_error_code(Errc::backend_unavailable);
        return result;
      }
      result.publications.push_back(std::move(*p));
    }
    return result;
  }

  void set_connected(bool& flag, bool up) {
    std::lock_guard<std::mutex> lock(state_mutex_);
    const bool was_up = commands_connected_ && subscriber_connected_;
    flag = up;
    if (was_up && !up) down_since_ = std::chrono::steady_clock::now();
    state_changed_.notify_all();
  }

  // Both connections up again: the listener hears it (once it heard of a
  // loss, the broker logs backend.available).
  void report_if_back() {
    if (connected() && accepting_.load()) listener_->on_backend_error({});
  }

  void on_commands_state(std::error_code ec) {
    commands_up_.store(!ec);
    set_connected(commands_connected_, !ec);
    if (ec) {
      round_trip_.lost();
      metrics_.connection_losses.fetch_add(1);
      if (accepting_.load()) listener_->on_backend_error(ec);
      publish_sha_.clear();  // the server may come back without them
      read_sha_.clear();
      return;
    }
    report_if_back();
    round_trip_.connected();
    // EVALSHA from now on; until the answers come, EVAL.
    commands_.execute({"SCRIPT", "LOAD", publish_script_}, [this](std::error_code ec, RedisReply reply) {
      if (!ec && reply.is_text()) publish_sha_ = reply.string;
    });
    commands_.execute({"SCRIPT", "LOAD", read_script}, [this](std::error_code ec, RedisReply reply) {
      if (!ec && reply.is_text()) read_sha_ = reply.string;
    });
    auto refills = std::move(refills_waiting_);
    refills_waiting_.clear();
    for (const std::string& channel : refills) {
      auto it = watched_.find(channel);
      if (it != watched_.end() && it->second.refilling) request_refill(channel, it->second);
    }
    // The server may have lost this instance's presence entries.
    for (const auto& [topic, count] : local_presence_) presence_dirty_.insert(topic);
    schedule_presence_flush();
  }

  void on_subscriber_state(std::error_code ec) {
    // Connected: every watched channel was just subscribed again. Lost:
    // nothing is subscribed, and nothing will be confirmed.
    unconfirmed_.clear();
    set_connected(subscriber_connected_, !ec);
    if (!ec) {
      report_if_back();
      for (auto& [channel, w] : watched_) {
        unconfirmed_[channel] = 1;
        ++w.generation;
        if (!w.delivered.epoch.empty()) start_refill(channel, w);
      }
      return;
    }
    metrics_.connection_losses.fetch_add(1);
    if (accepting_.load()) listener_->on_backend_error(ec);
    // No live stream to line up with: let waiting reads go (they fail fast
    // or answer from the command connection).
    auto waiting = std::move(waiting_reads_);
    waiting_reads_.clear();
    for (auto& [channel, reads] : waiting)
      for (auto& run : reads) run();
  }

  // Publications made while the Pub/Sub connection was down never reach it:
  // read them from the stream once the channel is subscribed again.
  void start_refill(const std::string& channel, WatchedTopic& w) {
    w.refilling = true;
    metrics_.refills.fetch_add(1);
    request_refill(channel, w);
  }

  // The read needs the command connection, which may come back after the
  // Pub/Sub one: until then live publications keep waiting (bounded).
  void request_refill(const std::string& channel, WatchedTopic& w) {
    if (!commands_.connected()) {
      refills_waiting_.insert(channel);
      return;
    }
    const std::uint64_t generation = w.generation;
    when_subscribed(w.topic, [this, channel, generation] {
      auto it = watched_.find(channel);
      if (it == watched_.end() || it->second.generation != generation) return;
      // Bounded by the stream's own length (history_size), not by a
      // subscriber's recovery limit: live subscribers depend on it.
      send_read(it->second.topic, it->second.delivered, std::numeric_limits<std::size_t>::max(),
                [this, channel, generation](ReadResult result) { finish_refill(channel, generation, std::move(result)); },
                /*use_sha=*/true);
    });
  }

  void finish_refill(const std::string& channel, std::uint64_t generation, ReadResult result) {
    auto it = watched_.find(channel);
    // Unwatched meanwhile, or another reconnect started another refill.
    if (it == watched_.end() || it->second.generation != generation) return;
    WatchedTopic& w = it->second;
    if (result.error && !commands_.connected()) {
      refills_waiting_.insert(channel);  // tried again when Redis is back
      return;
    }
    w.refilling = false;
    if (!result.error) {
      if (result.recovered) {
        for (Publication& p : result.publications) {
          if (p.offset <= w.delivered.offset) continue;
          w.delivered.offset = p.offset;
          metrics_.refilled_publications.fetch_add(1);
          listener_->on_publication(std::move(p));
        }
      } else if (!result.head.epoch.empty()) {
        report_history_lost(w, std::move(result));
      }
      // No epoch at all: Redis lost the topic and nobody published since.
      // Nothing was missed yet; the next publication's new epoch tells the
      // subscribers (deliver_live), with the offset it really has.
    }
    // A read that failed while connected (an error reply) is not retried in a
    // loop: the held publications are real and go now.
    auto held = std::move(w.held);
    w.held.clear();
    for (LivePublication& p : held) {
      if (p.epoch == w.delivered.epoch && p.publication.offset <= w.delivered.offset) continue;  // refilled
      deliver_live(w, std::move(p));
    }
  }

  void report_history_lost(WatchedTopic& w, ReadResult state) {
    metrics_.history_losses.fetch_add(1);
    w.delivered = state.head;
    state.recovered = false;
    listener_->on_history_lost(w.topic, std::move(state));
  }

  void deliver_live(WatchedTopic& w, LivePublication p) {
    if (w.refilling) {
      if (w.held.size() >= max_held) {
        w.held.pop_front();
        metrics_.held_dropped.fetch_add(1);
      }
      w.held.push_back(std::move(p));
      return;
    }
    const std::uint64_t offset = p.publication.offset;
    if (!w.delivered.epoch.empty() && p.epoch != w.delivered.epoch) {
      // Another epoch: the history this instance followed is gone.
      ReadResult state;
      state.head = StreamPosition{p.epoch, offset - 1};
      report_history_lost(w, std::move(state));
    }
    w.delivered.epoch = p.epoch;
    if (offset > w.delivered.offset) w.delivered.offset = offset;
    listener_->on_publication(std::move(p.publication));
  }

  // Cluster: the topic's slot moved and its channel is subscribed on the new
  // owner. Publications made before that confirmation missed this instance:
  // read them as after a reconnect.
  void on_moved(const std::string& channel) {
    auto it = watched_.find(channel);
    if (it == watched_.end()) return;
    WatchedTopic& w = it->second;
    ++w.generation;
    unconfirmed_[channel] = 1;
    if (!w.delivered.epoch.empty()) start_refill(channel, w);
  }

  // Counts confirmations, so that an earlier SUBSCRIBE's answer (before an
  // UNSUBSCRIBE and a new SUBSCRIBE) does not release reads too early.
  void on_subscribed(const std::string& channel) {
    auto it = unconfirmed_.find(channel);
    if (it == unconfirmed_.end()) return;
    if (--it->second > 0) return;
    unconfirmed_.erase(it);
    run_waiting_reads(channel);
  }

  void run_waiting_reads(const std::string& channel) {
    auto it = waiting_reads_.find(channel);
    if (it == waiting_reads_.end()) return;
    auto reads = std::move(it->second);
    waiting_reads_.erase(it);
    for (auto& run : reads) run();
  }

  // "<epoch>:<offset>:<data>"
  void on_message(const std::string& channel, std::string payload) {
    auto it = watched_.find(channel);
    if (it == watched_.end()) return;  // unwatched meanwhile
    auto first = payload.find(':');
    if (first == std::string::npos) return;
    auto second = payload.find(':', first + 1);
    if (second == std::string::npos) return;
    auto offset = parse_offset(std::string_view(payload).substr(first + 1, second - first - 1));
    if (!offset || *offset == 0) return;
    std::string epoch = payload.substr(0, first);
    payload.erase(0, second + 1);
    // Whatever else writes to this Redis, only valid JSON reaches clients:
    // their frames are not checked again per delivery.
    if (!is_valid_json(payload)) {
      metrics_.rejected_payloads.fetch_add(1);
      return;
    }
    auto data = std::make_shared<const std::string>(std::move(payload));
    Publication publication{it->second.topic, *offset, std::move(data), epoch};
    deliver_live(it->second, LivePublication{std::move(epoch), std::move(publication)});
  }

  // --- presence ---

  // Changes are written in batches a little later, so that a burst of
  // subscribes costs one command per topic.
  void schedule_presence_flush() {
    if (presence_flush_armed_ || presence_dirty_.empty()) return;
    presence_flush_armed_ = true;
    presence_flush_timer_.expires_after(std::chrono::milliseconds(50));
    presence_flush_timer_.async_wait([this](std::error_code ec) {
      presence_flush_armed_ = false;
      if (!ec) flush_presence();
    });
  }

  void flush_presence() {
    if (!commands_.connected()) return;  // written again on reconnect
    const std::string ttl = std::to_string(settings_.presence_ttl.count());
    for (const std::string& topic : presence_dirty_) {
      auto it = local_presence_.find(topic);
      if (it == local_presence_.end()) continue;
      const std::string hash = key(topic, "presence"), count = std::to_string(it->second);
      commands_.execute({"EVAL", presence_set_script, "1", hash, instance_id_, count, ttl},
                        [](std::error_code, RedisReply) {});
      if (it->second == 0) local_presence_.erase(it);
    }
    presence_dirty_.clear();
  }

  void schedule_presence_refresh() {
    presence_refresh_timer_.expires_after(settings_.presence_ttl / 3);
    presence_refresh_timer_.async_wait([this](std::error_code ec) {
      if (ec) return;
      for (const auto& [topic, count] : local_presence_) presence_dirty_.insert(topic);
      flush_presence();
      schedule_presence_refresh();
    });
  }

  struct Counters {
    std::atomic<std::uint64_t> publications{0}, publish_failures{0}, reads{0}, reads_shared{0}, refills{0},
        refilled_publications{0}, history_losses{0}, held_dropped{0}, connection_losses{0}, rejected_payloads{0};
  };

  RedisBackendSettings settings_;
  std::string instance_id_;
  asio::io_context io_{1};
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  const std::string publish_script_;  // PUBLISH, or SPUBLISH in a cluster
  RedisCommands commands_;             // one connection, or one per cluster master
  RedisSubscriptions subscriber_;
  asio::steady_timer presence_flush_timer_;
  asio::steady_timer presence_refresh_timer_;
  RedisRoundTrip round_trip_;
  RedisWindowMerge window_merge_;  // merge_window, on the backend's thread
  std::thread thread_;
  std::mutex lifecycle_;
  bool stopped_ = false;
  std::atomic<bool> accepting_{true};
  std::atomic<bool> commands_up_{false};
  BackendListener* listener_ = nullptr;
  mutable std::mutex state_mutex_;
  mutable std::condition_variable state_changed_;
  bool commands_connected_ = false;
  bool subscriber_connected_ = false;
  std::chrono::steady_clock::time_point down_since_ = std::chrono::steady_clock::now();  // since start() or the last loss; under state_mutex_
  Counters metrics_;

  // Only on the backend's thread.
  std::minstd_rand random_;
  std::string publish_sha_, read_sha_;
  std::unordered_map<std::string, WatchedTopic> watched_;     // by channel
  std::unordered_map<std::string, int> unconfirmed_;          // channel -> SUBSCRIBEs not yet confirmed
  std::unordered_map<std::string, std::vector<std::function<void()>>> waiting_reads_;
  std::unordered_map<std::string, std::vector<ReadHandler>> reads_in_flight_;  // by topic, generation, position
  std::unordered_map<std::string, std::uint64_t> local_presence_;             // topic -> local subscriptions
  std::set<std::string> presence_dirty_;
  std::set<std::string> refills_waiting_;  // channels whose refill waits for the command connection
  bool presence_flush_armed_ = false;
};

RedisBackend::RedisBackend(RedisBackendSettings settings) : impl_(std::make_unique<Impl>(std::move(settings))) {}
RedisBackend::~RedisBackend() = default;

bool RedisBackend::connected() const { return impl_->connected(); }
bool RedisBackend::wait_connected(std::chrono::milliseconds timeout) const { return impl_->wait_connected(timeout); }
RedisBackendMetrics RedisBackend::metrics() const { return impl_->metrics(); }
BackendHealth RedisBackend::health() const { return impl_->health(); }
const std::string& RedisBackend::instance_id() const { return impl_->instance_id(); }
void RedisBackend::start(BackendListener& listener) { impl_->start(listener); }
void RedisBackend::stop() { impl_->stop(); }
void RedisBackend::publish(const std::string& topic, std::shared_ptr<const std::string> data, PublishHandler done) {
  impl_->publish(topic, std::move(data), std::move(done));
}
void RedisBackend::watch(const std::string& topic) { impl_->watch(topic); }
void RedisBackend::unwatch(const std::string& topic) { impl_->unwatch(topic); }
void RedisBackend::read(const std::string& topic, const std::optional<StreamPosition>& since,
                        std::size_t max_publications, ReadHandler done) {
  impl_->read(topic, since, max_publications, std::move(done));
}
void RedisBackend::read_recent(const std::string& topic, const RecentHistory& recent, std::size_t max_publications,
                               ReadHandler done) {
  impl_->read_recent(topic, recent, max_publications, std::move(done));
}
void RedisBackend::set_local_presence(const std::string& topic, std::uint64_t local) {
  impl_->set_local_presence(topic, local);
}
void RedisBackend::presence(const std::string& topic, std::uint64_t local, PresenceHandler done) {
  impl_->presence(topic, local, std::move(done));
}
void RedisBackend::keep_session(const std::string& resume_id, std::string record, std::chrono::milliseconds ttl,
                                KeepHandler done) {
  impl_->keep_session(resume_id, std::move(record), ttl, std::move(done));
}
void RedisBackend::take_session(const std::string& resume_id, TakeHandler done) {
  impl_->take_session(resume_id, std::move(done));
}
void RedisBackend::merge_window(const std::string& window_key, std::string contribution,
                                std::chrono::milliseconds settle, MergeHandler done) {
  impl_->merge_window(window_key, std::move(contribution), settle, std::move(done));
}

LIVECAST_END_NAMESPACE
