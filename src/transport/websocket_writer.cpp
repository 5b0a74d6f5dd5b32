#include "websocket_writer.hpp"

#include "websocket_frames.hpp"
#include "websocket_shard.hpp"

#include <livecast/error.hpp>

#include <websocketpp/utf8_validator.hpp>

#include <asio/post.hpp>

#include <algorithm>
#include <utility>

LIVECAST_BEGIN_NAMESPACE
namespace detail::ws {

ShardWriter::ShardWriter(ShardServer& shard, SessionHost& host, std::shared_ptr<const WebSocketSettings> settings,
                         asio::io_context& context)
    : shard_(shard), host_(host), settings_(std::move(settings)), context_(context), flush_timer_(context) {
  const SessionSettings& session = host_.session_settings();
  // Frames handed to the socket count against the session's byte budget;
  // keep half of it for the SendQueue so its slow-consumer policy can act.
  high_water_ = std::min<std::size_t>(64 * 1024, std::max<std::size_t>(session.send_queue_bytes / 2, 1));
}

void ShardWriter::schedule_flush(LeanConnection& con) {
  if (con.flush_scheduled || stopped_) return;
  con.flush_scheduled = true;
  dirty_.push_back(shard_.shared(con));
  post_flush();
}

void ShardWriter::stop() {
  stopped_ = true;
  flush_timer_.cancel();
  dirty_.clear();
}

void ShardWriter::close_socket(LeanConnection& con) {
  if (!con.stream.is_open()) return;
  std::error_code ignored;
  con.stream.close(ignored);  // cancels the pending wait and write, which release their references
  con.close_when_written = false;
  if (!con.writes) return;
  con.writes->outgoing.clear();
  // A write in flight still reads its buffers until it completes (aborted).
  if (!con.write_in_flight) con.writes.reset();
}

void ShardWriter::queue_owned(LeanConnection& con, std::string bytes) {
  if (!con.stream.is_open()) return;
  con.buffered += bytes.size();
  con.owned_buffered += bytes.size();
  con.write_queue().outgoing.push_back(OutgoingChunk::of_bytes(std::move(bytes)));
  if (con.session) {
    // Pongs count in the session's byte budget like frames, so that its
    // slow-consumer policy sees them. They cannot be dropped, so a peer that
    // pings without reading is cut off once they pile up: without this, each
    // ping it sends would grow our memory by a pong.
    host_.set_in_flight(*con.session, con.buffered);
    if (con.owned_buffered > max_owned_bytes && !con.session->closing())
      con.session->close(CloseCode::slow_consumer, "control frames not read");  // posts: no re-entry here
  }
  start_write(con);
}

// `already_written`: bytes at the front of the stream the kernel took
// before (write_directly); they are skipped. With `socket_full` (the socket
// just took less than it was given) no immediate write is tried.
void ShardWriter::start_write(LeanConnection& con, std::size_t already_written, bool socket_full) {
  if (con.write_in_flight || !con.has_outgoing() || !con.stream.is_open()) return;
  WriteQueue& q = *con.writes;
  q.writing.swap(q.outgoing);
  q.write_buffers.clear();
  for (const OutgoingChunk& chunk : q.writing) chunk.append_buffers(q.write_buffers);
  drop_written(q.write_buffers, already_written);
  if (con.stream.is_tls()) {
    // TLS: Asio's SSL stream does the writing (ByteStream::async_write).
    con.write_in_flight = true;
    con.stream.async_write(BufferView{&q.write_buffers},
                           [con = shard_.shared(con)](const std::error_code& ec, std::size_t) {
                             con->shard->writer().on_written(*con, ec);
                           });
    return;
  }
  if (socket_full)
    wait_writable(con);
  else
    write_some(con);
}

// Plain TCP: one non-blocking sendmsg of what is left (ByteStream::
// try_write_some, up to IOV_MAX buffers), then, while the kernel's buffer
// is full, a wait for room and another. Most writes fit at once: done,
// with no operation, handler or completion queued. Asio's async_write
// would hand the kernel 64 buffers per call, 32 frames of a backlog.
void ShardWriter::write_some(LeanConnection& con) {
  WriteQueue& q = *con.writes;
  std::error_code ec;
  const std::size_t written = con.stream.try_write_some(BufferView{&q.write_buffers}, ec);
  if (ec == asio::error::would_block) {
    wait_writable(con);
    return;
  }
  if (ec) {
    // Reported from a handler: this may run inside websocketpp's own
    // write (queue_owned, during the handshake), where ending the
    // connection is not allowed.
    con.write_in_flight = true;
    asio::post(context_, [con = shard_.shared(con), ec] { con->shard->writer().on_written(*con, ec); });
    return;
  }
  drop_written(q.write_buffers, written);
  if (q.write_buffers.empty()) {
    write_done(con);
    return;
  }
  wait_writable(con);
}

void ShardWriter::wait_writable(LeanConnection& con) {
  con.write_in_flight = true;
  con.stream.socket().async_wait(asio::socket_base::wait_write, [con = shard_.shared(con)](const std::error_code& ec) {
    ShardWriter& writer = con->shard->writer();
    if (ec || !con->stream.is_open()) {
      writer.on_written(*con, ec ? ec : make_error_code(asio::error::operation_aborted));
      return;
    }
    con->write_in_flight = false;
    writer.write_some(*con);
  });
}

void ShardWriter::on_written(LeanConnection& con, const std::error_code& ec) {
  con.write_in_flight = false;
  if (ec) {
    release_written(con);
    if (ec == asio::error::operation_aborted) return;
    shard_.end(con);
    close_socket(con);
    return;
  }
  write_done(con);
}

// Called with no write in flight.
void ShardWriter::release_written(LeanConnection& con) {
  if (!con.writes) return;
  WriteQueue& q = *con.writes;
  for (const OutgoingChunk& chunk : q.writing) {
    con.buffered -= chunk.size();
    if (!chunk.frame) con.owned_buffered -= chunk.size();
  }
  q.writing.clear();
  q.write_buffers.clear();
  // Nothing more to write: an idle connection keeps no write state.
  if (q.outgoing.empty()) con.writes.reset();
}

// Everything in `writing` reached the kernel. Never ends the connection: it
// may run inside websocketpp's own write (queue_owned) during the handshake.
void ShardWriter::write_done(LeanConnection& con) {
  release_written(con);
  if (con.session) host_.set_in_flight(*con.session, con.buffered);
  if (con.has_outgoing()) {
    start_write(con);
  } else if (con.close_when_written) {
    std::error_code ignored;
    con.stream.shutdown_send();
    close_socket(con);
    return;
  }
  if (con.session && host_.has_frames(*con.session)) schedule_flush(con);
}

void ShardWriter::on_shutdown(LeanConnection& con) {
  if (con.abort_on_shutdown || !con.write_in_flight) {
    if (!con.abort_on_shutdown && !con.has_outgoing() && con.stream.is_open()) {
      std::error_code ignored;
      con.stream.shutdown_send();
    }
    if (con.abort_on_shutdown || !con.has_outgoing()) {
      close_socket(con);
      return;
    }
  }
  con.close_when_written = true;
  start_write(con);
}

void ShardWriter::post_flush() {
  if (flush_posted_) return;
  flush_posted_ = true;
  if (settings_->flush_delay.count() <= 0) {
    asio::post(context_, [self = shard_.shared_from_this()] { self->writer().flush_all(); });
    return;
  }
  flush_timer_.expires_after(settings_->flush_delay);
  flush_timer_.async_wait([self = shard_.shared_from_this()](const std::error_code& ec) {
    if (!ec) self->writer().flush_all();
  });
}

void ShardWriter::flush_all() {
  flush_posted_ = false;
  if (stopped_) return;
  flushing_.swap(dirty_);
  for (auto& con : flushing_) {
    con->flush_scheduled = false;
    flush(*con);
  }
  flushing_.clear();
}

// Moves queued frames to the socket while less than the high water mark
// is on its way; everything moved in one pass leaves in one gathered
// write. The rest stays in the SendQueue, under its policy.
void ShardWriter::flush(LeanConnection& con) {
  if (!con.session || con.phase != LeanConnection::Phase::open || !con.stream.is_open())
    return;
  Session& session = *con.session;
  if (!con.write_in_flight && !con.has_outgoing() && write_directly(con, session)) return;
  while (host_.has_frames(session) && con.buffered < high_water_) {
    take_frames(session, high_water_ - con.buffered);
    move_taken_to_outgoing(con);
  }
  host_.set_in_flight(session, con.buffered);
  start_write(con);
}

void ShardWriter::move_taken_to_outgoing(LeanConnection& con) {
  if (taken_.empty()) return;
  std::vector<OutgoingChunk>& outgoing = con.write_queue().outgoing;
  for (FramePtr& frame : taken_) {
    outgoing.push_back(OutgoingChunk::of_frame(std::move(frame)));
    con.buffered += outgoing.back().size();
  }
  taken_.clear();
}

// The common case, a connection with nothing on its way: the queued frames
// go from the SendQueue to the socket in one sendmsg through this shard's
// scratch buffers, touching none of the connection's own write state.
// When the kernel does not take everything, the frames go to the
// connection's outgoing stream and what was taken is skipped there.
bool ShardWriter::write_directly(LeanConnection& con, Session& session) {
  take_frames(session, high_water_);
  scratch_headers_.resize(taken_.size());
  scratch_buffers_.clear();
  std::size_t total = 0;
  for (std::size_t i = 0; i < taken_.size(); ++i) {
    const FramePtr& frame = taken_[i];
    std::array<char, 10>& header = scratch_headers_[i];
    const std::uint8_t header_size = text_frame_header(header, frame->bytes.size());
    scratch_buffers_.emplace_back(header.data(), header_size);
    scratch_buffers_.emplace_back(frame->bytes.data(), frame->bytes.size());
    total += header_size + frame->bytes.size();
  }
  std::error_code ec;
  std::size_t written = total == 0 ? 0 : con.stream.try_write_some(BufferView{&scratch_buffers_}, ec);
  if (ec) written = 0;  // would_block; an error surfaces on the async path
  if (written == total) {
    taken_.clear();
    host_.set_in_flight(session, con.buffered);
    if (host_.has_frames(session)) schedule_flush(con);
    return true;
  }
  // The rest waits in the connection's stream, behind what was written.
  move_taken_to_outgoing(con);
  host_.set_in_flight(session, con.buffered);
  start_write(con, written, /*socket_full=*/true);
  return true;
}

// Text frames must be UTF-8. A publication's frame is by construction: its
// topic and payload were validated when published (or, from Redis, when
// received), so only the rare others (replies, errors) are checked here,
// and the per-delivery path does no work for it.
// Takes up to `max_bytes` of frames from the queue into taken_, leaving
// out (and reporting) any that cannot go into a text frame.
void ShardWriter::take_frames(Session& session, std::size_t max_bytes) {
  host_.take_frames(session, taken_, max_bytes);
  taken_.erase(std::remove_if(taken_.begin(), taken_.end(), [this](const FramePtr& f) { return !valid_utf8(f); }),
               taken_.end());
}

bool ShardWriter::valid_utf8(const FramePtr& frame) {
  if (frame->is_publication()) return true;
  const bool valid = websocketpp::utf8_validator::validate(frame->bytes);
  if (!valid) host_.report_error("dropped a frame that is not valid UTF-8", make_error_code(Errc::invalid_payload));
  return valid;
}

}  // namespace detail::ws
LIVECAST_END_NAMESPACE
