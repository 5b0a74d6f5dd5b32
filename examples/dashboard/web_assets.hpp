// The dashboard page, compiled into the binary: web_assets.cpp is generated
// at build time from the files under web/ by embed_web_assets.cmake.
// Another example's page gets the same two functions in a namespace of its
// own (livecast_embed_web_assets(... NAMESPACE ...) in CMakeLists.txt).
#pragma once

#include <cstddef>
#include <string_view>

namespace dashboard {

struct WebAsset {
  std::string_view path;          // "/index.html", "/app.js", ...
  std::string_view content_type;  // from the file's extension
  std::string_view body;
};

// The asset served at `path`, or nullptr.
const WebAsset* find_web_asset(std::string_view path) noexcept;
std::size_t web_asset_count() noexcept;

// A page's find_web_asset, for make_web_handler (web_server.hpp).
using FindWebAsset = const WebAsset* (*)(std::string_view path) noexcept;

}  // namespace dashboard
