#include "publish_request.hpp"

#include <livecast/json.hpp>

#include <rapidjson/error/en.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cstring>
#include <utility>

LIVECAST_BEGIN_NAMESPACE
namespace detail {

namespace {

// The SAX handler for one body. Shape errors are remembered (the first one)
// and the parse goes on, so that text that is not JSON is reported as such
// whatever its shape; only too many items stops it early.
class PublishBodyReader : public rapidjson::BaseReaderHandler<rapidjson::UTF8<>, PublishBodyReader> {
 public:
  explicit PublishBodyReader(std::size_t max_items) : max_items_(max_items) {}

  std::vector<PublishItem> items;
  bool batch = false;
  Errc error = Errc::ok;
  std::string message;
  std::optional<std::size_t> error_item;
  bool too_many = false;  // the parse was stopped for it

  bool Null() { return scalar([this] { return writer_.Null(); }); }
  bool Bool(bool b) { return scalar([this, b] { return writer_.Bool(b); }); }
  // Numbers come as text (kParseNumbersAsStringsFlag) and go into "data"
  // unchanged: parsed to a double and written back, one could change value.
  bool RawNumber(const char* s, rapidjson::SizeType n, bool) {
    return scalar([this, s, n] { return writer_.RawValue(s, n, rapidjson::kNumberType); });
  }
  bool String(const char* s, rapidjson::SizeType n, bool) {
    if (depth_ == item_depth_ && in_item_ && field_ == Field::topic) {
      if (n == 0) fail(Errc::bad_request, "\"topic\" must be a non-empty string");
      current_.topic.assign(s, n);
      return true;
    }
    return scalar([this, s, n] { return writer_.String(s, n); });
  }
  bool Key(const char* s, rapidjson::SizeType n, bool) {
    if (capturing_) {
      forward([this, s, n] { return writer_.Key(s, n); });
      return true;
    }
    if (depth_ != item_depth_ || !in_item_) return true;
    const std::string_view key(s, n);
    field_ = key == "topic" ? Field::topic : key == "data" ? Field::data : Field::other;
    if (field_ == Field::other) {
      fail(Errc::bad_request, "unknown field \"" + printable(key) + "\" (an item has \"topic\" and \"data\")");
      return true;
    }
    bool& seen = field_ == Field::topic ? seen_topic_ : seen_data_;
    if (seen) fail(Errc::bad_request, "\"" + std::string(key) + "\" given twice");
    seen = true;
    return true;
  }
  bool StartObject() { return start(/*object=*/true); }
  bool StartArray() { return start(/*object=*/false); }
  bool EndObject(rapidjson::SizeType) { return end(/*object=*/true); }
  bool EndArray(rapidjson::SizeType) { return end(/*object=*/false); }

 private:
  enum class Field { other, topic, data };
  using DataWriter = rapidjson::Writer<rapidjson::StringBuffer, rapidjson::UTF8<>, rapidjson::UTF8<>,
                                       rapidjson::CrtAllocator, rapidjson::kWriteValidateEncodingFlag>;

  // A key as it may be quoted back: printable ASCII (a key may hold a lone
  // surrogate, which is not UTF-8), bounded.
  static std::string printable(std::string_view key) {
    std::string out;
    for (char c : key.substr(0, 64)) {
      const auto u = static_cast<unsigned char>(c);
      out.push_back(u < 0x20 || u >= 0x7f ? '?' : c);
    }
    return out;
  }

  void fail(Errc e, std::string why) {
    if (error != Errc::ok) return;
    error = e;
    message = std::move(why);
    if (batch && depth_ >= 1) error_item = items.size();  // the item being read
  }

  // A scalar: the root (refused), an item in the root array (refused), a
  // field's value, or part of "data".
  template <class Write>
  bool scalar(Write write) {
    if (depth_ == 0) {
      fail(Errc::bad_request, "the body must be an object or an array of objects");
    } else if (batch && depth_ == 1) {
      fail(Errc::bad_request, "each item must be an object");
    } else if (capturing_) {
      forward(write);
    } else if (depth_ == item_depth_ && in_item_) {
      if (field_ == Field::topic) {
        fail(Errc::bad_request, "\"topic\" must be a non-empty string");
      } else if (field_ == Field::data) {
        begin_data();
        forward(write);
        end_data();
      }
    }
    return true;
  }

  bool start(bool object) {
    if (depth_ == 0) {
      batch = !object;
      item_depth_ = batch ? 2 : 1;
      if (object) begin_item();
    } else if (batch && depth_ == 1) {
      if (items.size() >= max_items_) {
        error = Errc::message_too_large;
        message = "more than " + std::to_string(max_items_) + " publications in one request";
        too_many = true;
        return false;  // stops the parse
      }
      if (object)
        begin_item();
      else
        fail(Errc::bad_request, "each item must be an object");
    } else if (capturing_) {
      forward([this, object] { return object ? writer_.StartObject() : writer_.StartArray(); });
    } else if (depth_ == item_depth_ && in_item_) {
      if (field_ == Field::topic) {
        fail(Errc::bad_request, "\"topic\" must be a non-empty string");
      } else if (field_ == Field::data) {
        begin_data();
        capturing_ = true;
        forward([this, object] { return object ? writer_.StartObject() : writer_.StartArray(); });
      }
    }
    ++depth_;
    return true;
  }

  bool end(bool object) {
    --depth_;
    if (capturing_) {
      forward([this, object] { return object ? writer_.EndObject() : writer_.EndArray(); });
      if (depth_ == item_depth_) {
        capturing_ = false;
        end_data();
      }
    } else if (in_item_ && depth_ == item_depth_ - 1) {
      end_item();
    } else if (depth_ == 0 && batch && items.empty() && error == Errc::ok) {
      fail(Errc::bad_request, "an empty batch");
    }
    return true;
  }

  void begin_item() {
    in_item_ = true;
    seen_topic_ = seen_data_ = false;
    field_ = Field::other;
    current_ = PublishItem{};
  }

  void end_item() {
    in_item_ = false;
    if (!seen_topic_)
      fail(Errc::bad_request, "missing \"topic\"");
    else if (!seen_data_)
      fail(Errc::bad_request, "missing \"data\"");
    // After an error, items only count (for the index of a later error
    // there is none: the first one is reported).
    items.push_back(error == Errc::ok ? std::move(current_) : PublishItem{});
  }

  void begin_data() {
    data_text_.Clear();
    writer_.Reset(data_text_);
    data_valid_ = true;
  }

  void end_data() {
    if (!data_valid_) {
      fail(Errc::invalid_payload, "\"data\" must not contain lone surrogates (not UTF-8)");
      return;
    }
    current_.data.assign(data_text_.GetString(), data_text_.GetSize());
  }

  // The writer only fails on strings that are not UTF-8 (lone surrogates).
  template <class Write>
  void forward(Write write) {
    if (data_valid_ && !write()) data_valid_ = false;
  }

  std::size_t max_items_;
  std::size_t depth_ = 0;
  std::size_t item_depth_ = 1;  // the depth of an item's fields
  bool in_item_ = false;
  bool seen_topic_ = false;
  bool seen_data_ = false;
  bool capturing_ = false;      // inside a "data" object or array
  bool data_valid_ = true;
  Field field_ = Field::other;  // the item's key whose value comes next
  PublishItem current_;
  rapidjson::StringBuffer data_text_;
  DataWriter writer_;
};

ParsedPublishRequest refused(Errc e, std::string message) {
  ParsedPublishRequest r;
  r.error = e;
  r.message = std::move(message);
  return r;
}

}  // namespace

ParsedPublishRequest parse_publish_request(std::string_view body, std::size_t max_items) {
  if (body.empty()) return refused(Errc::invalid_json, "not valid JSON: empty body");
  // The reader takes a NUL byte for the end of input; a raw NUL is never JSON.
  if (std::memchr(body.data(), '\0', body.size()) != nullptr)
    return refused(Errc::invalid_json, "not valid JSON: raw NUL byte");
  PublishBodyReader handler(max_items);
  rapidjson::MemoryStream stream(body.data(), body.size());
  rapidjson::Reader reader;
  constexpr unsigned flags =
      rapidjson::kParseIterativeFlag | rapidjson::kParseValidateEncodingFlag | rapidjson::kParseNumbersAsStringsFlag;
  const rapidjson::ParseResult parsed = reader.Parse<flags>(stream, handler);
  ParsedPublishRequest r;
  if (handler.too_many) return refused(Errc::message_too_large, std::move(handler.message));
  if (parsed.IsError()) {
    return refused(Errc::invalid_json, std::string("not valid JSON: ") + rapidjson::GetParseError_En(parsed.Code()) +
                                           " at byte " + std::to_string(parsed.Offset()));
  }
  r.batch = handler.batch;
  if (handler.error != Errc::ok) {
    r.error = handler.error;
    r.message = std::move(handler.message);
    r.item = handler.error_item;
    return r;
  }
  r.items = std::move(handler.items);
  return r;
}

std::string publish_answer_body(const std::vector<std::uint64_t>& offsets) {
  std::string body = "{\"offsets\":[";
  for (std::size_t i = 0; i < offsets.size(); ++i) {
    if (i) body += ',';
    body += std::to_string(offsets[i]);
  }
  body += "]}";
  return body;
}

std::string publish_error_body(Errc code, std::string_view message, std::optional<std::size_t> item,
                               const std::vector<std::optional<std::uint64_t>>* offsets) {
  std::string body = "{\"error\":{\"code\":";
  append_json_string(body, to_wire_name(code));
  body += ",\"message\":";
  append_json_string(body, message);
  if (item) body += ",\"item\":" + std::to_string(*item);
  body += '}';
  if (offsets) {
    body += ",\"offsets\":[";
    for (std::size_t i = 0; i < offsets->size(); ++i) {
      if (i) body += ',';
      body += (*offsets)[i] ? std::to_string(*(*offsets)[i]) : std::string("null");
    }
    body += ']';
  }
  body += '}';
  return body;
}

}  // namespace detail
LIVECAST_END_NAMESPACE
