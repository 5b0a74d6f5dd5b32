// A JWKS file (RFC 7517 section 5): reading it into verification keys, and
// telling whether it changed since it was last read.
#pragma once

#include "jwt_key.hpp"

#include <livecast/config.hpp>
#include <livecast/jwt.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

LIVECAST_BEGIN_NAMESPACE
namespace detail {

// What a JWKS document yields: its usable signing keys, or the first reason
// it cannot be used (with a detail that names a key by index or kid, never
// its material).
struct JwksKeys {
  std::vector<JwtVerificationKey::Ptr> keys;
  std::error_code error;
  std::string detail;
};

// Reads a JWKS document. Keys that are not for verifying signatures with an
// algorithm in `allowed` are skipped; a signing key livecast would use but
// cannot build fails the whole document.
JwksKeys parse_jwks(std::string_view json, const std::vector<JwtAlgorithm>& allowed);

// What identifies one version of a file without reading it: a new version
// written in place changes the modification time (and usually the size), one
// renamed over the old one the inode.
struct FileVersion {
  std::int64_t modified_seconds = 0;
  std::int64_t modified_nanoseconds = 0;
  std::uint64_t size = 0;
  std::uint64_t inode = 0;
  std::uint64_t device = 0;
  bool exists = false;

  bool operator==(const FileVersion& o) const noexcept {
    return modified_seconds == o.modified_seconds && modified_nanoseconds == o.modified_nanoseconds &&
           size == o.size && inode == o.inode && device == o.device && exists == o.exists;
  }
  bool operator!=(const FileVersion& o) const noexcept { return !(*this == o); }
};

// The file's version now (exists false when it cannot be stat()ed).
FileVersion file_version(const std::string& path);

// The whole file, or nullopt when it cannot be read or is over `max_bytes`.
std::optional<std::string> read_small_file(const std::string& path, std::size_t max_bytes);

}  // namespace detail
LIVECAST_END_NAMESPACE
