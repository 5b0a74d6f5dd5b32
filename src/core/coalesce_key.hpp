// The key a publication is coalesced by (TopicDelivery::coalesce_by), found
// once per publication as it reaches the broker, before it is encoded for
// every protocol. Sans-I/O: JSON text in, a key (or none) out.
//
// Threads: any; no state.
#pragma once

#include <livecast/config.hpp>

#include <string>
#include <string_view>

LIVECAST_BEGIN_NAMESPACE
namespace detail {

// The value of the top-level member `member` of the JSON object `json`, as
// Frame::coalesce_key holds it: a string after a '"' (escapes decoded), a
// number as written. "" when there is none: `json` is not an object, has
// no such member, the member's value is an object, array, null or bool, or
// the text is malformed before the member's value ends. Only the first
// member of that name counts (a duplicate is never read). Reads only as far
// as that value: publications were validated when published, so what
// follows is not looked at again.
std::string coalesce_key(std::string_view json, std::string_view member);

}  // namespace detail
LIVECAST_END_NAMESPACE
