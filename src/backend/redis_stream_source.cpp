#include <livecast/redis_stream_source.hpp>

#include "redis_connection.hpp"
#include "redis_protocol.hpp"

#include <livecast/error.hpp>

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>

#include <atomic>
#include <deque>
#include <future>
#include <mutex>
#include <stdexcept>
#include <thread>

LIVECAST_BEGIN_NAMESPACE

namespace {

std::optional<StreamPublication> topic_and_data_fields(const StreamEntry& entry) {
  const std::string* topic = entry.field("topic");
  const std::string* data = entry.field("data");
  if (!topic || !data) return std::nullopt;
  return StreamPublication{*topic, *data};
}

RedisConnectionSettings connection_settings(const RedisStreamSourceSettings& s) {
  return redis_connection_settings(s.url, s.connect_timeout, s.command_timeout);
}

const RedisStreamSourceSettings& checked(const RedisStreamSourceSettings& s) {
  if (s.stream.empty()) throw std::invalid_argument("livecast: RedisStreamSource needs a stream name");
  if (s.consumer.empty()) throw std::invalid_argument("livecast: RedisStreamSource needs a consumer name");
  if (s.group.empty()) throw std::invalid_argument("livecast: RedisStreamSource needs a group name");
  if (s.block >= s.command_timeout)
    throw std::invalid_argument("livecast: RedisStreamSource's block must be below command_timeout");
  return s;
}

// Errors a publication will meet every time: the entry is acknowledged.
bool refused_for_good(std::error_code ec) {
  return ec == Errc::invalid_payload || ec == Errc::invalid_topic || ec == Errc::message_too_large;
}

}  // namespace

// Two connections: XREADGROUP ... BLOCK holds one for seconds, and
// acknowledgements must not wait behind it.
class RedisStreamSource::Impl : public std::enable_shared_from_this<RedisStreamSource::Impl> {
 public:
  Impl(Broker& broker, RedisStreamSourceSettings settings)
      : broker_(broker),
        settings_(std::move(checked(settings))),
        reader_(io_, connection_settings(settings_)),
        acker_(io_, connection_settings(settings_)),
        retry_timer_(io_),
        stop_timer_(io_) {
    if (!settings_.map) settings_.map = topic_and_data_fields;
    if (settings_.batch_size == 0) settings_.batch_size = 1;
    if (settings_.max_unacknowledged == 0) settings_.max_unacknowledged = 1;
  }

  void start() {
    std::lock_guard<std::mutex> lock(lifecycle_);
    if (thread_.joinable() || stopped_) return;
    reader_.on_state([this](std::error_code ec) { on_reader_state(ec); });
    acker_.on_state([this](std::error_code ec) { on_acker_state(ec); });
    work_.emplace(io_.get_executor());
    asio::post(io_, [this] {
      reader_.start();
      acker_.start();
    });
    thread_ = std::thread([this] { io_.run(); });
  }

  void stop() {
    std::lock_guard<std::mutex> lock(lifecycle_);
    if (stopped_) return;
    stopped_ = true;
    if (!thread_.joinable()) return;
    asio::post(io_, [this] {
      stopping_ = true;
      retry_timer_.cancel();
      stop_timer_.expires_after(settings_.command_timeout);
      stop_timer_.async_wait([this](std::error_code ec) {
        if (!ec) finish_stop();
      });
      finish_stop_when_settled();
    });
    thread_.join();
  }

  RedisStreamSourceMetrics metrics() const {
    RedisStreamSourceMetrics m;
    m.entries_read = counters_.entries_read.load();
    m.redelivered = counters_.redelivered.load();
    m.published = counters_.published.load();
    m.acknowledged = counters_.acknowledged.load();
    m.rejected = counters_.rejected.load();
    m.publish_failures = counters_.publish_failures.load();
    m.connection_losses = counters_.connection_losses.load();
    return m;
  }

 private:
  // --- on the source's thread ---

  void report(const std::string& what, std::error_code ec) {
    if (settings_.on_error) settings_.on_error(what, ec);
  }

  void on_reader_state(std::error_code ec) {
    read_in_flight_ = false;
    if (ec) {
      counters_.connection_losses.fetch_add(1);
      report("stream source: Redis connection lost", ec);
      return;
    }
    // Entries delivered by a read whose answer was lost are in the pending
    // list: start there (once nothing is in flight, to publish none twice).
    from_pending_ = true;
    pending_cursor_ = "0";
    reader_.execute({"XGROUP", "CREATE", settings_.stream, settings_.group, settings_.start_id, "MKSTREAM"},
                    [this](std::error_code ec, RedisReply reply) {
                      if (!ec && reply.is_error() && reply.string.compare(0, 9, "BUSYGROUP") != 0)
                        report("stream source: XGROUP CREATE failed: " + reply.string,
                               make_error_code(Errc::backend_unavailable));
                      read_next();
                    });
  }

  void on_acker_state(std::error_code ec) {
    if (ec) {
      counters_.connection_losses.fetch_add(1);
      report("stream source: Redis connection lost", ec);
      return;
    }
    flush_acks();  // whatever was not confirmed before (XACK is idempotent)
  }

  bool settled() const { return unacknowledged_ == 0 && acks_.empty() && acks_in_flight_.empty(); }

  void read_next() {
    if (stopping_ || read_in_flight_ || retry_armed_ || !reader_.connected()) return;
    if (unacknowledged_ >= settings_.max_unacknowledged) return;  // resumed as publications settle
    if (from_pending_ && (!settled() || !retrying_.empty())) return;
    const std::string count = std::to_string(settings_.batch_size);
    const std::string block = std::to_string(settings_.block.count());
    std::vector<std::string_view> args{"XREADGROUP", "GROUP", settings_.group, settings_.consumer, "COUNT", count};
    if (!from_pending_) {
      args.push_back("BLOCK");
      args.push_back(block);
    }
    args.push_back("STREAMS");
    args.push_back(settings_.stream);
    args.push_back(from_pending_ ? std::string_view(pending_cursor_) : std::string_view(">"));
    read_in_flight_ = true;
    reader_.execute(args, [this](std::error_code ec, RedisReply reply) {
      read_in_flight_ = false;
      if (ec) return;  // the connection is gone; on_reader_state starts over
      if (reply.is_error()) {
        report("stream source: XREADGROUP failed: " + reply.string, make_error_code(Errc::backend_unavailable));
        if (reply.string.compare(0, 7, "NOGROUP") == 0) on_reader_state({});  // the group was deleted: again
        else schedule_retry();
        return;
      }
      on_entries(reply);
      read_next();
    });
  }

  // [[stream, [[id, [field, value, ...]], ...]]], or nil when BLOCK expired.
  void on_entries(const RedisReply& reply) {
    const RedisReply* entries = nullptr;
    if (reply.is_array() && !reply.elements.empty() && reply.elements[0].is_array() &&
        reply.elements[0].elements.size() == 2 && reply.elements[0].elements[1].is_array())
      entries = &reply.elements[0].elements[1];
    if (!entries || entries->elements.empty()) {
      if (from_pending_) from_pending_ = false;  // the pending list is done: new entries now
      return;
    }
    for (const RedisReply& e : entries->elements) {
      if (!e.is_array() || e.elements.size() != 2 || !e.elements[0].is_text()) continue;
      counters_.entries_read.fetch_add(1);
      StreamEntry entry;
      entry.id = e.elements[0].string;
      if (from_pending_) {
        pending_cursor_ = entry.id;
        counters_.redelivered.fetch_add(1);
      }
      if (!e.elements[1].is_array()) {  // deleted from the stream since it was read: nothing to publish
        reject(std::move(entry.id), "stream source: a pending entry is gone from the stream", Errc::bad_request);
        continue;
      }
      const auto& fields = e.elements[1].elements;
      for (std::size_t i = 0; i + 1 < fields.size(); i += 2)
        entry.fields.emplace_back(fields[i].string, fields[i + 1].string);
      // The pending list holds entries that failed or were never answered:
      // published one at a time, so that they keep their order even when
      // the backend comes back between two of them.
      if (from_pending_) retrying_.push_back(std::move(entry));
      else publish(std::move(entry));
    }
    publish_next_retried();
  }

  // The next entry read from the pending list, once the one before it was
  // accepted; a failure empties the list (the entries stay pending).
  void publish_next_retried() {
    while (!stopping_ && unacknowledged_ == 0 && !retrying_.empty()) {
      StreamEntry entry = std::move(retrying_.front());
      retrying_.pop_front();
      publish(std::move(entry));
    }
  }

  void publish(StreamEntry entry) {
    std::optional<StreamPublication> p;
    try {
      p = settings_.map(entry);
    } catch (const std::exception&) {
      p.reset();
    }
    if (!p) {
      reject(std::move(entry.id), "stream source: entry " + entry.id + " maps to no publication", Errc::bad_request);
      return;
    }
    ++unacknowledged_;
    std::weak_ptr<Impl> weak = weak_from_this();
    std::string id = entry.id;
    std::error_code refused = broker_.publish(p->topic, p->json, [weak, id](std::error_code ec, std::uint64_t) {
      auto self = weak.lock();
      if (!self) return;
      asio::post(self->io_, [raw = self.get(), id, ec] { raw->on_published(id, ec); });
    });
    if (!refused) return;
    --unacknowledged_;
    if (refused_for_good(refused)) {
      reject(std::move(id), "stream source: entry " + id + " refused by the broker", static_cast<Errc>(refused.value()));
      return;
    }
    publication_failed(refused);
  }

  void on_published(const std::string& id, std::error_code ec) {
    --unacknowledged_;
    if (ec) {
      publication_failed(ec);
    } else {
      counters_.published.fetch_add(1);
      acknowledge(id);
    }
    if (stopping_) {
      finish_stop_when_settled();
    } else {
      publish_next_retried();
      read_next();
    }
  }

  void reject(std::string id, const std::string& what, Errc why) {
    counters_.rejected.fetch_add(1);
    report(what, make_error_code(why));
    acknowledge(std::move(id));
  }

  // Left pending: read again from the pending list once the entries in
  // flight are settled, so that none is published twice by this instance.
  void publication_failed(std::error_code ec) {
    counters_.publish_failures.fetch_add(1);
    report("stream source: publication not accepted, will retry", ec);
    from_pending_ = true;
    pending_cursor_ = "0";
    retrying_.clear();
    schedule_retry();
  }

  void schedule_retry() {
    if (retry_armed_ || stopping_) return;
    retry_armed_ = true;
    retry_timer_.expires_after(settings_.retry_delay);
    retry_timer_.async_wait([this](std::error_code ec) {
      retry_armed_ = false;
      if (!ec) read_next();
    });
  }

  void acknowledge(std::string id) {
    acks_.push_back(std::move(id));
    flush_acks();
  }

  // One XACK at a time, carrying every id gathered meanwhile.
  void flush_acks() {
    if (!acks_in_flight_.empty() || acks_.empty() || !acker_.connected()) return;
    acks_in_flight_ = std::move(acks_);
    acks_.clear();
    std::vector<std::string_view> args{"XACK", settings_.stream, settings_.group};
    for (const std::string& id : acks_in_flight_) args.push_back(id);
    acker_.execute(args, [this](std::error_code ec, RedisReply reply) {
      if (ec || reply.is_error()) {
        // Unknown whether it was applied: send these ids again.
        acks_.insert(acks_.end(), acks_in_flight_.begin(), acks_in_flight_.end());
      } else {
        counters_.acknowledged.fetch_add(acks_in_flight_.size());
      }
      acks_in_flight_.clear();
      if (!ec) flush_acks();
      if (stopping_) finish_stop_when_settled();
      else read_next();
    });
  }

  void finish_stop_when_settled() {
    if (settled()) finish_stop();
  }

  void finish_stop() {
    if (finished_) return;
    finished_ = true;
    stop_timer_.cancel();
    retry_timer_.cancel();
    reader_.shutdown(make_error_code(Errc::shutting_down));
    acker_.shutdown(make_error_code(Errc::shutting_down));
    work_.reset();
    asio::post(io_, [this] { io_.stop(); });
  }

  struct Counters {
    std::atomic<std::uint64_t> entries_read{0}, redelivered{0}, published{0}, acknowledged{0}, rejected{0},
        publish_failures{0}, connection_losses{0};
  };

  Broker& broker_;
  RedisStreamSourceSettings settings_;
  asio::io_context io_{1};
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  RedisConnection reader_;
  RedisConnection acker_;
  asio::steady_timer retry_timer_;
  asio::steady_timer stop_timer_;
  std::thread thread_;
  std::mutex lifecycle_;
  bool stopped_ = false;
  Counters counters_;

  // Only on the source's thread.
  bool stopping_ = false;
  bool finished_ = false;
  bool read_in_flight_ = false;
  bool retry_armed_ = false;
  bool from_pending_ = true;
  std::string pending_cursor_ = "0";
  std::size_t unacknowledged_ = 0;  // handed to the Broker, not yet answered
  std::deque<StreamEntry> retrying_;  // read from the pending list, not yet handed to the Broker
  std::vector<std::string> acks_;             // to acknowledge
  std::vector<std::string> acks_in_flight_;   // in the XACK under way
};

RedisStreamSource::RedisStreamSource(Broker& broker, RedisStreamSourceSettings settings)
    : impl_(std::make_shared<Impl>(broker, std::move(settings))) {}
RedisStreamSource::~RedisStreamSource() { impl_->stop(); }
void RedisStreamSource::start() { impl_->start(); }
void RedisStreamSource::stop() { impl_->stop(); }
RedisStreamSourceMetrics RedisStreamSource::metrics() const { return impl_->metrics(); }

LIVECAST_END_NAMESPACE
