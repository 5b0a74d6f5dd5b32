// Fuzzes WebSocketFrameReader, the reader of an open connection's client
// frames (websocket_frame_reader.hpp): the input's bytes, fed in fuzzed
// chunks, and fed again whole to a second reader.
//
// Input layout (FuzzedDataProvider takes the parameters from the end), the
// same as fuzz_websocket's, so that the two share seeds:
//   <bytes> <chunk sizes> <chunk count> <mode>
// mode bits 0-1 pick max_message_bytes (64 KiB, 1 KiB, 16 bytes, 0).
//
// Properties: every call makes progress (consumes a byte or completes an
// event); the events do not depend on how the bytes were split; a message is
// at most max_message_bytes, and text is valid UTF-8; control payloads are at
// most 125 bytes and a close frame's is empty or a valid code with a UTF-8
// reason; messages hold no more bytes than were received; after an error
// nothing more is read; an idle reader holds no heap memory; nothing leaks
// (LeakSanitizer).
#include "fuzz_check.hpp"

#include "transport/websocket_frame_reader.hpp"

#include <livecast/json.hpp>

#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

using livecast::detail::WebSocketFrameReader;
using Event = WebSocketFrameReader::Event;

namespace {

struct Seen {
  Event event;
  std::string payload;
  bool operator==(const Seen& o) const { return event == o.event && payload == o.payload; }
};

void check_event(const WebSocketFrameReader& reader, const Seen& seen, std::size_t max_message_bytes) {
  switch (seen.event) {
    case Event::text:
      FUZZ_CHECK(livecast::is_valid_utf8(seen.payload));
      [[fallthrough]];
    case Event::binary:
      FUZZ_CHECK(seen.payload.size() <= max_message_bytes);
      break;
    case Event::close:
      FUZZ_CHECK(seen.payload.size() != 1);
      if (seen.payload.size() >= 2) {
        const std::uint16_t code = WebSocketFrameReader::close_code(seen.payload);
        FUZZ_CHECK(code >= 1000 && code < 5000 && code != 1004 && code != 1005 && code != 1006 && code != 1015);
        FUZZ_CHECK(!(code >= 1016 && code <= 2999));
        FUZZ_CHECK(livecast::is_valid_utf8(std::string_view(seen.payload).substr(2)));
      }
      [[fallthrough]];
    case Event::ping:
    case Event::pong:
      FUZZ_CHECK(seen.payload.size() <= 125);
      break;
    case Event::error:
      FUZZ_CHECK(reader.failed());
      FUZZ_CHECK(reader.error_code() == 1002 || reader.error_code() == 1007 || reader.error_code() == 1009);
      FUZZ_CHECK(reader.heap_bytes() == 0);
      break;
    case Event::none:
      FUZZ_CHECK(false);
  }
  if (seen.event != Event::error && !reader.inside_message()) FUZZ_CHECK(reader.heap_bytes() == 0);
}

// Reads `input` in the given chunks (whole when there are none).
std::vector<Seen> read(std::string_view input, const std::vector<std::size_t>& chunks, std::size_t max_message_bytes) {
  WebSocketFrameReader reader;
  std::vector<Seen> seen;
  std::size_t next_chunk = 0;
  while (!input.empty()) {
    const std::size_t size = next_chunk < chunks.size() ? chunks[next_chunk++] : input.size();
    std::string_view piece = input.substr(0, size);
    input.remove_prefix(piece.size());
    while (!piece.empty()) {
      const std::size_t before = piece.size();
      const Event e = reader.read(piece, max_message_bytes);
      if (e == Event::none) {
        FUZZ_CHECK(piece.empty());
        break;
      }
      FUZZ_CHECK(piece.size() < before);  // an event completes on a byte of this call
      Seen s{e, {}};
      if (e == Event::text || e == Event::binary) s.payload = reader.take_message();
      if (e == Event::ping || e == Event::pong || e == Event::close) s.payload = reader.take_control();
      check_event(reader, s, max_message_bytes);
      seen.push_back(std::move(s));
      if (e == Event::error) {
        // Nothing more is read.
        std::string_view rest = piece.empty() ? input : piece;
        if (!rest.empty()) FUZZ_CHECK(reader.read(rest, max_message_bytes) == Event::error && rest.empty());
        return seen;
      }
    }
  }
  return seen;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
  FuzzedDataProvider provider(bytes, size);
  const std::uint8_t mode = provider.ConsumeIntegral<std::uint8_t>();
  std::vector<std::size_t> chunks(provider.ConsumeIntegralInRange<std::size_t>(0, 16));
  for (std::size_t& s : chunks) s = provider.ConsumeIntegralInRange<std::size_t>(1, 256);
  const std::string input = provider.ConsumeRemainingBytesAsString();
  static constexpr std::size_t limits[] = {64 * 1024, 1024, 16, 0};
  const std::size_t max_message_bytes = limits[mode & 3];

  const std::vector<Seen> chunked = read(input, chunks, max_message_bytes);
  const std::vector<Seen> whole = read(input, {}, max_message_bytes);
  FUZZ_CHECK(chunked == whole);
  std::size_t total = 0;
  for (const Seen& s : whole) total += s.payload.size();
  FUZZ_CHECK(total <= input.size());
  return 0;
}
