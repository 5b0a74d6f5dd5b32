// Fuzzes the body of POST /publish (publish_request.hpp), which any client
// holding a publishing token can send, and its answers.
//
// Input: the body, as is (max_items is 4, so batches over it are common).
// Properties, for every input:
// - parse_publish_request returns (no exception, no crash) either 1 to 4
//   items or an error with a non-empty UTF-8 message, never both;
// - an item has a non-empty topic and data that is valid JSON, valid UTF-8
//   and no bigger than the body;
// - written back as a canonical body (topics escaped, data as it is), the
//   items read back the same (when every topic is UTF-8: otherwise writing it
//   as a JSON string would already change it);
// - the answers built from it (offsets, errors with item and offsets) are
//   valid JSON.
#include "fuzz_check.hpp"

#include "transport/publish_request.hpp"

#include <livecast/json.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

using namespace livecast;
using namespace livecast::detail;

namespace {

constexpr std::size_t max_items = 4;

std::string canonical_body(const ParsedPublishRequest& r) {
  std::string out = r.batch ? "[" : "";
  for (std::size_t i = 0; i < r.items.size(); ++i) {
    if (i) out += ',';
    out += "{\"topic\":";
    append_json_string(out, r.items[i].topic);
    out += ",\"data\":" + r.items[i].data + "}";
  }
  if (r.batch) out += ']';
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(bytes), size);
  const ParsedPublishRequest r = parse_publish_request(body, max_items);
  if (r.error != Errc::ok) {
    FUZZ_CHECK(r.items.empty());
    FUZZ_CHECK(!r.message.empty());
    FUZZ_CHECK(is_valid_utf8(r.message));
    FUZZ_CHECK(is_valid_json(publish_error_body(r.error, r.message, r.item)));
    return 0;
  }
  FUZZ_CHECK(!r.items.empty() && r.items.size() <= max_items);
  FUZZ_CHECK(r.batch || r.items.size() == 1);
  bool topics_utf8 = true;
  std::vector<std::optional<std::uint64_t>> some;
  std::vector<std::uint64_t> offsets;
  for (const PublishItem& item : r.items) {
    FUZZ_CHECK(!item.topic.empty());
    FUZZ_CHECK(item.data.size() <= size);
    FUZZ_CHECK(is_valid_json(item.data));
    FUZZ_CHECK(is_valid_utf8(item.data));
    topics_utf8 = topics_utf8 && is_valid_utf8(item.topic);
    offsets.push_back(item.data.size());
    some.push_back(some.size() % 2 ? std::nullopt : std::optional<std::uint64_t>(item.topic.size()));
  }
  FUZZ_CHECK(is_valid_json(publish_answer_body(offsets)));
  FUZZ_CHECK(is_valid_json(publish_error_body(Errc::backend_unavailable, r.items[0].topic, 0, &some)));
  if (topics_utf8) {
    const ParsedPublishRequest again = parse_publish_request(canonical_body(r), max_items);
    FUZZ_CHECK(again.error == Errc::ok);
    FUZZ_CHECK(again.batch == r.batch);
    FUZZ_CHECK(again.items.size() == r.items.size());
    for (std::size_t i = 0; i < r.items.size(); ++i) {
      FUZZ_CHECK(again.items[i].topic == r.items[i].topic);
      FUZZ_CHECK(again.items[i].data == r.items[i].data);
    }
  }
  return 0;
}
