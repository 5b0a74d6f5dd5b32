// livecast.v1: the JSON protocol described in docs/protocol.md.
//
// Decoding is one iterative SAX pass (no DOM, no recursion however deep the
// message nests): RequestReader picks the top-level fields it knows and
// streams the "data" value straight into a compact Writer, numbers as the
// client wrote them. Encoding builds
// each frame by concatenation into a string reserved to its exact size.
#include <livecast/protocol.hpp>

#include <livecast/json.hpp>

#include <rapidjson/error/en.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

LIVECAST_BEGIN_NAMESPACE

namespace {

// A decoded string may still hold a lone surrogate escape (e.g. "\udc00"),
// which RapidJSON turns into bytes ED B0..BF that are not UTF-8. Sent back to
// a browser inside a text frame they would fail its connection.
bool has_lone_surrogate(std::string_view s) noexcept {
  for (std::size_t i = 0; i + 1 < s.size(); ++i)
    if (static_cast<unsigned char>(s[i]) == 0xED && static_cast<unsigned char>(s[i + 1]) >= 0xA0) return true;
  return false;
}

// One JSON scalar as the reader reported it, reduced to what the fields need.
struct Scalar {
  const char* string = nullptr;  // set for strings only
  std::size_t length = 0;
  std::optional<std::int64_t> int64;    // integers that fit int64
  std::optional<std::uint64_t> uint64;  // non-negative integers that fit uint64
};

// The SAX handler for one client message. It never stops the parse, so the
// whole text is checked as JSON before any shape error is reported.
class RequestReader : public rapidjson::BaseReaderHandler<rapidjson::UTF8<>, RequestReader> {
 public:
  enum class Presence { missing, valid, invalid };

  // --- what the message said, for decode() to judge ---
  bool root_is_object = true;
  Presence op = Presence::missing;
  std::string op_name;
  Presence id = Presence::missing;
  std::int64_t id_value = 0;
  Presence topic = Presence::missing;
  std::string topic_name;
  Presence recover = Presence::missing;  // invalid: present but not an object
  Presence epoch = Presence::missing;
  std::string epoch_value;
  Presence offset = Presence::missing;
  std::uint64_t offset_value = 0;
  Presence recent = Presence::missing;  // invalid: present but not an object
  Presence count = Presence::missing;
  std::uint64_t count_value = 0;
  Presence seconds = Presence::missing;
  std::uint64_t seconds_value = 0;
  Presence data = Presence::missing;  // invalid: not encodable as UTF-8
  Presence token = Presence::missing;
  std::string token_value;
  rapidjson::StringBuffer data_text;

  // --- rapidjson handler interface ---
  bool Null() { return scalar({}, [this] { return writer_.Null(); }); }
  bool Bool(bool b) { return scalar({}, [this, b] { return writer_.Bool(b); }); }
  // Numbers come as the client wrote them (kParseNumbersAsStringsFlag) and
  // go into "data" unchanged, as the host's own publications do: a number
  // parsed to a double and written back could change value (RapidJSON
  // 1.1.0's default conversion can miss the nearest double, and its
  // full-precision one reads 0e41 as 2.6e123). Integers that fit are read
  // for "id", "recover.offset", "recent.count" and "recent.seconds".
  bool RawNumber(const char* s, rapidjson::SizeType n, bool) {
    return scalar(integer_value(std::string_view(s, n)),
                  [this, s, n] { return writer_.RawValue(s, n, rapidjson::kNumberType); });
  }
  bool String(const char* s, rapidjson::SizeType n, bool) {
    Scalar value;
    value.string = s;
    value.length = n;
    return scalar(value, [this, s, n] { return writer_.String(s, n); });
  }

  bool StartObject() { return start(/*object=*/true); }
  bool StartArray() { return start(/*object=*/false); }
  bool EndObject(rapidjson::SizeType) { return end(/*object=*/true); }
  bool EndArray(rapidjson::SizeType) { return end(/*object=*/false); }

  bool Key(const char* s, rapidjson::SizeType n, bool) {
    std::string_view key(s, n);
    if (!root_is_object) return true;
    if (depth_ == 1) {
      field_ = top_level_field(key);
    } else if (capturing_) {
      forward([this, s, n] { return writer_.Key(s, n); });
    } else if (nested_ != Field::other && depth_ == 2) {
      nested_field_ = nested_key(key);
    }
    return true;
  }

 private:
  enum class Field { other, op, id, topic, recover, recent, data, epoch, offset, count, seconds, token };

  static Field top_level_field(std::string_view key) noexcept {
    if (key == "op") return Field::op;
    if (key == "id") return Field::id;
    if (key == "topic") return Field::topic;
    if (key == "recover") return Field::recover;
    if (key == "recent") return Field::recent;
    if (key == "data") return Field::data;
    if (key == "token") return Field::token;
    return Field::other;
  }

  // A key inside "recover" or "recent".
  static Field nested_key(std::string_view key) noexcept {
    if (key == "epoch") return Field::epoch;
    if (key == "offset") return Field::offset;
    if (key == "count") return Field::count;
    if (key == "seconds") return Field::seconds;
    return Field::other;
  }

  // A JSON number's text (already checked by the reader) as an integer, when
  // it is one that fits int64 or uint64; "1.0" and "1e3" are not.
  static Scalar integer_value(std::string_view text) noexcept {
    Scalar value;
    const char* const end = text.data() + text.size();
    std::int64_t i = 0;
    if (auto [p, ec] = std::from_chars(text.data(), end, i); ec == std::errc() && p == end) {
      value.int64 = i;
      if (i >= 0) value.uint64 = static_cast<std::uint64_t>(i);
      return value;
    }
    std::uint64_t u = 0;
    if (auto [p, ec] = std::from_chars(text.data(), end, u); ec == std::errc() && p == end) value.uint64 = u;
    return value;
  }

  template <class Write>
  bool scalar(const Scalar& value, Write write) {
    if (depth_ == 0) root_is_object = false;
    if (!root_is_object) return true;
    if (depth_ == 1) {
      top_level_value(&value, write);
    } else if (capturing_) {
      forward(write);
    } else if (nested_ != Field::other && depth_ == 2) {
      nested_value(&value);
    }
    return true;
  }

  bool start(bool object) {
    if (depth_ == 0 && !object) root_is_object = false;
    if (root_is_object) {
      if (depth_ == 1) {
        if (field_ == Field::recover && object) {
          recover = Presence::valid;
          epoch = offset = Presence::missing;
          nested_ = Field::recover;
          nested_field_ = Field::other;
        } else if (field_ == Field::recent && object) {
          recent = Presence::valid;
          count = seconds = Presence::missing;
          nested_ = Field::recent;
          nested_field_ = Field::other;
        } else {
          top_level_value(nullptr, [this, object] { return object ? writer_.StartObject() : writer_.StartArray(); });
          capturing_ = field_ == Field::data;
        }
      } else if (capturing_) {
        forward([this, object] { return object ? writer_.StartObject() : writer_.StartArray(); });
      } else if (nested_ != Field::other && depth_ == 2) {
        nested_value(nullptr);
      }
    }
    ++depth_;
    return true;
  }

  bool end(bool object) {
    --depth_;
    if (!root_is_object) return true;
    if (capturing_) {
      forward([this, object] { return object ? writer_.EndObject() : writer_.EndArray(); });
      if (depth_ == 1) capturing_ = false;
    } else if (nested_ != Field::other && depth_ == 1) {
      nested_ = Field::other;
    }
    return true;
  }

  // A value of a top-level field; `value` is null for an object or array.
  template <class Write>
  void top_level_value(const Scalar* value, Write write) {
    const bool is_string = value && value->string;
    switch (field_) {
      case Field::op:
        op = is_string ? Presence::valid : Presence::invalid;
        if (is_string) op_name.assign(value->string, value->length);
        break;
      case Field::id:
        id = value && value->int64 ? Presence::valid : Presence::invalid;
        if (id == Presence::valid) id_value = *value->int64;
        break;
      case Field::topic:
        topic = is_string && value->length > 0 ? Presence::valid : Presence::invalid;
        if (topic == Presence::valid) topic_name.assign(value->string, value->length);
        break;
      case Field::recover:
        recover = Presence::invalid;  // objects are handled in start()
        break;
      case Field::recent:
        recent = Presence::invalid;  // objects are handled in start()
        break;
      case Field::token:
        token = is_string && value->length > 0 ? Presence::valid : Presence::invalid;
        if (token == Presence::valid) token_value.assign(value->string, value->length);
        break;
      case Field::data:
        // A repeated key replaces the earlier value, as in JavaScript.
        data_text.Clear();
        writer_.Reset(data_text);
        data = Presence::valid;
        forward(write);
        break;
      default:
        break;
    }
  }

  // A value inside "recover" or "recent"; `value` is null for an object or
  // array. Keys of the other object, and unknown keys, are ignored.
  void nested_value(const Scalar* value) {
    const bool in_recover = nested_ == Field::recover;
    if (in_recover && nested_field_ == Field::epoch) {
      epoch = value && value->string ? Presence::valid : Presence::invalid;
      if (epoch == Presence::valid) epoch_value.assign(value->string, value->length);
    } else if (in_recover && nested_field_ == Field::offset) {
      offset = value && value->uint64 ? Presence::valid : Presence::invalid;
      if (offset == Presence::valid) offset_value = *value->uint64;
    } else if (!in_recover && nested_field_ == Field::count) {
      count = value && value->uint64 ? Presence::valid : Presence::invalid;
      if (count == Presence::valid) count_value = *value->uint64;
    } else if (!in_recover && nested_field_ == Field::seconds) {
      seconds = value && value->uint64 ? Presence::valid : Presence::invalid;
      if (seconds == Presence::valid) seconds_value = *value->uint64;
    }
  }

  // Streams one event of the "data" value into the writer. The writer only
  // fails on strings that are not valid UTF-8 (lone surrogate escapes).
  template <class Write>
  void forward(Write write) {
    if (data == Presence::valid && !write()) data = Presence::invalid;
  }

  using DataWriter = rapidjson::Writer<rapidjson::StringBuffer, rapidjson::UTF8<>, rapidjson::UTF8<>,
                                       rapidjson::CrtAllocator, rapidjson::kWriteValidateEncodingFlag>;

  DataWriter writer_;
  std::size_t depth_ = 0;
  Field field_ = Field::other;          // the top-level key whose value comes next
  Field nested_ = Field::other;        // inside the "recover" or "recent" object: which
  Field nested_field_ = Field::other;  // the key inside it whose value comes next
  bool capturing_ = false;             // inside a "data" object or array
};

class LivecastV1Protocol final : public Protocol {
 public:
  std::string_view name() const noexcept override { return "livecast.v1"; }

  DecodeResult decode(std::string_view message) const override {
    if (message.empty()) return DecodeResult::fail(Errc::invalid_json, "not valid JSON: empty message");
    // The reader takes a NUL byte for the end of input; a raw NUL is never JSON.
    if (std::memchr(message.data(), '\0', message.size()) != nullptr)
      return DecodeResult::fail(Errc::invalid_json, "not valid JSON: raw NUL byte");
    RequestReader r;
    rapidjson::MemoryStream stream(message.data(), message.size());
    rapidjson::Reader reader;
    // Numbers as text: see RequestReader::RawNumber.
    constexpr unsigned flags =
        rapidjson::kParseIterativeFlag | rapidjson::kParseValidateEncodingFlag | rapidjson::kParseNumbersAsStringsFlag;
    if (rapidjson::ParseResult parsed = reader.Parse<flags>(stream, r); parsed.IsError()) {
      return DecodeResult::fail(Errc::invalid_json, std::string("not valid JSON: ") +
                                                        rapidjson::GetParseError_En(parsed.Code()) + " at byte " +
                                                        std::to_string(parsed.Offset()));
    }
    using P = RequestReader::Presence;
    if (!r.root_is_object) return DecodeResult::fail(Errc::bad_request, "a message must be a JSON object");

    std::optional<std::int64_t> id;
    if (r.id == P::valid) id = r.id_value;
    if (r.op != P::valid) return DecodeResult::fail(Errc::bad_request, "\"op\" must be a string", id);
    if (r.id == P::invalid)
      return DecodeResult::fail(Errc::bad_request, "\"id\" must be an integer that fits in 64 bits");

    ClientRequest request;
    request.id = id;
    bool needs_topic = true;
    if (r.op_name == "subscribe") {
      request.op = ClientRequest::Op::subscribe;
    } else if (r.op_name == "unsubscribe") {
      request.op = ClientRequest::Op::unsubscribe;
    } else if (r.op_name == "publish") {
      request.op = ClientRequest::Op::publish;
    } else if (r.op_name == "ping") {
      request.op = ClientRequest::Op::ping;
      needs_topic = false;
    } else if (r.op_name == "refresh") {
      if (r.token != P::valid) return DecodeResult::fail(Errc::bad_request, "\"token\" must be a non-empty string", id);
      request.op = ClientRequest::Op::refresh;
      request.token = std::move(r.token_value);
      needs_topic = false;
    } else {
      // The op is not echoed: it is the client's text and may be anything.
      return DecodeResult::fail(Errc::unknown_op,
                                "unknown \"op\"; expected subscribe, unsubscribe, publish, ping or refresh", id);
    }

    if (needs_topic) {
      if (r.topic != P::valid) return DecodeResult::fail(Errc::bad_request, "\"topic\" must be a non-empty string", id);
      if (has_lone_surrogate(r.topic_name))
        return DecodeResult::fail(Errc::invalid_topic, "\"topic\" must not contain lone surrogates", id);
      request.topic = std::move(r.topic_name);
    }

    if (request.op == ClientRequest::Op::subscribe && r.recover != P::missing) {
      if (r.recover == P::invalid)
        return DecodeResult::fail(Errc::bad_request, "\"recover\" must be an object {\"epoch\",\"offset\"}", id);
      if (r.epoch != P::valid) return DecodeResult::fail(Errc::bad_request, "\"recover.epoch\" must be a string", id);
      if (r.offset != P::valid)
        return DecodeResult::fail(Errc::bad_request, "\"recover.offset\" must be a non-negative integer", id);
      request.recover = StreamPosition{std::move(r.epoch_value), r.offset_value};
    }

    if (request.op == ClientRequest::Op::subscribe && r.recent != P::missing) {
      if (r.recent == P::invalid)
        return DecodeResult::fail(Errc::bad_request, "\"recent\" must be an object {\"count\",\"seconds\"}", id);
      if (r.count == P::invalid)
        return DecodeResult::fail(Errc::bad_request, "\"recent.count\" must be a non-negative integer", id);
      if (r.seconds == P::invalid)
        return DecodeResult::fail(Errc::bad_request, "\"recent.seconds\" must be a non-negative integer", id);
      // Bounded here so the conversions cannot overflow; the broker bounds
      // the count again (RecoverySettings::max_publications).
      constexpr std::uint64_t most_seconds = 10ull * 365 * 24 * 3600;
      RecentHistory recent;
      recent.count = static_cast<std::size_t>(std::min<std::uint64_t>(r.count_value, 1u << 30));
      recent.max_age = std::chrono::seconds(std::min(r.seconds_value, most_seconds));
      request.recent = recent;
    }

    if (request.op == ClientRequest::Op::publish) {
      if (r.data == P::missing) return DecodeResult::fail(Errc::bad_request, "publish needs \"data\"", id);
      if (r.data == P::invalid)
        return DecodeResult::fail(Errc::invalid_payload, "\"data\" must not contain lone surrogates", id);
      request.data.assign(r.data_text.GetString(), r.data_text.GetSize());
    }

    DecodeResult result = DecodeResult::ok(std::move(request));
    result.id = id;
    return result;
  }

  // {"cursor":<cursor>,"messages":[...]} for a poll; {"messages":[...]} for a POST.
  MessageBatchFraming batch_framing(std::optional<std::string_view> cursor) const override {
    MessageBatchFraming f;
    f.content_type = "application/json";
    f.head = "{";
    if (cursor) {
      f.head += "\"cursor\":";
      append_json_string(f.head, *cursor);
      f.head += ",";
    }
    f.head += "\"messages\":[";
    f.separator = ",";
    f.tail = "]}";
    return f;
  }

 protected:
  // {"topic":<topic>,"offset":<offset>,"data":<data>}
  std::string encode_publication_text(const Publication& publication) const override {
    static constexpr std::string_view head = "{\"topic\":";
    static constexpr std::string_view middle = ",\"offset\":";
    static constexpr std::string_view tail = ",\"data\":";
    static constexpr std::string_view null_data = "null";
    const std::string_view data = publication.data ? std::string_view(*publication.data) : null_data;

    char digits[24];
    const auto converted = std::to_chars(digits, digits + sizeof digits, publication.offset);
    const std::string_view offset(digits, static_cast<std::size_t>(converted.ptr - digits));

    std::string out;
    out.reserve(head.size() + json_string_size(publication.topic) + middle.size() + offset.size() + tail.size() +
                data.size() + 1);
    out.append(head);
    append_json_string(out, publication.topic);
    out.append(middle);
    out.append(offset);
    out.append(tail);
    out.append(data);
    out.push_back('}');
    return out;
  }

  // {"id":<id>,"ok":{"topic":<topic>,"epoch":<epoch>,"offset":<offset>,"recovered":<bool>}},
  // without "id" for a notice.
  std::string encode_subscribed_text(std::optional<std::int64_t> id, const std::string& topic,
                                     const StreamPosition& head, bool recovered) const override {
    std::string out;
    out.reserve(80 + json_string_size(topic) + json_string_size(head.epoch));
    open_with_id(out, id);
    out.append("\"ok\":{\"topic\":");
    append_json_string(out, topic);
    out.append(",\"epoch\":");
    append_json_string(out, head.epoch);
    out.append(",\"offset\":");
    out.append(std::to_string(head.offset));
    out.append(recovered ? ",\"recovered\":true}}" : ",\"recovered\":false}}");
    return out;
  }

  // {"id":<id>,"ok":{"topic":<topic>}}
  std::string encode_unsubscribed_text(std::int64_t id, const std::string& topic) const override {
    std::string out;
    open_with_id(out, id);
    out.append("\"ok\":{\"topic\":");
    append_json_string(out, topic);
    out.append("}}");
    return out;
  }

  // {"id":<id>,"ok":{"topic":<topic>,"offset":<offset>}}
  std::string encode_published_text(std::int64_t id, const std::string& topic, std::uint64_t offset) const override {
    std::string out;
    open_with_id(out, id);
    out.append("\"ok\":{\"topic\":");
    append_json_string(out, topic);
    out.append(",\"offset\":");
    out.append(std::to_string(offset));
    out.append("}}");
    return out;
  }

  // {"id":<id>,"ok":{}}
  std::string encode_pong_text(std::int64_t id) const override {
    std::string out;
    open_with_id(out, id);
    out.append("\"ok\":{}}");
    return out;
  }

  // {"id":<id>,"ok":{"expires_at":<unix ms>}}, or {"id":<id>,"ok":{}} for no end
  std::string encode_refreshed_text(std::int64_t id,
                                    std::optional<std::chrono::system_clock::time_point> expires_at) const override {
    std::string out;
    open_with_id(out, id);
    if (!expires_at) {
      out.append("\"ok\":{}}");
      return out;
    }
    out.append("\"ok\":{\"expires_at\":");
    out.append(std::to_string(
        std::chrono::duration_cast<std::chrono::milliseconds>(expires_at->time_since_epoch()).count()));
    out.append("}}");
    return out;
  }

  // {"id":<id>,"error":{"code":<wire name>,"message":<message>}}
  std::string encode_error_text(std::optional<std::int64_t> id, Errc code, std::string_view message) const override {
    std::string out;
    out.reserve(64 + json_string_size(message));
    open_with_id(out, id);
    out.append("\"error\":{\"code\":");
    append_json_string(out, to_wire_name(code));
    out.append(",\"message\":");
    append_json_string(out, message);
    out.append("}}");
    return out;
  }

 private:
  static void open_with_id(std::string& out, std::optional<std::int64_t> id) {
    out.push_back('{');
    if (!id) return;
    out.append("\"id\":");
    out.append(std::to_string(*id));
    out.push_back(',');
  }
};

}  // namespace

std::shared_ptr<const Protocol> make_livecast_v1_protocol() {
  // Stateless: one instance serves every broker.
  static const auto protocol = std::make_shared<const LivecastV1Protocol>();
  return protocol;
}

LIVECAST_END_NAMESPACE
