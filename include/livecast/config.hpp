// livecast: version, ABI namespace and the Asio configuration every header shares.
#pragma once

#define LIVECAST_VERSION_MAJOR 0
#define LIVECAST_VERSION_MINOR 1
#define LIVECAST_VERSION_PATCH 0
// One comparable number: major * 10000 + minor * 100 + patch.
#define LIVECAST_VERSION (LIVECAST_VERSION_MAJOR * 10000 + LIVECAST_VERSION_MINOR * 100 + LIVECAST_VERSION_PATCH)
#define LIVECAST_VERSION_STRING "0.1.0"

// Everything lives in an inline namespace named after the ABI version, so two
// incompatible copies of the header-first core linked into one program fail to
// link instead of silently breaking the one-definition rule.
#define LIVECAST_BEGIN_NAMESPACE namespace livecast { inline namespace v0 {
#define LIVECAST_END_NAMESPACE } }

// livecast uses standalone Asio (Debian's libasio-dev, Conan's and vcpkg's asio).
#ifndef ASIO_STANDALONE
#define ASIO_STANDALONE
#endif
