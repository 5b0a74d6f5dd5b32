// An in-memory transport for socket-free tests: a SessionConnection whose
// "socket" is a vector of received messages. With `reading` false it stops
// draining its session's queue, like a client that stopped reading.
#pragma once

#include <livecast/broker.hpp>
#include <livecast/session_host.hpp>

#include <asio/post.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace livecast_test {

class MemoryConnection final : public livecast::SessionConnection {
 public:
  // Opens a session on `shard`; call on that shard's thread (or with the
  // shard's io_context not running, as the single-threaded tests do).
  MemoryConnection(livecast::Broker& broker, std::size_t shard, livecast::Principal principal = {})
      : host_(broker.session_host()), shard_(shard) {
    session_ = host_.open_session(shard, std::move(principal), 0, *this);
  }
  // A session of a protocol that connects in band (its index `protocol`):
  // opened unauthenticated with `request`, greeted with `greeting`.
  struct InBand {
    std::size_t protocol;
    livecast::HandshakeRequest request;
    livecast::Greeting greeting;
  };
  MemoryConnection(livecast::Broker& broker, std::size_t shard, InBand in_band)
      : host_(broker.session_host()), shard_(shard) {
    session_ = host_.open_unauthenticated(shard, in_band.protocol, *this, std::move(in_band.request), in_band.greeting);
  }
  // Work this connection posted to its shard may still be queued when it
  // goes; `alive_` (read and cleared on the shard only) turns it into no-ops.
  ~MemoryConnection() override {
    disconnect();
    host_.execute_on_shard(shard_, [alive = alive_] { *alive = false; });
  }

  livecast::Session& session() { return *session_; }

  // The client sends a message (runs on the shard thread).
  void send(std::string message) {
    on_shard([this, m = std::move(message)] {
      if (session_) host_.handle_message(*session_, m);
    });
  }

  void set_reading(bool reading) {
    reading_ = reading;
    if (reading) on_shard([this] { drain(); });
  }

  // The connection ended: the broker forgets the session (on its shard).
  void disconnect() {
    if (!session_) return;
    host_.execute_on_shard(shard_, [this] {
      host_.close_session(*session_);
      session_.reset();
    });
  }

  // Everything received so far.
  std::vector<std::string> received() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return received_;
  }
  std::optional<livecast::CloseCode> close_code() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return close_code_;
  }
  std::string close_reason() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return close_reason_;
  }

  // Waits (bounded) until `pred(received)` holds; returns whether it did.
  bool wait_until(const std::function<bool(const std::vector<std::string>&)>& pred,
                  std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    std::unique_lock<std::mutex> lock(mutex_);
    return changed_.wait_for(lock, timeout, [&] { return pred(received_); });
  }
  // Waits (bounded) until the broker closed the session; its close code.
  std::optional<livecast::CloseCode> wait_closed(std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait_for(lock, timeout, [&] { return close_code_.has_value(); });
    return close_code_;
  }
  bool wait_for_count(std::size_t n, std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    return wait_until([n](const std::vector<std::string>& r) { return r.size() >= n; }, timeout);
  }

  // SessionConnection
  void frames_ready() override {
    if (reading_) on_shard([this] { drain(); });
  }
  void close(livecast::CloseCode code, std::string_view reason) override {
    std::lock_guard<std::mutex> lock(mutex_);
    close_code_ = code;
    close_reason_ = std::string(reason);
    changed_.notify_all();
  }

 private:
  template <typename F>
  void on_shard(F f) {
    asio::post(host_.shard_context(shard_), [alive = alive_, f = std::move(f)]() mutable {
      if (*alive) f();
    });
  }

  void drain() {
    if (!session_ || !reading_) return;
    std::vector<livecast::FramePtr> frames;
    host_.take_frames(*session_, frames);
    std::size_t bytes = 0;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      for (auto& f : frames) {
        received_.push_back(f->bytes);
        bytes += f->bytes.size();
      }
      changed_.notify_all();
    }
    host_.frames_written(*session_, bytes);
  }

  livecast::SessionHost& host_;
  std::size_t shard_;
  std::shared_ptr<livecast::Session> session_;
  std::atomic<bool> reading_{true};
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<std::string> received_;
  std::optional<livecast::CloseCode> close_code_;
  std::string close_reason_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace livecast_test
