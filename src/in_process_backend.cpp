// InProcessBackend: see include/livecast/in_process_backend.hpp.
#include <livecast/in_process_backend.hpp>

#include <algorithm>
#include <cstddef>
#include <iterator>
#include <random>
#include <utility>

LIVECAST_BEGIN_NAMESPACE

namespace {

std::string random_epoch() {
  std::random_device rd;
  std::uint64_t v = (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
  static const char digits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
  std::string s;
  for (int i = 0; i < 10; ++i, v /= 36) s.push_back(digits[v % 36]);
  return s;
}

std::size_t payload_size(const Publication& p) noexcept { return p.data ? p.data->size() : 0; }

}  // namespace

InProcessBackend::InProcessBackend(InProcessBackendSettings settings) : settings_(std::move(settings)) {
  if (settings_.epoch.empty()) settings_.epoch = random_epoch();
  if (settings_.history_size == 0) settings_.history_size = 1;
  generation_epoch_ = settings_.epoch;
}

InProcessBackend::~InProcessBackend() = default;

void InProcessBackend::start(BackendListener& listener) {
  listener_ = &listener;
  last_sweep_ = now();
}

std::chrono::steady_clock::time_point InProcessBackend::now() const {
  return settings_.clock ? settings_.clock() : std::chrono::steady_clock::now();
}

void InProcessBackend::publish(const std::string& topic, std::shared_ptr<const std::string> data,
                               PublishHandler done) {
  std::uint64_t offset;
  {
    // Delivery happens under the lock so that every shard receives one
    // topic's publications in offset order, whatever thread published them.
    std::lock_guard<std::mutex> lock(mutex_);
    const auto at = now();
    forget_idle(at);
    auto [it, created] = topics_.try_emplace(topic);
    History& h = it->second;
    if (created) h.epoch = generation_epoch_;
    h.last_publication = at;
    offset = ++h.head;
    h.publications.push_back(Publication{topic, offset, std::move(data), h.epoch});
    h.stored_at.push_back(at);
    h.bytes += payload_size(h.publications.back());
    while (h.publications.size() > 1 &&
           (h.publications.size() > settings_.history_size || h.bytes > settings_.history_bytes)) {
      h.bytes -= payload_size(h.publications.front());
      h.publications.pop_front();
      h.stored_at.pop_front();
    }
    if (listener_) listener_->on_publication(h.publications.back());
  }
  if (done) done({}, offset);
}

void InProcessBackend::watch(const std::string& topic) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++watched_[topic];
}

void InProcessBackend::unwatch(const std::string& topic) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = watched_.find(topic);
  if (it == watched_.end()) return;
  if (--it->second == 0) {
    watched_.erase(it);
    // The topic's idle time runs from its last publication or from now,
    // whichever is later: a subscriber that just left was using it.
    if (auto t = topics_.find(topic); t != topics_.end()) t->second.last_publication = now();
  }
}

void InProcessBackend::read(const std::string& topic, const std::optional<StreamPosition>& since,
                            std::size_t max_publications, ReadHandler done) {
  ReadResult result;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = topics_.find(topic);
    if (it != topics_.end()) {
      const History& h = it->second;
      result.head = StreamPosition{h.epoch, h.head};
      if (since && since->epoch == h.epoch && since->offset <= h.head && h.head - since->offset <= max_publications) {
        // Recoverable when the first missed publication is still in history.
        std::uint64_t oldest = h.publications.empty() ? h.head + 1 : h.publications.front().offset;
        if (since->offset + 1 >= oldest) {
          result.recovered = true;
          for (const Publication& p : h.publications)
            if (p.offset > since->offset) result.publications.push_back(p);
        }
      }
      if (!result.recovered && !h.publications.empty()) result.publications.push_back(h.publications.back());
    } else {
      result.head = StreamPosition{generation_epoch_, 0};
      // Nothing was published in this epoch, so nothing was missed.
      if (since && since->epoch == generation_epoch_ && since->offset == 0) result.recovered = true;
    }
  }
  done(std::move(result));
}

void InProcessBackend::read_recent(const std::string& topic, const RecentHistory& recent,
                                   std::size_t max_publications, ReadHandler done) {
  ReadResult result;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = topics_.find(topic);
    if (it == topics_.end()) {
      result.head = StreamPosition{generation_epoch_, 0};
    } else {
      const History& h = it->second;
      result.head = StreamPosition{h.epoch, h.head};
      std::size_t most = std::max<std::size_t>(1, max_publications);
      if (recent.count > 0) most = std::min(most, recent.count);
      const auto at = now();
      // Newest first from the back; the latest value whatever its age.
      std::size_t n = 0;
      while (n < h.publications.size() && n < most) {
        const std::size_t i = h.publications.size() - 1 - n;
        if (n > 0 && recent.max_age.count() > 0 && at - h.stored_at[i] > recent.max_age) break;
        ++n;
      }
      result.publications.assign(h.publications.end() - static_cast<std::ptrdiff_t>(n), h.publications.end());
    }
  }
  done(std::move(result));
}

void InProcessBackend::forget_idle(std::chrono::steady_clock::time_point at) {
  const auto ttl = settings_.idle_topic_ttl;
  if (ttl.count() <= 0 || at - last_sweep_ < ttl / 2) return;
  last_sweep_ = at;
  std::uint64_t n = 0;
  for (auto it = topics_.begin(); it != topics_.end();) {
    if (at - it->second.last_publication >= ttl && watched_.count(it->first) == 0) {
      it = topics_.erase(it);
      ++n;
    } else {
      ++it;
    }
  }
  if (n == 0) return;
  forgotten_ += n;
  // Topics created from now on start a new epoch: a forgotten topic that
  // comes back must not reuse the offsets of its earlier incarnation.
  generation_epoch_ = settings_.epoch + "." + std::to_string(++generation_);
}

std::string InProcessBackend::epoch() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return generation_epoch_;
}

std::size_t InProcessBackend::topic_count() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return topics_.size();
}

std::uint64_t InProcessBackend::topics_forgotten() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return forgotten_;
}

void InProcessBackend::keep_session(const std::string& resume_id, std::string record, std::chrono::milliseconds ttl,
                                    KeepHandler done) {
  std::error_code result;
  {
    std::lock_guard<std::mutex> lock(kept_mutex_);
    const auto at = now();
    if (at >= next_kept_sweep_ || kept_.size() >= settings_.max_kept_sessions) {
      for (auto it = kept_.begin(); it != kept_.end();) it = it->second.expires_at <= at ? kept_.erase(it) : std::next(it);
      next_kept_sweep_ = at + std::chrono::seconds(1);
    }
    if (kept_.size() >= settings_.max_kept_sessions && kept_.find(resume_id) == kept_.end())
      result = make_error_code(Errc::rate_limited);
    else
      kept_[resume_id] = KeptSession{std::move(record), at + ttl};
  }
  if (done) done(result);
}

void InProcessBackend::take_session(const std::string& resume_id, TakeHandler done) {
  std::optional<std::string> record;
  {
    std::lock_guard<std::mutex> lock(kept_mutex_);
    auto it = kept_.find(resume_id);
    if (it != kept_.end()) {
      if (it->second.expires_at > now()) record = std::move(it->second.record);
      kept_.erase(it);
    }
  }
  done(std::move(record));
}

LIVECAST_END_NAMESPACE
