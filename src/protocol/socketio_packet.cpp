// The socket.io protocol's readers (socketio_packet.hpp). The JSON payloads
// are read as livecast.v1 reads its messages: one iterative SAX pass
// (no DOM, no recursion however deep the payload nests), strict UTF-8,
// numbers as the client wrote them; an event's arguments are streamed into a
// compact writer that refuses lone surrogate escapes.
#include "socketio_packet.hpp"

#include <rapidjson/error/en.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <charconv>
#include <cstring>
#include <system_error>
#include <utility>

LIVECAST_BEGIN_NAMESPACE
namespace detail {

namespace {

std::nullopt_t refuse(PacketError& error, Errc code, std::string message) {
  error = PacketError{code, std::move(message), std::nullopt};
  return std::nullopt;
}

bool fail(PacketError& error, Errc code, std::string message) {
  refuse(error, code, std::move(message));
  return false;
}

bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }

// Parses `json` with `handler`; false (and `error` set) when it is not one
// well-formed, UTF-8 JSON value.
template <class Handler>
bool parse_json(std::string_view json, Handler& handler, PacketError& error) {
  if (json.empty()) return fail(error, Errc::invalid_json, "not valid JSON: empty payload");
  // The reader takes a NUL byte for the end of input; a raw NUL is never JSON.
  if (std::memchr(json.data(), '\0', json.size()) != nullptr)
    return fail(error, Errc::invalid_json, "not valid JSON: raw NUL byte");
  rapidjson::MemoryStream stream(json.data(), json.size());
  rapidjson::Reader reader;
  // Numbers as text: see EventReader::RawNumber.
  constexpr unsigned flags =
      rapidjson::kParseIterativeFlag | rapidjson::kParseValidateEncodingFlag | rapidjson::kParseNumbersAsStringsFlag;
  if (rapidjson::ParseResult parsed = reader.Parse<flags>(stream, handler); parsed.IsError())
    return fail(error, Errc::invalid_json,
                std::string("not valid JSON: ") + rapidjson::GetParseError_En(parsed.Code()) + " at byte " +
                    std::to_string(parsed.Offset()));
  return true;
}

// A JSON number's text (already checked by the reader) as a non-negative
// integer that fits uint64; "1.0", "1e3" and "-1" are not.
std::optional<std::uint64_t> unsigned_integer(std::string_view text) noexcept {
  std::uint64_t u = 0;
  const char* const end = text.data() + text.size();
  if (auto [p, ec] = std::from_chars(text.data(), end, u); ec == std::errc() && p == end) return u;
  return std::nullopt;
}

// Only the kind of the root value matters (an ACK's payload is discarded).
struct RootKind : rapidjson::BaseReaderHandler<rapidjson::UTF8<>, RootKind> {
  bool seen = false;
  bool array = false;
  bool StartArray() {
    if (!seen) array = true;
    seen = true;
    return true;
  }
  bool Default() {
    seen = true;
    return true;
  }
};

// A CONNECT's payload: the root must be an object; its top-level "token".
class ConnectReader : public rapidjson::BaseReaderHandler<rapidjson::UTF8<>, ConnectReader> {
 public:
  bool root_is_object = true;
  ConnectPayload out;

  bool Default() { return value(nullptr, 0); }
  bool RawNumber(const char*, rapidjson::SizeType, bool) { return value(nullptr, 0); }
  bool String(const char* s, rapidjson::SizeType n, bool) { return value(s, n); }
  bool StartObject() { return start(true); }
  bool StartArray() { return start(false); }
  bool EndObject(rapidjson::SizeType) { return end(); }
  bool EndArray(rapidjson::SizeType) { return end(); }
  bool Key(const char* s, rapidjson::SizeType n, bool) {
    if (depth_ != 1) return true;
    const std::string_view key(s, n);
    next_ = key == "token" ? Next::token : key == "pid" ? Next::pid : key == "offset" ? Next::offset : Next::other;
    return true;
  }

 private:
  enum class Next { other, token, pid, offset };  // the top-level key whose value comes next

  // A repeated key replaces the earlier value, as in JavaScript; a value
  // that is not a string counts as none.
  bool value(const char* s, std::size_t n) {
    if (depth_ == 0) root_is_object = false;
    if (depth_ != 1) return true;
    std::string* field = next_ == Next::token ? &out.token : next_ == Next::pid ? &out.pid
                       : next_ == Next::offset ? &out.offset : nullptr;
    if (next_ == Next::token) out.has_token = s != nullptr;
    if (!field) return true;
    if (s) field->assign(s, n);
    else field->clear();
    return true;
  }
  bool start(bool object) {
    if (depth_ == 0 && !object) root_is_object = false;
    if (depth_ == 1) value(nullptr, 0);
    ++depth_;
    return true;
  }
  bool end() {
    --depth_;
    return true;
  }

  std::size_t depth_ = 0;
  Next next_ = Next::other;
};

// An EVENT's payload, `["name", ...args]`. It never stops the parse, so the
// whole text is checked as JSON before any shape error is reported.
// Depths: the root array's elements are at depth 1, the members of an
// object argument at 2, those of its "recover" object at 3.
class EventReader : public rapidjson::BaseReaderHandler<rapidjson::UTF8<>, EventReader> {
 public:
  bool root_is_array = true;
  bool name_is_string = false;
  bool args_valid = true;  // false: an argument held a lone surrogate escape
  EventPayload out;
  rapidjson::StringBuffer args_text;

  EventReader() : writer_(args_text) {}

  bool Null() { return scalar(nullptr, [this] { return writer_.Null(); }); }
  bool Bool(bool b) { return scalar(nullptr, [this, b] { return writer_.Bool(b); }); }
  // Numbers pass into the arguments as the client wrote them (a double
  // written back could change value; see livecast_v1.cpp).
  bool RawNumber(const char* s, rapidjson::SizeType n, bool) {
    const Scalar number{nullptr, 0, std::string_view(s, n)};
    return scalar(&number, [this, s, n] { return writer_.RawValue(s, n, rapidjson::kNumberType); });
  }
  bool String(const char* s, rapidjson::SizeType n, bool) {
    const Scalar string{s, n, {}};
    return scalar(&string, [this, s, n] { return writer_.String(s, n); });
  }
  bool StartObject() { return start(true); }
  bool StartArray() { return start(false); }
  bool EndObject(rapidjson::SizeType) { return end(true); }
  bool EndArray(rapidjson::SizeType) { return end(false); }

  bool Key(const char* s, rapidjson::SizeType n, bool) {
    if (!root_is_array) return true;
    if (element_ >= 1) forward([this, s, n] { return writer_.Key(s, n); });
    const std::string_view key(s, n);
    if (in_first_object_ && depth_ == 2) {
      field_ = key == "topic" ? Field::topic : key == "recover" ? Field::recover : Field::other;
    } else if (in_recover_ && depth_ == 3) {
      field_ = key == "epoch" ? Field::epoch : key == "offset" ? Field::offset : Field::other;
    }
    return true;
  }

  // The arguments' array, once the parse succeeded.
  std::string args() const { return std::string(args_text.GetString(), args_text.GetSize()); }

 private:
  enum class Field { other, topic, recover, epoch, offset };
  using Member = EventPayload::Member;
  using ArgsWriter = rapidjson::Writer<rapidjson::StringBuffer, rapidjson::UTF8<>, rapidjson::UTF8<>,
                                       rapidjson::CrtAllocator, rapidjson::kWriteValidateEncodingFlag>;

  // A scalar as the fields need it: a string's bytes, or a number's text.
  struct Scalar {
    const char* string = nullptr;
    std::size_t length = 0;
    std::string_view number;
  };

  template <class Write>
  bool scalar(const Scalar* value, Write write) {
    if (depth_ == 0) root_is_array = false;
    if (!root_is_array) return true;
    if (depth_ == 1) {
      ++element_;
      if (element_ == 0) {
        name_is_string = value && value->string;
        if (name_is_string) out.name.assign(value->string, value->length);
        return true;
      }
      forward(write);
      if (element_ == 1) {
        const bool is_string = value && value->string;
        out.first = is_string ? EventPayload::First::string : EventPayload::First::other;
        if (is_string) out.first_string.assign(value->string, value->length);
      }
      return true;
    }
    if (element_ >= 1) forward(write);
    if (in_recover_ && depth_ == 3) {
      recover_value(value);
    } else if (in_first_object_ && depth_ == 2) {
      first_member_value(value);
    }
    return true;
  }

  bool start(bool object) {
    if (depth_ == 0) {
      if (object) root_is_array = false;
      else writer_.StartArray();
    } else if (root_is_array) {
      if (depth_ == 1) {
        ++element_;
        if (element_ >= 1) forward([this, object] { return object ? writer_.StartObject() : writer_.StartArray(); });
        if (element_ == 1) {
          out.first = object ? EventPayload::First::object : EventPayload::First::other;
          in_first_object_ = object;
        }
      } else {
        if (element_ >= 1)
          forward([this, object] { return object ? writer_.StartObject() : writer_.StartArray(); });
        if (in_recover_ && depth_ == 3) {
          recover_value(nullptr);
        } else if (in_first_object_ && depth_ == 2) {
          if (field_ == Field::recover && object) {
            // A repeated "recover" replaces the earlier one, as in JavaScript.
            in_recover_ = true;
            epoch_ = offset_ = Member::missing;
            field_ = Field::other;
          } else {
            first_member_value(nullptr);
          }
        }
      }
    }
    ++depth_;
    return true;
  }

  bool end(bool object) {
    --depth_;
    if (!root_is_array) return true;
    if (depth_ == 0) {
      forward([this] { return writer_.EndArray(); });
      return true;
    }
    if (element_ >= 1) forward([this, object] { return object ? writer_.EndObject() : writer_.EndArray(); });
    if (in_recover_ && depth_ == 2) {
      in_recover_ = false;
      out.recover = epoch_ == Member::valid && offset_ == Member::valid ? Member::valid : Member::invalid;
    } else if (in_first_object_ && depth_ == 1) {
      in_first_object_ = false;
    }
    return true;
  }

  // A member of the first argument's object; `value` is null for an object or array.
  void first_member_value(const Scalar* value) {
    if (field_ == Field::topic) {
      const bool is_string = value && value->string;
      out.topic = is_string ? Member::valid : Member::invalid;
      if (is_string) out.topic_value.assign(value->string, value->length);
      else out.topic_value.clear();
    } else if (field_ == Field::recover) {
      out.recover = Member::invalid;  // objects are handled in start()
    }
  }

  // A member of "recover"; `value` is null for an object or array.
  void recover_value(const Scalar* value) {
    if (field_ == Field::epoch) {
      epoch_ = value && value->string ? Member::valid : Member::invalid;
      if (epoch_ == Member::valid) out.epoch.assign(value->string, value->length);
    } else if (field_ == Field::offset) {
      const auto offset = value && !value->number.empty() ? unsigned_integer(value->number) : std::nullopt;
      offset_ = offset ? Member::valid : Member::invalid;
      if (offset) out.offset = *offset;
    }
  }

  // Writes one event of the arguments. The writer only fails on strings
  // that are not valid UTF-8 (lone surrogate escapes); after that the
  // arguments are refused whole and nothing more is written.
  template <class Write>
  void forward(Write write) {
    if (args_valid && !write()) args_valid = false;
  }

  ArgsWriter writer_;
  std::size_t depth_ = 0;
  std::ptrdiff_t element_ = -1;  // index of the root array's current element
  Field field_ = Field::other;   // the key (at depth 2, or 3 inside "recover") whose value comes next
  bool in_first_object_ = false; // inside the first argument, an object
  bool in_recover_ = false;      // inside its "recover" object
  Member epoch_ = Member::missing;
  Member offset_ = Member::missing;
};

}  // namespace

bool has_lone_surrogate(std::string_view s) noexcept {
  for (std::size_t i = 0; i + 1 < s.size(); ++i)
    if (static_cast<unsigned char>(s[i]) == 0xED && static_cast<unsigned char>(s[i + 1]) >= 0xA0) return true;
  return false;
}

std::optional<SocketIoPacket> read_socketio_packet(std::string_view text, PacketError& error) {
  if (text.empty()) return refuse(error, Errc::bad_request, "an Engine.IO message (4) must carry a Socket.IO packet");
  SocketIoPacket packet;
  switch (text[0]) {
    case '0': case '1': case '2': case '3':
      packet.type = static_cast<SocketIoType>(text[0]);
      break;
    case '4':
      return refuse(error, Errc::unknown_op, "CONNECT_ERROR (44) is sent by servers only");
    case '5': {
      // BINARY_EVENT: 5<attachments>-[/nsp,][ack id][...]. Refused, but an
      // ack id in the main namespace is read, for the refusal to answer it.
      std::optional<std::int64_t> ack_id;
      const std::size_t dash = text.find('-');
      if (dash != std::string_view::npos && dash + 1 < text.size() && text[dash + 1] != '/') {
        std::size_t end = dash + 1;
        while (end < text.size() && end - dash <= 18 && is_digit(text[end])) ++end;
        std::int64_t id = 0;
        if (end > dash + 1 && end - dash <= 18)
          if (auto [p, ec] = std::from_chars(text.data() + dash + 1, text.data() + end, id); ec == std::errc())
            ack_id = id;
      }
      refuse(error, Errc::bad_request, "binary attachments are not supported");
      error.ack_id = ack_id;
      return std::nullopt;
    }
    case '6':
      return refuse(error, Errc::bad_request, "binary attachments are not supported");
    default:
      return refuse(error, Errc::unknown_op, "unknown Socket.IO packet type");
  }
  std::size_t i = 1;
  // "/name," names a namespace; at the end of the packet the comma may be left out.
  if (i < text.size() && text[i] == '/') {
    const std::size_t comma = text.find(',', i);
    if (comma == std::string_view::npos) {
      packet.space = text.substr(i);
      i = text.size();
    } else {
      packet.space = text.substr(i, comma - i);
      i = comma + 1;
    }
  }
  const std::size_t digits = i;
  while (i < text.size() && is_digit(text[i])) ++i;
  if (i > digits) {
    std::int64_t id = 0;
    const char* const end = text.data() + i;
    // Only digits: the one way this fails is an id past INT64_MAX.
    if (auto [p, ec] = std::from_chars(text.data() + digits, end, id); ec != std::errc() || p != end)
      return refuse(error, Errc::bad_request, "the ack id must be an integer that fits in 64 bits");
    packet.ack_id = id;
  }
  packet.payload = text.substr(i);
  return packet;
}

std::optional<ConnectPayload> read_connect_payload(std::string_view json, PacketError& error) {
  ConnectReader r;
  if (!parse_json(json, r, error)) return std::nullopt;
  if (!r.root_is_object)
    return refuse(error, Errc::bad_request, "CONNECT's payload (auth) must be a JSON object");
  return std::move(r.out);
}

std::optional<EventPayload> read_event_payload(std::string_view json, PacketError& error) {
  EventReader r;
  if (!parse_json(json, r, error)) return std::nullopt;
  if (!r.root_is_array)
    return refuse(error, Errc::bad_request, "an EVENT's payload must be a JSON array [name, ...args]");
  if (!r.name_is_string)
    return refuse(error, Errc::bad_request, "an EVENT's name (the array's first element) must be a string");
  r.out.args_valid = r.args_valid;
  if (r.args_valid) r.out.args = r.args();
  return std::move(r.out);
}

bool read_ack_payload(std::string_view json, PacketError& error) {
  RootKind r;
  if (!parse_json(json, r, error)) return false;
  if (!r.array) return fail(error, Errc::bad_request, "an ACK's payload must be a JSON array");
  return true;
}

}  // namespace detail
LIVECAST_END_NAMESPACE
