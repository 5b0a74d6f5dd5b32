// The frames a client sends on an open WebSocket connection, read without
// I/O: bytes in, messages and control frames out, with RFC 6455's rules for
// a server (section 5): every client frame masked, no RSV bit (no extension
// is ever negotiated), control frames of at most 125 bytes and never
// fragmented, continuation frames only inside a fragmented message, payload
// lengths in their shortest encoding, a message no larger than the session's
// limit, text messages UTF-8 (checked as the bytes arrive, across fragments),
// close frames with a valid code and a UTF-8 reason.
//
// Why our own and not websocketpp's processor: an open connection then needs
// no websocketpp connection object (2.5 KB with its processor, buffers and
// handlers). websocketpp's framing definitions (opcodes, close codes) and its
// UTF-8 validator are still what the rules are written with (the .cpp).
//
// Memory: while no frame is partly read the reader holds no heap memory, and
// inline only a few integers and a partial header (14 bytes). A message
// being assembled, and a control frame's payload, live in payloads_, made
// for them and let go once take_message() and take_control() moved them out.
//
// Threads: one reader per connection, used on its shard's thread only.
#pragma once

#include <livecast/config.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

LIVECAST_BEGIN_NAMESPACE
namespace detail {

class WebSocketFrameReader {
 public:
  enum class Event : std::uint8_t {
    none,    // every byte was read; nothing is complete yet
    text,    // a whole text message: take_message()
    binary,  // a whole binary message: take_message()
    ping,    // take_control(): the payload, for the pong
    pong,
    close,   // take_control(): the close frame's payload, valid (close_code())
    error,   // the client broke a rule: fail the connection with error_code()
  };

  // Reads bytes from the front of `input` until an event is complete, or
  // until `input` is used up (Event::none). The bytes after an event stay in
  // `input` for the next call. `max_message_bytes`: the largest message
  // taken (its size counts from the first fragment's header on); beyond, an
  // error with 1009. After an error nothing more is read.
  Event read(std::string_view& input, std::size_t max_message_bytes);

  // The message of the last text or binary event; the reader keeps none of it.
  std::string take_message() noexcept {
    std::string out;
    if (!payloads_) return out;
    out.swap(payloads_->message);
    release_if_empty();
    return out;
  }
  // The payload of the last control frame (ping, pong or close); the reader
  // keeps none of it.
  std::string take_control() noexcept {
    std::string out;
    if (!payloads_) return out;
    out.swap(payloads_->control);
    release_if_empty();
    return out;
  }
  // The status code of a close frame's payload (as take_control() returns
  // it); 1005 (no status) when it carries none.
  static std::uint16_t close_code(std::string_view payload) noexcept;

  bool failed() const noexcept { return error_code_ != 0; }
  // After an error: the close code to fail the connection with (1002
  // protocol error, 1007 invalid payload, 1009 too big) and why.
  std::uint16_t error_code() const noexcept { return error_code_; }
  const char* error_reason() const noexcept { return error_reason_; }

  // A fragmented message is open (its final fragment has not come).
  bool inside_message() const noexcept { return message_opcode_ != 0; }
  // Heap bytes the reader holds (both strings' capacity beyond their inline buffer).
  std::size_t heap_bytes() const noexcept;

 private:
  static constexpr std::size_t max_header_bytes = 14;

  struct Payloads {
    std::string message;  // the data message being assembled
    std::string control;  // the control frame being read, or last read
  };

  Payloads& payloads() {
    if (!payloads_) payloads_ = std::make_unique<Payloads>();
    return *payloads_;
  }
  void release_if_empty() noexcept {
    if (payloads_ && payloads_->message.empty() && payloads_->control.empty() && message_opcode_ == 0)
      payloads_.reset();
  }
  Event fail(std::uint16_t code, const char* reason);
  Event start_frame(std::size_t max_message_bytes);
  void read_payload(std::string_view& input);
  Event finish_frame();

  std::unique_ptr<Payloads> payloads_;  // only while a payload is read or not yet taken
  std::uint64_t remaining_ = 0;  // payload bytes of the current frame still to come
  const char* error_reason_ = nullptr;
  std::uint32_t utf8_state_ = 0;  // websocketpp::utf8_validator's decoder over a text message
  std::uint32_t utf8_codepoint_ = 0;
  std::array<std::uint8_t, max_header_bytes> header_{};
  std::uint16_t error_code_ = 0;
  std::uint8_t header_have_ = 0;  // bytes of the current header read so far
  std::uint8_t header_need_ = 2;  // its size, once the second byte told it
  std::uint8_t mask_offset_ = 0;  // the masking key's byte for the next payload byte
  std::uint8_t frame_opcode_ = 0;
  std::uint8_t message_opcode_ = 0;  // text or binary while a message is open; 0 otherwise
  bool in_payload_ = false;
  bool frame_fin_ = false;
};

}  // namespace detail
LIVECAST_END_NAMESPACE
