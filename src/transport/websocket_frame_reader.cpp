#include "websocket_frame_reader.hpp"

#include <websocketpp/close.hpp>
#include <websocketpp/frame.hpp>
#include <websocketpp/utf8_validator.hpp>

#include <algorithm>

LIVECAST_BEGIN_NAMESPACE
namespace detail {

namespace {

namespace opcode = websocketpp::frame::opcode;
namespace limits = websocketpp::frame::limits;
namespace status = websocketpp::close::status;

bool valid_utf8(std::string_view text) noexcept {
  std::uint32_t state = websocketpp::utf8_validator::utf8_accept;
  std::uint32_t codepoint = 0;
  for (const char c : text)
    if (websocketpp::utf8_validator::decode(&state, &codepoint, static_cast<std::uint8_t>(c)) ==
        websocketpp::utf8_validator::utf8_reject)
      return false;
  return state == websocketpp::utf8_validator::utf8_accept;
}

}  // namespace

std::size_t WebSocketFrameReader::heap_bytes() const noexcept {
  // A default-constructed std::string's capacity is its inline buffer.
  if (!payloads_) return 0;
  const std::size_t inline_capacity = std::string().capacity();
  std::size_t n = sizeof(Payloads);
  if (payloads_->message.capacity() > inline_capacity) n += payloads_->message.capacity();
  if (payloads_->control.capacity() > inline_capacity) n += payloads_->control.capacity();
  return n;
}

std::uint16_t WebSocketFrameReader::close_code(std::string_view payload) noexcept {
  if (payload.size() < 2) return status::no_status;
  return static_cast<std::uint16_t>((static_cast<unsigned char>(payload[0]) << 8) |
                                    static_cast<unsigned char>(payload[1]));
}

WebSocketFrameReader::Event WebSocketFrameReader::fail(std::uint16_t code, const char* reason) {
  error_code_ = code;
  error_reason_ = reason;
  // Nothing more is read: what was assembled is of no use.
  payloads_.reset();
  return Event::error;
}

WebSocketFrameReader::Event WebSocketFrameReader::read(std::string_view& input, std::size_t max_message_bytes) {
  if (failed()) {
    input = {};
    return Event::error;
  }
  while (true) {
    if (!in_payload_) {
      if (input.empty()) return Event::none;
      // The header: two bytes say how long the rest of it is.
      const std::size_t take = std::min<std::size_t>(header_need_ - header_have_, input.size());
      std::copy_n(input.data(), take, header_.data() + header_have_);
      header_have_ = static_cast<std::uint8_t>(header_have_ + take);
      input.remove_prefix(take);
      if (header_have_ < header_need_) return Event::none;
      if (header_need_ == 2) {
        const std::uint8_t length_code = header_[1] & 0x7F;
        const std::uint8_t extended = length_code == websocketpp::frame::payload_size_code_16bit   ? 2
                                      : length_code == websocketpp::frame::payload_size_code_64bit ? 8
                                                                                      : 0;
        // A client's frame without a masking key is refused before its
        // length is even read (RFC 6455 5.1).
        if (!(header_[1] & 0x80)) return fail(status::protocol_error, "client frames must be masked");
        header_need_ = static_cast<std::uint8_t>(2 + extended + 4);
        continue;
      }
      const Event started = start_frame(max_message_bytes);
      if (started == Event::error) return started;
      in_payload_ = true;
    }
    read_payload(input);
    if (failed()) return Event::error;
    if (remaining_ > 0) return Event::none;
    in_payload_ = false;
    header_have_ = 0;
    header_need_ = 2;
    const Event finished = finish_frame();
    if (finished != Event::none) return finished;
  }
}

// The whole header is in header_: check it against the rules and set up the
// payload's destination.
WebSocketFrameReader::Event WebSocketFrameReader::start_frame(std::size_t max_message_bytes) {
  const std::uint8_t b0 = header_[0];
  const bool fin = (b0 & 0x80) != 0;
  const auto op = static_cast<opcode::value>(b0 & 0x0F);
  // No extension is negotiated, so no RSV bit has a meaning.
  if (b0 & 0x70) return fail(status::protocol_error, "reserved bits set");
  if (opcode::reserved(op)) return fail(status::protocol_error, "reserved opcode");
  const std::uint8_t length_code = header_[1] & 0x7F;
  std::uint64_t length = length_code;
  std::size_t key_at = 2;
  if (length_code == websocketpp::frame::payload_size_code_16bit) {
    length = (std::uint64_t{header_[2]} << 8) | header_[3];
    if (length <= limits::payload_size_basic) return fail(status::protocol_error, "length not minimally encoded");
    key_at = 4;
  } else if (length_code == websocketpp::frame::payload_size_code_64bit) {
    length = 0;
    for (std::size_t i = 0; i < 8; ++i) length = (length << 8) | header_[2 + i];
    if (length >> 63) return fail(status::protocol_error, "length with its top bit set");
    if (length <= limits::payload_size_extended) return fail(status::protocol_error, "length not minimally encoded");
    key_at = 10;
  }
  // The key moves to the front of header_, where read_payload finds it.
  std::copy_n(header_.data() + key_at, 4, header_.data());
  mask_offset_ = 0;
  remaining_ = length;
  frame_opcode_ = static_cast<std::uint8_t>(op);
  frame_fin_ = fin;
  if (opcode::is_control(op)) {
    if (!fin) return fail(status::protocol_error, "fragmented control frame");
    if (length > limits::payload_size_basic) return fail(status::protocol_error, "control frame too large");
    std::string& control = payloads().control;
    control.clear();
    control.reserve(static_cast<std::size_t>(length));
    return Event::none;
  }
  if (op == opcode::continuation) {
    if (message_opcode_ == 0) return fail(status::protocol_error, "continuation outside a message");
  } else {
    if (message_opcode_ != 0) return fail(status::protocol_error, "new message inside a fragmented one");
    message_opcode_ = static_cast<std::uint8_t>(op);
    utf8_state_ = websocketpp::utf8_validator::utf8_accept;
    utf8_codepoint_ = 0;
  }
  // As websocketpp counts it: the message so far plus this whole frame,
  // refused at the header, before any of its payload is held.
  std::string& message = payloads().message;
  if (length > max_message_bytes || message.size() + length > max_message_bytes)
    return fail(status::message_too_big, "message too big");
  message.reserve(message.size() + static_cast<std::size_t>(length));
  return Event::none;
}

void WebSocketFrameReader::read_payload(std::string_view& input) {
  const std::size_t take = static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, input.size()));
  if (take == 0) return;
  const bool control = opcode::is_control(static_cast<opcode::value>(frame_opcode_));
  std::string& out = control ? payloads_->control : payloads_->message;
  const std::size_t start = out.size();
  out.resize(start + take);
  for (std::size_t i = 0; i < take; ++i) {
    out[start + i] = static_cast<char>(static_cast<std::uint8_t>(input[i]) ^ header_[mask_offset_]);
    mask_offset_ = static_cast<std::uint8_t>((mask_offset_ + 1) & 3);
  }
  input.remove_prefix(take);
  remaining_ -= take;
  // Text is checked as it arrives, so an invalid message fails at its first
  // bad byte rather than once it is whole.
  if (!control && message_opcode_ == opcode::text) {
    for (std::size_t i = start; i < out.size(); ++i) {
      if (websocketpp::utf8_validator::decode(&utf8_state_, &utf8_codepoint_, static_cast<std::uint8_t>(out[i])) ==
          websocketpp::utf8_validator::utf8_reject) {
        fail(status::invalid_payload, "a text message must be UTF-8");
        return;
      }
    }
  }
}

WebSocketFrameReader::Event WebSocketFrameReader::finish_frame() {
  switch (static_cast<opcode::value>(frame_opcode_)) {
    case opcode::ping:
      return Event::ping;
    case opcode::pong:
      return Event::pong;
    case opcode::close: {
      const std::string& payload = payloads_->control;
      if (payload.size() == 1) return fail(status::protocol_error, "close payload of one byte");
      if (payload.size() >= 2) {
        const std::uint16_t code = close_code(payload);
        if (status::reserved(code) || status::invalid(code)) return fail(status::protocol_error, "invalid close code");
        if (!valid_utf8(std::string_view(payload).substr(2)))
          return fail(status::invalid_payload, "a close reason must be UTF-8");
      }
      return Event::close;
    }
    default:
      break;
  }
  if (!frame_fin_) return Event::none;  // more fragments to come
  // The last fragment: the text must end on a whole character.
  const auto op = static_cast<opcode::value>(message_opcode_);
  message_opcode_ = 0;
  if (op == opcode::text && utf8_state_ != websocketpp::utf8_validator::utf8_accept)
    return fail(status::invalid_payload, "a text message must be UTF-8");
  return op == opcode::text ? Event::text : Event::binary;
}

}  // namespace detail
LIVECAST_END_NAMESPACE
