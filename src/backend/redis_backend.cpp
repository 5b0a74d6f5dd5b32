#include <livecast/redis_backend.hpp>

#include "redis_connection.hpp"
#include "redis_protocol.hpp"

#include <livecast/error.hpp>

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>

#include <atomic>
#include <charconv>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <random>
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
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], offset .. '-0', 'offset', offset, 'data', ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[3])
redis.call('EXPIRE', KEYS[3], ARGV[3])
redis.call('PUBLISH', ARGV[5], epoch .. ':' .. offset .. ':' .. ARGV[1])
return {epoch, offset}
)lua";

// KEYS: stream, offset, epoch. ARGV: since epoch, since offset ("" and 0
// without a position). Returns {epoch, head, recovered (1/0), entries}: the
// entries after `since` when they are all still in the stream, otherwise the
// last entry. Atomic, so the head matches the entries.
constexpr const char* read_script = R"lua(
local epoch = redis.call('GET', KEYS[3])
if not epoch then return {'', 0, 0, {}} end
local head = tonumber(redis.call('GET', KEYS[2]) or '0')
local since = tonumber(ARGV[2])
if ARGV[1] == epoch and since <= head then
  if since == head then return {epoch, head, 1, {}} end
  local first = (since + 1) .. '-0'
  local entries = redis.call('XRANGE', KEYS[1], first, '+')
  if #entries > 0 and entries[1][1] == first then return {epoch, head, 1, entries} end
end
return {epoch, head, 0, redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)}
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
std::optional<Publication> entry_to_publication(const std::string& topic, const RedisReply& entry) {
  if (!entry.is_array() || entry.elements.size() != 2 || !entry.elements[1].is_array()) return std::nullopt;
  auto offset = parse_offset(entry.elements[0].string);  // "<offset>-0"
  if (!offset) return std::nullopt;
  const auto& fields = entry.elements[1].elements;
  for (std::size_t i = 0; i + 1 < fields.size(); i += 2)
    if (fields[i].string == "data")
      return Publication{topic, *offset, std::make_shared<const std::string>(fields[i + 1].string)};
  return std::nullopt;
}

RedisConnectionSettings connection_settings(const RedisBackendSettings& s, bool subscriber) {
  auto url = RedisUrl::parse(s.url);
  if (!url) throw std::invalid_argument("livecast: malformed Redis URL '" + s.url + "'");
  RedisConnectionSettings c;
  c.url = *url;
  c.connect_timeout = s.connect_timeout;
  c.command_timeout = s.command_timeout;
  c.subscriber = subscriber;
  return c;
}

}  // namespace

class RedisBackend::Impl {
 public:
  explicit Impl(RedisBackendSettings settings)
      : settings_(std::move(settings)),
        commands_(io_, connection_settings(settings_, false)),
        subscriber_(io_, connection_settings(settings_, true)),
        random_(std::random_device{}()) {
    if (settings_.history_size == 0) settings_.history_size = 1;
    if (settings_.history_ttl.count() <= 0) settings_.history_ttl = std::chrono::seconds(1);
  }

  ~Impl() { stop(); }

  void start(BackendListener& listener) {
    std::lock_guard<std::mutex> lock(lifecycle_);
    if (thread_.joinable() || stopped_) return;
    listener_ = &listener;
    commands_.on_state([this](std::error_code ec) { on_commands_state(ec); });
    subscriber_.on_state([this](std::error_code ec) { on_subscriber_state(ec); });
    subscriber_.on_subscribed([this](const std::string& channel) { on_subscribed(channel); });
    subscriber_.on_message([this](const std::string& channel, std::string payload) {
      on_message(channel, std::move(payload));
    });
    work_.emplace(io_.get_executor());
    asio::post(io_, [this] {
      commands_.start();
      subscriber_.start();
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

  void publish(const std::string& topic, std::shared_ptr<const std::string> data, PublishHandler done) {
    if (!accepting_.load() || !commands_up_.load()) {  // fail fast: no buffering while Redis is away
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
      if (!channel_topics_.emplace(channel, topic).second) return;
      if (subscriber_.connected()) ++unconfirmed_[channel];
      subscriber_.subscribe(channel);
    });
  }

  void unwatch(const std::string& topic) {
    asio::post(io_, [this, topic] {
      std::string channel = key(topic, "pub");
      channel_topics_.erase(channel);
      last_offsets_.erase(topic);
      subscriber_.unsubscribe(channel);
      run_waiting_reads(channel);
    });
  }

  void read(const std::string& topic, const std::optional<StreamPosition>& since, ReadHandler done) {
    if (!accepting_.load()) {
      ReadResult r;
      r.error = make_error_code(Errc::shutting_down);
      done(std::move(r));
      return;
    }
    asio::post(io_, [this, topic, since, done = std::move(done)]() mutable {
      // A read for a watched topic waits until its channel is subscribed, so
      // that no publication falls between the read and the live stream.
      std::string channel = key(topic, "pub");
      bool waiting = subscriber_.connected() && channel_topics_.count(channel) && unconfirmed_.count(channel);
      auto run = [this, topic, since, done = std::move(done)]() mutable {
        send_read(topic, since, std::move(done), /*use_sha=*/true);
      };
      if (waiting)
        waiting_reads_[channel].push_back(std::move(run));
      else
        run();
    });
  }

 private:
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

  void send_publish(const std::string& topic, std::shared_ptr<const std::string> data, PublishHandler done,
                    bool use_sha) {
    const std::string stream = key(topic, "stream"), offset = key(topic, "offset"), epoch = key(topic, "epoch");
    const std::string channel = key(topic, "pub");
    const std::string history = std::to_string(settings_.history_size);
    const std::string ttl = std::to_string(settings_.history_ttl.count());
    const std::string suffix = random_suffix();
    auto known = last_offsets_.find(topic);
    const std::string floor = std::to_string(known == last_offsets_.end() ? 0 : known->second);
    const bool by_sha = use_sha && !publish_sha_.empty();
    const std::string_view script = by_sha ? std::string_view(publish_sha_) : std::string_view(publish_script);
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
        if (done) done(make_error_code(Errc::backend_unavailable), 0);
        return;
      }
      if (done) done({}, *assigned);
    });
  }

  void send_read(const std::string& topic, const std::optional<StreamPosition>& since, ReadHandler done,
                 bool use_sha) {
    const std::string stream = key(topic, "stream"), offset = key(topic, "offset"), epoch = key(topic, "epoch");
    const std::string since_epoch = since ? since->epoch : std::string();
    const std::string since_offset = std::to_string(since ? since->offset : 0);
    const bool by_sha = use_sha && !read_sha_.empty();
    const std::string_view script = by_sha ? std::string_view(read_sha_) : std::string_view(read_script);
    std::vector<std::string_view> args{by_sha ? "EVALSHA" : "EVAL", script, "3", stream,
                                       offset, epoch, since_epoch, since_offset};
    commands_.execute(args, [this, topic, since, done = std::move(done), by_sha](std::error_code ec,
                                                                                   RedisReply reply) mutable {
      if (!ec && reply.is_error() && by_sha && starts_with(reply.string, "NOSCRIPT")) {
        read_sha_.clear();
        send_read(topic, since, std::move(done), /*use_sha=*/false);
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
      auto p = entry_to_publication(topic, entry);
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
    flag = up;
    state_changed_.notify_all();
  }

  void on_commands_state(std::error_code ec) {
    commands_up_.store(!ec);
    set_connected(commands_connected_, !ec);
    if (ec) {
      if (accepting_.load()) listener_->on_backend_error(ec);
      publish_sha_.clear();  // the server may come back without them
      read_sha_.clear();
      return;
    }
    // EVALSHA from now on; until the answers come, EVAL.
    commands_.execute({"SCRIPT", "LOAD", publish_script}, [this](std::error_code ec, RedisReply reply) {
      if (!ec && reply.is_text()) publish_sha_ = reply.string;
    });
    commands_.execute({"SCRIPT", "LOAD", read_script}, [this](std::error_code ec, RedisReply reply) {
      if (!ec && reply.is_text()) read_sha_ = reply.string;
    });
  }

  void on_subscriber_state(std::error_code ec) {
    // Connected: every watched channel was just subscribed again. Lost:
    // nothing is subscribed, and nothing will be confirmed.
    unconfirmed_.clear();
    if (!ec)
      for (const auto& [channel, topic] : channel_topics_) unconfirmed_[channel] = 1;
    set_connected(subscriber_connected_, !ec);
    if (!ec) return;
    if (accepting_.load()) listener_->on_backend_error(ec);
    // No live stream to line up with: let waiting reads go (they fail fast
    // or answer from the command connection).
    auto waiting = std::move(waiting_reads_);
    waiting_reads_.clear();
    for (auto& [channel, reads] : waiting)
      for (auto& run : reads) run();
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
    auto it = channel_topics_.find(channel);
    if (it == channel_topics_.end()) return;  // unwatched meanwhile
    auto first = payload.find(':');
    if (first == std::string::npos) return;
    auto second = payload.find(':', first + 1);
    if (second == std::string::npos) return;
    auto offset = parse_offset(std::string_view(payload).substr(first + 1, second - first - 1));
    if (!offset) return;
    std::uint64_t& last = last_offsets_[it->second];
    if (*offset > last) last = *offset;
    payload.erase(0, second + 1);
    auto data = std::make_shared<const std::string>(std::move(payload));
    listener_->on_publication(Publication{it->second, *offset, std::move(data)});
  }

  RedisBackendSettings settings_;
  asio::io_context io_{1};
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  RedisConnection commands_;
  RedisConnection subscriber_;
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

  // Only on the backend's thread.
  std::minstd_rand random_;
  std::string publish_sha_, read_sha_;
  std::unordered_map<std::string, std::string> channel_topics_;  // watched channel -> topic
  std::unordered_map<std::string, int> unconfirmed_;             // channel -> SUBSCRIBEs not yet confirmed
  std::unordered_map<std::string, std::vector<std::function<void()>>> waiting_reads_;
  std::unordered_map<std::string, std::uint64_t> last_offsets_;  // watched topic -> highest offset delivered
};

RedisBackend::RedisBackend(RedisBackendSettings settings) : impl_(std::make_unique<Impl>(std::move(settings))) {}
RedisBackend::~RedisBackend() = default;

bool RedisBackend::connected() const { return impl_->connected(); }
bool RedisBackend::wait_connected(std::chrono::milliseconds timeout) const { return impl_->wait_connected(timeout); }
void RedisBackend::start(BackendListener& listener) { impl_->start(listener); }
void RedisBackend::stop() { impl_->stop(); }
void RedisBackend::publish(const std::string& topic, std::shared_ptr<const std::string> data, PublishHandler done) {
  impl_->publish(topic, std::move(data), std::move(done));
}
void RedisBackend::watch(const std::string& topic) { impl_->watch(topic); }
void RedisBackend::unwatch(const std::string& topic) { impl_->unwatch(topic); }
void RedisBackend::read(const std::string& topic, const std::optional<StreamPosition>& since, ReadHandler done) {
  impl_->read(topic, since, std::move(done));
}

LIVECAST_END_NAMESPACE
