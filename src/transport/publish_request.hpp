// The body of a POST to HttpTransportSettings::publish_path, and its answers:
// livecast's small REST API for services that publish over HTTP
// (docs/operations.md, "Publishing over HTTP"). It is no Protocol: a
// transport reads it, the broker never sees it.
//
//   {"topic":"T","data":<any JSON>}                  one publication
//   [{"topic":"T1","data":...},{"topic":"T2",...}]    a batch, in order
//   200 {"offsets":[7,8]}                              one offset per publication
//   4xx/5xx {"error":{"code":"forbidden","message":"...","item":1}}
//
// Sans-I/O: text in, publications or an error out. One iterative SAX pass
// (no DOM, no recursion however deep "data" nests) that streams each "data"
// value into a compact writer, numbers as the client wrote them.
#pragma once

#include <livecast/config.hpp>
#include <livecast/error.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

LIVECAST_BEGIN_NAMESPACE
namespace detail {

// One publication asked for.
struct PublishItem {
  std::string topic;  // as sent: the broker validates it (check_publish)
  std::string data;   // the "data" value as compact JSON text
};

struct ParsedPublishRequest {
  std::vector<PublishItem> items;  // empty unless error is ok
  bool batch = false;              // the body was an array
  // ok, or why the body is refused: invalid_json (not JSON), bad_request
  // (another shape), invalid_payload ("data" holds a lone surrogate, which
  // is not UTF-8), message_too_large (more than max_items publications).
  Errc error = Errc::ok;
  std::string message;              // for the client
  std::optional<std::size_t> item;  // the publication the error is about (index)
};

// Reads a body. An item is an object with exactly "topic" (a non-empty
// string) and "data" (any JSON value, null included); other or repeated
// fields are refused, so that a misspelt field never passes unnoticed. A
// batch holds 1 to max_items items.
ParsedPublishRequest parse_publish_request(std::string_view body, std::size_t max_items);

// {"offsets":[1,2]}
std::string publish_answer_body(const std::vector<std::uint64_t>& offsets);

// {"error":{"code":..,"message":..[,"item":n]}[,"offsets":[1,null]]}. With
// `offsets` (a batch the backend took in part), null marks the publications
// that were not taken.
std::string publish_error_body(Errc code, std::string_view message, std::optional<std::size_t> item = std::nullopt,
                               const std::vector<std::optional<std::uint64_t>>* offsets = nullptr);

}  // namespace detail
LIVECAST_END_NAMESPACE
