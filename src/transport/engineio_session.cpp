// EngineIoAnswer and EngineIoPollingSession: a session that outlives its
// requests. Engine.IO's rules, as its reference server has them:
//   - one GET waits at a time; a second one is refused (400) and the
//     session closed;
//   - the server's heartbeat (ping) goes out every ping_interval, so a
//     waiting GET is answered at least that often;
//   - a client that keeps no GET coming, or answers no heartbeat, for
//     pingInterval + pingTimeout is gone: the session ends;
//   - a GET whose connection ends before its answer was written takes its
//     packets with it, so the session ends too;
//   - when the broker closes the session, the waiting GET (or the next one)
//     gets what is queued and the close packet "1"; later requests for the
//     sid get 400 "Session ID unknown".
#include "engineio_session.hpp"

#include <asio/post.hpp>

#include <algorithm>
#include <utility>

LIVECAST_BEGIN_NAMESPACE
namespace detail {

// --- EngineIoAnswer ---

void EngineIoAnswer::packets(std::vector<FramePtr> packets, std::string separator, bool close_packet) {
  if (answered_ || ended_) return;
  packets_ = std::move(packets);
  separator_ = std::move(separator);
  close_packet_ = close_packet;
  content_type_ = "text/plain; charset=UTF-8";
  for (const FramePtr& p : packets_) packet_bytes_ += p->bytes.size();
  ready();
}

void EngineIoAnswer::text(int status, std::string_view content_type, std::string body) {
  if (answered_ || ended_) return;
  status_ = status;
  content_type_ = std::string(content_type);
  text_ = std::move(body);
  ready();
}

void EngineIoAnswer::refuse(EngineIoError error) {
  if (answered_ || ended_) return;
  bump(error == EngineIoError::unknown_sid ? counters_.refused_unknown_session : counters_.refused_engineio);
  text(400, "application/json", engineio_error_body(error));
}

void EngineIoAnswer::too_large() {
  if (answered_ || ended_) return;
  bump(counters_.refused_too_large);
  text(413, "application/json", engineio_error_body(EngineIoError::bad_request));
}

void EngineIoAnswer::ready() {
  answered_ = true;
  connection_.write_ready();
}

bool EngineIoAnswer::fill(HttpOutput& out) {
  if (!answered_ || filled_) return false;
  filled_ = true;
  std::size_t length = text_.size();
  for (std::size_t i = 0; i < packets_.size(); ++i) length += packets_[i]->bytes.size() + (i ? separator_.size() : 0);
  if (close_packet_) length += 1 + (packets_.empty() ? 0 : separator_.size());
  out.text(connection_.response_head(status_, content_type_, length, "Cache-Control: no-store\r\n"));
  out.text(text_);
  for (std::size_t i = 0; i < packets_.size(); ++i) {
    if (i) out.text(separator_);
    const std::string& bytes = out.hold(std::move(packets_[i]));
    out.part(bytes, 0, bytes.size());
  }
  if (close_packet_) {
    if (!packets_.empty()) out.text(separator_);
    out.text("1");
  }
  packets_.clear();
  return true;
}

void EngineIoAnswer::written() {
  if (filled_) complete_ = true;
}

void EngineIoAnswer::shut_down() {
  if (answered_) return;
  // The session is closed on its own shard; this GET tells the client so.
  if (is_poll_) {
    packets({}, {}, /*close_packet=*/true);
  } else {
    bump(counters_.refused_shutting_down);
    text(503, "application/json", engineio_error_body(EngineIoError::bad_request));
  }
}

void EngineIoAnswer::end() {
  if (ended_) return;
  ended_ = true;
  packets_.clear();
  if (on_end_) {
    OnEnd on_end = std::move(on_end_);
    on_end_ = nullptr;
    on_end(shared_from_this());
  }
}

// --- EngineIoPollingSession ---

EngineIoPollingSession::EngineIoPollingSession(EngineIoPolling& polling, std::size_t shard, std::string sid)
    : polling_(polling),
      host_(polling.host()),
      shard_(shard),
      sid_(std::move(sid)),
      timer_(host_.shard_context(shard)) {}

std::string EngineIoPollingSession::open(HandshakeRequest request, const Greeting& greeting) {
  const auto now = Clock::now();
  last_get_ = last_post_ = now;
  next_heartbeat_ = now + polling_.ping_interval();
  session_ = host_.open_unauthenticated(shard_, polling_.protocol(), *this, std::move(request), greeting);
  std::string answer;
  std::vector<FramePtr> frames;
  while (host_.has_frames(*session_)) host_.take_frames(*session_, frames);
  for (std::size_t i = 0; i < frames.size(); ++i) {
    if (i) answer += polling_.separator();
    answer += frames[i]->bytes;
  }
  std::size_t bytes = 0;
  for (const FramePtr& f : frames) bytes += f->bytes.size();
  host_.frames_written(*session_, bytes);  // in the answer the connection holds
  arm_timer();
  return answer;
}

void EngineIoPollingSession::post_to_answer(std::shared_ptr<EngineIoAnswer> answer, std::size_t shard,
                                            std::function<void(EngineIoAnswer&)> f) const {
  asio::post(host_.shard_context(shard), [answer = std::move(answer), f = std::move(f)] { f(*answer); });
}

void EngineIoPollingSession::poll(std::shared_ptr<EngineIoAnswer> answer, std::size_t answer_shard) {
  if (ended_) {
    post_to_answer(std::move(answer), answer_shard, [](EngineIoAnswer& a) { a.refuse(EngineIoError::unknown_sid); });
    return;
  }
  if (waiter_) {
    // Engine.IO lets one GET wait at a time: a second one means a confused
    // client (or two tabs sharing a sid); both end.
    post_to_answer(std::move(answer), answer_shard, [](EngineIoAnswer& a) { a.refuse(EngineIoError::bad_request); });
    if (!closing_) session_->close(CloseCode::protocol_error, "overlapping polls");
    return;
  }
  waiter_ = std::move(answer);
  waiter_shard_ = answer_shard;
  last_get_ = Clock::now();
  if (closing_) {
    deliver(/*final=*/true);
    end();
  } else if (host_.has_frames(*session_) || upgrading_) {
    deliver(/*final=*/false);  // while upgrading, at once: a noop if nothing else
  }
}

void EngineIoPollingSession::post(std::shared_ptr<EngineIoAnswer> answer, std::size_t answer_shard,
                                  std::string body) {
  if (ended_) {
    post_to_answer(std::move(answer), answer_shard, [](EngineIoAnswer& a) { a.refuse(EngineIoError::unknown_sid); });
    return;
  }
  // A client sends at most max_message_bytes per POST (the open packet's
  // maxPayload), one oversized packet aside; twice that is no client's.
  const std::size_t limit = 2 * host_.session_settings().max_message_bytes;
  if (body.size() > limit) {
    post_to_answer(std::move(answer), answer_shard, [](EngineIoAnswer& a) { a.too_large(); });
    if (!closing_) session_->close(CloseCode::message_too_large, "payload too large");
    return;
  }
  // Once closed, what the client still says is dropped: it learns of the
  // close from its next GET, which an error here would keep it from reading.
  if (!closing_) {
    last_post_ = Clock::now();
    for (std::string_view packet : split_engineio_payload(body, polling_.separator())) {
      if (session_->closing()) break;
      host_.handle_message(*session_, packet);
    }
  }
  bump(polling_.counters().engineio_posts);
  post_to_answer(std::move(answer), answer_shard, [](EngineIoAnswer& a) { a.text(200, "text/html", "ok"); });
}

void EngineIoPollingSession::poll_ended(const std::shared_ptr<EngineIoAnswer>& answer) {
  if (ended_) return;
  if (waiter_ == answer || !answer->complete()) {
    // Its connection ended first, with the packets it was given or before
    // it had any: Engine.IO's "poll connection closed prematurely".
    if (waiter_ == answer) waiter_.reset();
    end();
    return;
  }
  if (session_) host_.frames_written(*session_, answer->packet_bytes());
}

void EngineIoPollingSession::shut_down() {
  if (ended_) return;
  closing_ = true;
  end();
}

void EngineIoPollingSession::frames_ready() {
  if (frames_posted_ || ended_) return;
  frames_posted_ = true;
  asio::post(host_.shard_context(shard_), [self = shared_from_this()] {
    self->frames_posted_ = false;
    if (!self->ended_) self->on_frames();
  });
}

void EngineIoPollingSession::close(CloseCode, std::string_view) {
  asio::post(host_.shard_context(shard_), [self = shared_from_this()] {
    if (!self->ended_) self->on_closed();
  });
}

void EngineIoPollingSession::on_frames() {
  if (waiter_ && !closing_ && host_.has_frames(*session_)) deliver(/*final=*/false);
}

void EngineIoPollingSession::on_closed() {
  if (closing_) return;
  closing_ = true;
  closed_at_ = Clock::now();
  if (waiter_) {
    end();  // answered with the rest and "1"
    return;
  }
  // The next GET gets the rest, if it comes within the liveness window; the
  // broker need not keep the session until then.
  while (host_.has_frames(*session_)) host_.take_frames(*session_, leftover_);
  release_session();
}

void EngineIoPollingSession::release_session() {
  if (!session_) return;
  host_.close_session(*session_);
  session_.reset();
}

void EngineIoPollingSession::deliver(bool final) {
  std::shared_ptr<EngineIoAnswer> answer = std::move(waiter_);
  waiter_.reset();
  last_get_ = Clock::now();
  std::vector<FramePtr> frames;
  const std::size_t budget = std::max<std::size_t>(polling_.settings().max_poll_response_bytes, 1);
  std::size_t bytes = 0;
  if (!session_) frames = std::move(leftover_);
  while (session_ && bytes < budget && host_.has_frames(*session_)) {
    const std::size_t from = frames.size();
    host_.take_frames(*session_, frames, budget - bytes);
    for (std::size_t i = from; i < frames.size(); ++i) bytes += frames[i]->bytes.size();
  }
  // An empty packet would read as a parser error to the client.
  frames.erase(std::remove_if(frames.begin(), frames.end(), [](const FramePtr& f) { return f->bytes.empty(); }),
               frames.end());
  // While the client upgrades, its polling loop must come to an end (it
  // pauses before it sends "5"): every GET is answered at once.
  if (frames.empty() && upgrading_ && !final) {
    auto noop = std::make_shared<Frame>();
    noop->bytes = "6";
    noop->kind = Frame::Kind::notice;
    frames.push_back(std::move(noop));
  }
  // The close packet ends the last answer only when it carries nothing
  // else. Behind a Socket.IO DISCONNECT ("41") in the same payload,
  // socket.io-client may take the close for a lost transport and reconnect,
  // which the DISCONNECT said not to; alone, the DISCONNECT closes the
  // client itself, and a GET that still comes finds the sid unknown.
  const bool close_packet = final && frames.empty();
  bump(polling_.counters().engineio_polls);
  post_to_answer(std::move(answer), waiter_shard_,
                 [frames = std::move(frames), separator = polling_.separator(), close_packet](EngineIoAnswer& a) mutable {
                   a.packets(std::move(frames), std::move(separator), close_packet);
                 });
}

// The client moved to the WebSocket it probed: its waiting GET is released
// with a noop (its polling loop then stops), and the session leaves polling
// without being closed; the WebSocket rebinds it.
void EngineIoPollingSession::probed() {
  if (ended_ || closing_) return;
  upgrading_ = true;
  if (waiter_) deliver(/*final=*/false);
}

std::shared_ptr<Session> EngineIoPollingSession::hand_over() {
  if (ended_ || closing_ || !session_) return nullptr;
  auto keep = shared_from_this();  // the registry may hold the last reference
  upgrading_ = true;
  if (waiter_) deliver(/*final=*/false);
  ended_ = true;
  timer_.cancel();
  leftover_.clear();
  std::shared_ptr<Session> session = std::move(session_);
  session_.reset();
  polling_.forget(shard_, sid_);
  return session;
}

void EngineIoPollingSession::end() {
  if (ended_) return;
  auto keep = shared_from_this();  // the registry may hold the last reference
  if (waiter_) deliver(/*final=*/true);
  ended_ = true;
  timer_.cancel();
  leftover_.clear();
  release_session();
  polling_.forget(shard_, sid_);
}

void EngineIoPollingSession::arm_timer() {
  const auto window = polling_.liveness_window();
  Clock::time_point due = closed_at_ + window;
  if (!closing_) {
    due = next_heartbeat_;
    if (heartbeats_) due = std::min(due, last_post_ + window);
    if (!waiter_) due = std::min(due, last_get_ + window);
  }
  timer_.expires_at(due);
  timer_.async_wait([self = shared_from_this()](const std::error_code& ec) {
    if (!ec && !self->ended_) self->on_timer();
  });
}

void EngineIoPollingSession::on_timer() {
  const auto now = Clock::now();
  const auto window = polling_.liveness_window();
  if (closing_) {
    if (now >= closed_at_ + window) {
      end();  // its last GET never came
      return;
    }
  } else if ((!waiter_ && now >= last_get_ + window) || (heartbeats_ && now >= last_post_ + window)) {
    end();  // the client is gone: no GET, or no answer to the heartbeats
    return;
  } else if (now >= next_heartbeat_) {
    heartbeats_ = host_.heartbeat(*session_);
    next_heartbeat_ = now + polling_.ping_interval();
  }
  arm_timer();
}

}  // namespace detail
LIVECAST_END_NAMESPACE
