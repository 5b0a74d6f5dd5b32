// An open WebSocket connection's side of the shard (ShardServer's members
// for it): the client's frames as WebSocketFrameReader reads them, messages
// to the broker, pings answered, the close handshake, the end of every
// connection, and the session's calls (LeanConnection).
#include "websocket_shard.hpp"

#include "engineio.hpp"

#include <livecast/error.hpp>

#include <asio/post.hpp>

#include <chrono>
#include <utility>

LIVECAST_BEGIN_NAMESPACE
namespace detail::ws {

using Event = WebSocketFrameReader::Event;

void ShardServer::read_frames(LeanConnection& con, std::string_view bytes) {
  const std::size_t max_message_bytes = host_.session_settings().max_message_bytes;
  while (con.phase == LeanConnection::Phase::open || con.phase == LeanConnection::Phase::closing) {
    const Event event = con.reader.read(bytes, max_message_bytes);
    switch (event) {
      case Event::none:
        return;
      case Event::text:
      case Event::binary:
        on_message(con, event, con.reader.take_message());
        break;
      case Event::ping: {
        const std::string payload = con.reader.take_control();
        con.last_activity = std::chrono::steady_clock::now();
        // Answered while open, as websocketpp did; a pong counts in the
        // session's byte budget (ShardWriter::queue_owned).
        if (con.phase == LeanConnection::Phase::open) writer_.queue_owned(con, server_frame(pong_opcode, payload));
        break;
      }
      case Event::pong:
        (void)con.reader.take_control();
        con.last_activity = std::chrono::steady_clock::now();
        break;
      case Event::close:
        on_close_frame(con, con.reader.take_control());
        return;
      case Event::error:
        on_frame_error(con);
        return;
    }
  }
}

void ShardServer::on_close_frame(LeanConnection& con, std::string payload) {
  // The client's answer to ours: the close handshake is over.
  if (con.phase == LeanConnection::Phase::open) {
    // The client closes: its code and reason go back to it (none if it
    // sent none), then the connection ends once that is written.
    con.last_activity = std::chrono::steady_clock::now();
    writer_.queue_owned(con, server_frame(close_opcode, payload));
  }
  end(con);
}

// The client broke a framing rule: fail the connection with the reader's
// code (1002, 1007, or 1009 for a message over max_message_bytes), as
// websocketpp's processor errors did, and read nothing more.
void ShardServer::on_frame_error(LeanConnection& con) {
  if (con.phase != LeanConnection::Phase::open) {
    end(con);
    return;
  }
  if (con.reader.error_code() == websocketpp::close::status::message_too_big && con.session)
    host_.count_error(Errc::message_too_large);
  send_close(con, con.reader.error_code(), con.reader.error_reason());
}

void ShardServer::send_close(LeanConnection& con, std::uint16_t code, std::string_view reason) {
  con.phase = LeanConnection::Phase::closing;
  con.last_activity = std::chrono::steady_clock::now();
  writer_.queue_owned(con, close_frame(code, reason));
}

void ShardServer::on_upgrade_message(LeanConnection& con, const std::string& message) {
  if (message == "2probe") {
    // Its bytes join the outgoing stream like a pong's.
    writer_.queue_owned(con, server_frame(text_opcode, "3probe"));
    con.pending->upgrade_from->probed();
    return;
  }
  std::shared_ptr<Session> session;
  if (message == "5") session = con.pending->upgrade_from->hand_over();
  con.pending.reset();
  if (!session) {
    close_connection(con, message == "5" ? CloseCode::going_away : CloseCode::protocol_error,
                     message == "5" ? "the polling session ended" : "expected the upgrade probe");
    return;
  }
  con.session = std::move(session);
  host_.rebind(*con.session, con);
}

void ShardServer::on_message(LeanConnection& con, Event kind, std::string message) {
  if (con.phase != LeanConnection::Phase::open) return;  // closing: the client's last words are dropped
  con.last_activity = std::chrono::steady_clock::now();
  if (!con.session && con.pending && con.pending->upgrade_from && kind == Event::text) {
    on_upgrade_message(con, message);
    return;
  }
  if (!con.session || con.session->closing()) return;
  if (kind != Event::text) {
    if (host_.protocol(con.protocol).drops_binary_messages()) {
      host_.count_error(Errc::bad_request);
      return;
    }
    con.session->close(CloseCode::unsupported_data, "binary frames are not supported");
    return;
  }
  // The reader checked the UTF-8, to the message's last character.
  host_.handle_message(*con.session, message);
}

// --- the end ---

void ShardServer::on_terminated(LeanConnection& con) {
  con.phase = LeanConnection::Phase::ended;
  con.last_activity = std::chrono::steady_clock::now();
  if (con.handshake) {
    con.handshake->lean = nullptr;  // its handlers do nothing from here on
    con.handshake.reset();          // a caller up the stack still holds it while it runs
  }
  con.reader = WebSocketFrameReader();
  unlist(con);
  admission_.leave_limits(con);
  con.pending.reset();
  if (con.counted) {
    con.counted = false;
    open_.fetch_sub(1, std::memory_order_relaxed);
  }
  // Bytes still on their way (a close frame to a slow reader) get
  // close_timeout before the socket is closed regardless.
  if (con.stream.is_open() && !stopped_) housekeeping_.linger(con.shared_from_this());
  if (!con.session) return;
  host_.close_session(*con.session);
  con.session.reset();
}

void ShardServer::unlist(LeanConnection& con) {
  if (con.slot == LeanConnection::no_slot) return;
  const std::uint32_t slot = con.slot;
  con.slot = LeanConnection::no_slot;
  if (slot + 1 != connections_.size()) {
    connections_[slot] = std::move(connections_.back());
    connections_[slot]->slot = slot;
  }
  connections_.pop_back();
}

// --- the session's side of the connection ---

void LeanConnection::frames_ready() {
  // Pushes before the flush see what is on its way to the socket.
  if (session) shard->host().set_in_flight(*session, buffered);
  shard->writer().schedule_flush(*this);
}

void LeanConnection::close(CloseCode code, std::string_view reason) {
  // Called from inside broker code: close on a later turn, so that the end
  // of the connection never re-enters the broker.
  asio::post(shard->context(), [con = shard->shared(*this), code, reason = std::string(reason)] {
    con->shard->close_connection(*con, code, reason);
  });
}

}  // namespace detail::ws
LIVECAST_END_NAMESPACE
