#include "websocket_housekeeping.hpp"

#include "websocket_shard.hpp"
#include "websocket_writer.hpp"

#include <algorithm>
#include <string>
#include <system_error>
#include <utility>

LIVECAST_BEGIN_NAMESPACE
namespace detail::ws {

Housekeeping::Housekeeping(ShardServer& shard, SessionHost& host, std::shared_ptr<const WebSocketSettings> settings,
                           asio::io_context& context)
    : shard_(shard), host_(host), settings_(std::move(settings)), timer_(context), close_deadline_(context) {}

std::chrono::milliseconds Housekeeping::period() const {
  const SessionSettings& s = host_.session_settings();
  std::chrono::milliseconds period{500};
  if (s.ping_interval.count() > 0) period = std::min(period, s.ping_interval);
  if (s.idle_timeout.count() > 0) period = std::min(period, std::max(s.idle_timeout / 2, std::chrono::milliseconds(1)));
  return period;
}

void Housekeeping::arm() {
  if (stopped_) return;
  timer_.expires_after(period());
  timer_.async_wait([weak = shard_.weak_from_this()](const std::error_code& ec) {
    auto self = weak.lock();
    if (self && !ec) self->housekeeping().pass();
  });
}

void Housekeeping::pass() {
  if (stopped_) return;
  const SessionSettings& s = host_.session_settings();
  const auto now = std::chrono::steady_clock::now();
  const auto handshake_timeout = std::chrono::milliseconds(settings_->handshake_timeout_ms);
  const bool ping = s.ping_interval.count() > 0 && now - last_ping_ >= s.ping_interval;
  if (ping) last_ping_ = now;
  static const std::string ping_frame = server_frame(ping_opcode, {});
  std::vector<LeanPtr> idle, stuck;
  for (const LeanPtr& con : shard_.connections()) {
    const auto since = now - con->last_activity;
    switch (con->phase) {
      case LeanConnection::Phase::handshake:
        if (since > handshake_timeout) stuck.push_back(con);
        break;
      case LeanConnection::Phase::open:
        if (!con->session) {
          // Opened to take over a polling session (Engine.IO's upgrade) and
          // never asked for it: as long as a handshake may take.
          if (con->pending && since > handshake_timeout) stuck.push_back(con);
          break;
        }
        if (con->session->closing()) break;
        if (s.idle_timeout.count() > 0 && since > s.idle_timeout) {
          idle.push_back(con);
          break;
        }
        // A protocol with a heartbeat of its own (Engine.IO's ping, which
        // its client expects and answers) gets that instead of a WebSocket ping.
        if (ping && !host_.heartbeat(*con->session)) shard_.writer().queue_owned(*con, ping_frame);
        break;
      case LeanConnection::Phase::closing:
        if (since > close_timeout) stuck.push_back(con);
        break;
      case LeanConnection::Phase::ended:
        break;
    }
  }
  for (auto& con : idle) con->session->close(CloseCode::idle_timeout, "idle timeout");
  for (auto& con : stuck) shard_.abort(*con);
  // Ended connections whose last bytes a client does not take.
  std::size_t kept = 0;
  for (auto& con : lingering_) {
    if (!con->stream.is_open()) continue;
    if (now - con->last_activity > close_timeout) {
      ShardWriter::close_socket(*con);
      continue;
    }
    lingering_[kept++] = std::move(con);
  }
  lingering_.resize(kept);
  arm();
}

void Housekeeping::stop(std::vector<std::weak_ptr<LeanConnection>> closing) {
  stopped_ = true;
  timer_.cancel();
  closing_after_stop_ = std::move(closing);
  for (auto& con : lingering_) closing_after_stop_.push_back(std::move(con));
  lingering_.clear();
  if (closing_after_stop_.empty()) return;
  // A client that stopped reading never lets the close frame out; cut it
  // off once the close handshake had its time.
  close_deadline_.expires_after(close_timeout);
  close_deadline_.async_wait([weak = shard_.weak_from_this()](const std::error_code&) {
    auto self = weak.lock();
    if (!self) return;
    Housekeeping& h = self->housekeeping();
    for (auto& w : h.closing_after_stop_)
      if (auto con = w.lock()) self->abort(*con);
    h.closing_after_stop_.clear();
  });
}

}  // namespace detail::ws
LIVECAST_END_NAMESPACE
