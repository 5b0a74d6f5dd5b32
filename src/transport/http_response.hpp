// What the HTTP answers of both transports share: the reason phrase of a
// status, and which header fields an answer may carry. A field from the
// host's code (an HttpHandler's headers and content type) goes out only when
// it is well-formed: a line break in it would split the response (header
// injection), an invalid name would make a client, or websocketpp, reject
// the whole answer.
#pragma once

#include "http_request_parser.hpp"

#include <livecast/config.hpp>

#include <string_view>

LIVECAST_BEGIN_NAMESPACE
namespace detail {

inline const char* reason_phrase(int status) noexcept {
  switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 426: return "Upgrade Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
  }
}

inline bool response_header_allowed(std::string_view name, std::string_view value) noexcept {
  return is_http_token(name) && is_http_field_value(value);
}

}  // namespace detail
LIVECAST_END_NAMESPACE
