#include "redis_connection.hpp"

#include <livecast/error.hpp>

#include <asio/connect.hpp>
#include <asio/write.hpp>

#include <algorithm>
#include <stdexcept>
#include <utility>

LIVECAST_BEGIN_NAMESPACE

std::optional<RedisUrl> RedisUrl::parse(std::string_view url) {
  constexpr std::string_view scheme = "redis://";
  if (url.substr(0, scheme.size()) != scheme) return std::nullopt;
  url.remove_prefix(scheme.size());
  RedisUrl out;
  if (auto at = url.rfind('@'); at != std::string_view::npos) {
    std::string_view credentials = url.substr(0, at);
    url.remove_prefix(at + 1);
    auto colon = credentials.find(':');
    if (colon == std::string_view::npos) {
      out.password = std::string(credentials);
    } else {
      out.user = std::string(credentials.substr(0, colon));
      out.password = std::string(credentials.substr(colon + 1));
    }
  }
  std::string_view db;
  if (auto slash = url.find('/'); slash != std::string_view::npos) {
    db = url.substr(slash + 1);
    url = url.substr(0, slash);
  }
  std::string_view host = url, port;
  if (!url.empty() && url.front() == '[') {  // [v6 address]:port
    auto close = url.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    host = url.substr(1, close - 1);
    std::string_view rest = url.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return std::nullopt;
      port = rest.substr(1);
    }
  } else if (auto colon = url.rfind(':'); colon != std::string_view::npos) {
    host = url.substr(0, colon);
    port = url.substr(colon + 1);
  }
  if (host.empty()) return std::nullopt;
  out.host = std::string(host);
  if (!port.empty()) {
    if (port.size() > 5 || !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }))
      return std::nullopt;
    int n = std::stoi(std::string(port));
    if (n < 1 || n > 65535) return std::nullopt;
    out.port = std::string(port);
  }
  if (!db.empty()) {
    if (db.size() > 5 || !std::all_of(db.begin(), db.end(), [](char c) { return c >= '0' && c <= '9'; }))
      return std::nullopt;
    out.db = std::stoi(std::string(db));
  }
  return out;
}

RedisConnectionSettings redis_connection_settings(const std::string& url, std::chrono::milliseconds connect_timeout,
                                                  std::chrono::milliseconds command_timeout) {
  auto parsed = RedisUrl::parse(url);
  if (!parsed) throw std::invalid_argument("livecast: malformed Redis URL '" + url + "'");
  RedisConnectionSettings c;
  c.url = *parsed;
  c.connect_timeout = connect_timeout;
  c.command_timeout = command_timeout;
  return c;
}

RedisConnection::RedisConnection(asio::io_context& io, RedisConnectionSettings settings)
    : io_(io),
      settings_(std::move(settings)),
      resolver_(io),
      socket_(io),
      connect_timer_(io),
      retry_timer_(io),
      command_timer_(io),
      jitter_(std::random_device{}()),
      parser_(std::make_unique<RedisReplyParser>()),
      read_buffer_(64 * 1024) {}

RedisConnection::~RedisConnection() = default;

void RedisConnection::start() {
  if (state_ != State::idle) return;
  connect();
}

void RedisConnection::shutdown(std::error_code reason) {
  if (state_ == State::stopped) return;
  fail(reason);
  state_ = State::stopped;
  retry_timer_.cancel();
}

void RedisConnection::connect() {
  state_ = State::connecting;
  const std::uint64_t gen = ++generation_;
  parser_ = std::make_unique<RedisReplyParser>();  // a new stream starts clean
  connect_timer_.expires_after(settings_.connect_timeout);
  connect_timer_.async_wait([this, gen](std::error_code ec) {
    if (ec || gen != generation_ || state_ != State::connecting) return;
    fail(make_error_code(Errc::backend_unavailable));  // connect timed out
  });
  resolver_.async_resolve(settings_.url.host, settings_.url.port,
                          [this, gen](std::error_code ec, asio::ip::tcp::resolver::results_type results) {
                            if (gen != generation_ || state_ != State::connecting) return;
                            if (ec) {
                              fail(ec);
                              return;
                            }
                            connect_to(results);
                          });
}

void RedisConnection::connect_to(const asio::ip::tcp::resolver::results_type& endpoints) {
  const std::uint64_t gen = generation_;
  asio::async_connect(socket_, endpoints, [this, gen](std::error_code ec, const asio::ip::tcp::endpoint&) {
    if (gen != generation_ || state_ != State::connecting) return;
    if (ec) {
      fail(ec);
      return;
    }
    on_connected();
  });
}

void RedisConnection::on_connected() {
  connect_timer_.cancel();
  std::error_code ignored;
  socket_.set_option(asio::ip::tcp::no_delay(true), ignored);
  state_ = State::connected;
  ready_ = false;
  read();
  // The handshake goes first in the pipeline; a refusal drops the connection.
  const std::uint64_t gen = generation_;
  auto check = [this, gen](std::error_code ec, const RedisReply& reply) {
    if (!ec && gen == generation_ && reply.is_error()) fail(make_error_code(Errc::backend_unavailable));
  };
  if (!settings_.url.password.empty()) {
    if (settings_.url.user.empty())
      execute({"AUTH", settings_.url.password}, check);
    else
      execute({"AUTH", settings_.url.user, settings_.url.password}, check);
  }
  if (settings_.url.db != 0 && !settings_.subscriber) execute({"SELECT", std::to_string(settings_.url.db)}, check);
  // Ready once the server answered everything before this PING.
  execute({"PING"}, [this, gen](std::error_code ec, const RedisReply& reply) {
    if (ec || gen != generation_ || reply.is_error()) return;
    ready_ = true;
    attempt_ = 0;
    resubscribe();
    if (on_state_) on_state_({});
  });
}

void RedisConnection::fail(std::error_code reason) {
  if (state_ == State::stopped) return;
  const bool was_up = state_ == State::connected || state_ == State::connecting;
  ++generation_;
  std::error_code ignored;
  resolver_.cancel();
  socket_.close(ignored);
  connect_timer_.cancel();
  command_timer_.cancel();
  command_timer_armed_ = false;
  outgoing_.clear();
  write_in_flight_ = false;
  bytes_in_flight_ = 0;
  state_ = State::idle;
  ready_ = false;
  // Handlers may call execute(): it fails fast now that the state is idle.
  std::deque<Pending> failed;
  failed.swap(pending_);
  for (Pending& p : failed) p.done(make_error_code(Errc::backend_unavailable), RedisReply{});
  if (was_up && on_state_) on_state_(reason ? reason : make_error_code(Errc::backend_unavailable));
  if (state_ == State::idle) schedule_reconnect();
}

void RedisConnection::schedule_reconnect() {
  // Exponential from min_backoff, capped, with full jitter in [d/2, d].
  auto base = settings_.min_backoff.count();
  auto cap = std::max(settings_.max_backoff.count(), base);
  long long d = base;
  for (unsigned i = 0; i < attempt_ && d < cap; ++i) d *= 2;
  d = std::min<long long>(d, cap);
  if (attempt_ < 32) ++attempt_;
  std::uniform_int_distribution<long long> spread(d / 2, d);
  retry_timer_.expires_after(std::chrono::milliseconds(spread(jitter_)));
  const std::uint64_t gen = generation_;
  retry_timer_.async_wait([this, gen](std::error_code ec) {
    if (ec || gen != generation_ || state_ != State::idle) return;
    connect();
  });
}

void RedisConnection::execute(const std::vector<std::string_view>& args, ReplyHandler done) {
  std::string bytes;
  if (state_ == State::connected && pending_.size() < settings_.max_pending) append_redis_command(bytes, args);
  if (bytes.empty() || outgoing_.size() + bytes_in_flight_ + bytes.size() > settings_.max_queued_bytes) {
    done(make_error_code(Errc::backend_unavailable), RedisReply{});
    return;
  }
  pending_.push_back(Pending{std::move(done), std::chrono::steady_clock::now() + settings_.command_timeout});
  write(bytes);
  arm_command_timer();
}

void RedisConnection::subscribe(const std::string& channel) {
  if (!channels_.insert(channel).second) return;
  if (ready_) write(encode_redis_command({settings_.sharded ? "SSUBSCRIBE" : "SUBSCRIBE", channel}));
}

void RedisConnection::unsubscribe(const std::string& channel) {
  if (channels_.erase(channel) == 0) return;
  if (ready_) write(encode_redis_command({settings_.sharded ? "SUNSUBSCRIBE" : "UNSUBSCRIBE", channel}));
}

void RedisConnection::resubscribe() {
  if (!settings_.subscriber || !ready_ || channels_.empty()) return;
  if (settings_.sharded) {
    // One command per channel: SSUBSCRIBE with several channels is refused
    // unless they all share a slot.
    for (const std::string& c : channels_) write(encode_redis_command({"SSUBSCRIBE", c}));
    return;
  }
  std::vector<std::string_view> args{"SUBSCRIBE"};
  for (const std::string& c : channels_) args.push_back(c);
  write(encode_redis_command(args));
}

void RedisConnection::write(std::string_view bytes) {
  outgoing_.append(bytes.data(), bytes.size());
  if (!write_in_flight_) flush();
}

void RedisConnection::flush() {
  if (outgoing_.empty() || state_ != State::connected) return;
  writing_.clear();
  writing_.swap(outgoing_);
  write_in_flight_ = true;
  bytes_in_flight_ = writing_.size();
  const std::uint64_t gen = generation_;
  asio::async_write(socket_, asio::buffer(writing_), [this, gen](std::error_code ec, std::size_t) {
    if (gen != generation_) return;
    write_in_flight_ = false;
    bytes_in_flight_ = 0;
    if (ec) {
      fail(ec);
      return;
    }
    flush();
  });
}

void RedisConnection::read() {
  const std::uint64_t gen = generation_;
  socket_.async_read_some(asio::buffer(read_buffer_), [this, gen](std::error_code ec, std::size_t n) {
    if (gen != generation_) return;
    if (ec) {
      fail(ec);
      return;
    }
    parser_->feed(read_buffer_.data(), n);
    while (gen == generation_) {
      std::optional<RedisReply> reply = parser_->next();
      if (!reply) break;
      handle_reply(std::move(*reply));
    }
    if (gen != generation_) return;
    if (parser_->failed()) {
      fail(make_error_code(Errc::backend_unavailable));
      return;
    }
    read();
  });
}

void RedisConnection::handle_reply(RedisReply reply) {
  if (settings_.subscriber && reply.is_array() && !reply.elements.empty() && reply.elements[0].is_text()) {
    const std::string& kind = reply.elements[0].string;
    const bool sharded = settings_.sharded;
    if (kind == (sharded ? "smessage" : "message") && reply.elements.size() == 3) {
      if (on_message_) on_message_(reply.elements[1].string, std::move(reply.elements[2].string));
      return;
    }
    if (kind == (sharded ? "ssubscribe" : "subscribe") && reply.elements.size() == 3) {
      if (on_subscribed_) on_subscribed_(reply.elements[1].string);
      return;
    }
    if (sharded && kind == "sunsubscribe" && reply.elements.size() == 3) {
      // Still in the set: we did not ask, the server dropped it (slot moved).
      const std::string& channel = reply.elements[1].string;
      if (channels_.erase(channel) && on_unsubscribed_) on_unsubscribed_(channel);
      return;
    }
    if (kind == "unsubscribe" || kind == "psubscribe" || kind == "punsubscribe" || kind == "pmessage") return;
    if (sharded && kind == "sunsubscribe") return;
  }
  if (pending_.empty()) {  // nothing asked for it (e.g. an error reply to SUBSCRIBE)
    if (reply.is_error() && on_error_reply_) on_error_reply_(reply.string);
    return;
  }
  Pending p = std::move(pending_.front());
  pending_.pop_front();
  p.done({}, std::move(reply));
}

void RedisConnection::arm_command_timer() {
  if (command_timer_armed_ || pending_.empty()) return;
  command_timer_armed_ = true;
  command_timer_.expires_at(pending_.front().deadline);
  const std::uint64_t gen = generation_;
  command_timer_.async_wait([this, gen](std::error_code ec) {
    if (ec || gen != generation_) return;
    command_timer_armed_ = false;
    if (!pending_.empty() && pending_.front().deadline <= std::chrono::steady_clock::now()) {
      fail(make_error_code(Errc::backend_unavailable));  // the server stopped answering
      return;
    }
    arm_command_timer();
  });
}

LIVECAST_END_NAMESPACE
