// The two halves of an Engine.IO polling request (engineio_polling.hpp):
//   EngineIoAnswer          on the connection's thread: the HTTP exchange
//                           that waits for its answer and writes it
//   EngineIoPollingSession  on the session's shard thread: the broker
//                           session, its waiting GET, its heartbeat and the
//                           liveness of its client
// The session hands packets to the answer by posting to the answer's shard,
// and the answer reports back (written, or lost with its connection) by
// posting to the session's shard, addressed by sid: neither touches the
// other's thread.
#pragma once

#include "engineio_polling.hpp"
#include "http_connection.hpp"

#include <livecast/config.hpp>
#include <livecast/session_host.hpp>

#include <asio/steady_timer.hpp>

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

LIVECAST_BEGIN_NAMESPACE
namespace detail {

// A request to socketio_path whose answer comes later, maybe from another
// shard. Every member on the connection's thread.
class EngineIoAnswer final : public HttpExchange, public std::enable_shared_from_this<EngineIoAnswer> {
 public:
  // Called once when the connection is done with the answer (written or not).
  using OnEnd = std::function<void(std::shared_ptr<EngineIoAnswer>)>;

  // `is_poll`: a GET, which the transport's stop answers with the close packet.
  EngineIoAnswer(HttpConnection& connection, HttpCounters& counters, bool is_poll, OnEnd on_end = {})
      : connection_(connection), counters_(counters), is_poll_(is_poll), on_end_(std::move(on_end)) {}

  // A GET's answer: `packets` separated by `separator`, then the close
  // packet "1" when `close_packet`.
  void packets(std::vector<FramePtr> packets, std::string separator, bool close_packet);
  // Any other answer (a POST's "ok", a refusal).
  void text(int status, std::string_view content_type, std::string body);
  void refuse(EngineIoError error);
  void too_large();

  // After the connection wrote it: the bytes of the packets answered, and
  // whether the whole answer reached the kernel.
  std::size_t packet_bytes() const noexcept { return packet_bytes_; }
  bool complete() const noexcept { return complete_; }

  bool fill(HttpOutput& out) override;
  void written() override;
  void shut_down() override;
  void end() override;

 private:
  void ready();

  HttpConnection& connection_;  // until end()
  HttpCounters& counters_;
  bool is_poll_;
  OnEnd on_end_;
  bool answered_ = false;
  bool filled_ = false;
  bool complete_ = false;
  bool ended_ = false;
  // The answer.
  int status_ = 200;
  std::string content_type_;
  std::string text_;
  std::vector<FramePtr> packets_;
  std::string separator_;
  bool close_packet_ = false;
  std::size_t packet_bytes_ = 0;
};

// One Engine.IO session: owned by the registry (EngineIoPolling) of its
// shard, on whose thread every member runs.
class EngineIoPollingSession final : public SessionConnection,
                                     public EngineIoUpgradeSource,
                                     public std::enable_shared_from_this<EngineIoPollingSession> {
 public:
  EngineIoPollingSession(EngineIoPolling& polling, std::size_t shard, std::string sid);

  // Opens the broker session; returns the handshake's answer (the open packet).
  std::string open(HandshakeRequest request, const Greeting& greeting);
  // A GET from the connection of `answer_shard`: answered when there are
  // packets (a heartbeat at the latest).
  void poll(std::shared_ptr<EngineIoAnswer> answer, std::size_t answer_shard);
  // A POST's body, packets separated by the protocol's separator.
  void post(std::shared_ptr<EngineIoAnswer> answer, std::size_t answer_shard, std::string body);
  // The connection is done with a GET's answer (EngineIoAnswer::OnEnd).
  void poll_ended(const std::shared_ptr<EngineIoAnswer>& answer);
  // The transport stops.
  void shut_down();
  // Engine.IO's upgrade: a WebSocket of this shard takes the session over.
  void probed() override;
  std::shared_ptr<Session> hand_over() override;

  // SessionConnection: called from inside broker code, so both act on a
  // later turn.
  void frames_ready() override;
  void close(CloseCode code, std::string_view reason) override;

 private:
  using Clock = std::chrono::steady_clock;

  void on_frames();
  void on_closed();
  // Answers the waiting GET with what is queued (and the close packet when
  // `final`).
  void deliver(bool final);
  // The session is over: the broker forgets it, the registry too.
  void end();
  // The broker forgets the session (close_session); this may stay a while.
  void release_session();
  void arm_timer();
  void on_timer();
  // Posts `f(answer)` to the thread of the answer's connection.
  void post_to_answer(std::shared_ptr<EngineIoAnswer> answer, std::size_t shard,
                      std::function<void(EngineIoAnswer&)> f) const;

  EngineIoPolling& polling_;  // owns this; not touched once ended_
  SessionHost& host_;
  std::size_t shard_;
  std::string sid_;
  std::shared_ptr<Session> session_;  // null once closing_ and released
  std::vector<FramePtr> leftover_;     // what it had queued when it closed, for the last GET
  asio::steady_timer timer_;
  // The GET waiting for packets, and its connection's shard.
  std::shared_ptr<EngineIoAnswer> waiter_;
  std::size_t waiter_shard_ = 0;
  // Liveness: the client must keep a GET coming and answer heartbeats.
  Clock::time_point last_get_;
  Clock::time_point last_post_;
  Clock::time_point next_heartbeat_;
  Clock::time_point closed_at_;
  bool heartbeats_ = true;  // the protocol has a heartbeat, which the client must answer
  bool frames_posted_ = false;
  bool closing_ = false;  // the broker closed it: the next GET gets what is left, then "1"
  bool ended_ = false;
  bool upgrading_ = false;  // probed over a WebSocket: GETs are answered at once, a noop if nothing else
};

}  // namespace detail
LIVECAST_END_NAMESPACE
