# Finds standalone Asio (header-only) and defines livecast::asio for it.
# Used by livecast's own build and by its installed package, so a consumer
# finds Asio the same way livecast did. A target a package manager already
# made wins (Conan's and vcpkg's asio::asio); otherwise asio.hpp on the
# include path (Debian's libasio-dev) will do.
#
# Sets LivecastAsio_FOUND and, when asio.hpp was looked up, the cache entry
# LivecastAsio_INCLUDE_DIR and LivecastAsio_VERSION.
include(FindPackageHandleStandardArgs)

if(NOT TARGET asio::asio AND NOT LivecastAsio_INCLUDE_DIR)
  find_package(asio CONFIG QUIET)
endif()

if(TARGET asio::asio)
  set(_livecast_asio_found_by "asio::asio")
  find_package_handle_standard_args(LivecastAsio REQUIRED_VARS _livecast_asio_found_by)
else()
  find_path(LivecastAsio_INCLUDE_DIR asio.hpp)
  mark_as_advanced(LivecastAsio_INCLUDE_DIR)
  if(LivecastAsio_INCLUDE_DIR AND EXISTS "${LivecastAsio_INCLUDE_DIR}/asio/version.hpp")
    # ASIO_VERSION is major * 100000 + minor * 100 + patch.
    file(STRINGS "${LivecastAsio_INCLUDE_DIR}/asio/version.hpp" _livecast_asio_version_line
         REGEX "^#define ASIO_VERSION [0-9]+")
    string(REGEX REPLACE "^#define ASIO_VERSION ([0-9]+).*" "\\1" _livecast_asio_number "${_livecast_asio_version_line}")
    math(EXPR _livecast_asio_major "${_livecast_asio_number} / 100000")
    math(EXPR _livecast_asio_minor "${_livecast_asio_number} / 100 % 1000")
    math(EXPR _livecast_asio_patch "${_livecast_asio_number} % 100")
    set(LivecastAsio_VERSION "${_livecast_asio_major}.${_livecast_asio_minor}.${_livecast_asio_patch}")
    unset(_livecast_asio_version_line)
    unset(_livecast_asio_number)
    unset(_livecast_asio_major)
    unset(_livecast_asio_minor)
    unset(_livecast_asio_patch)
  endif()
  find_package_handle_standard_args(LivecastAsio
    REQUIRED_VARS LivecastAsio_INCLUDE_DIR
    VERSION_VAR LivecastAsio_VERSION)
endif()

if(LivecastAsio_FOUND AND NOT TARGET livecast::asio)
  add_library(livecast::asio INTERFACE IMPORTED)
  if(TARGET asio::asio)
    set_property(TARGET livecast::asio PROPERTY INTERFACE_LINK_LIBRARIES asio::asio)
  else()
    set_property(TARGET livecast::asio PROPERTY INTERFACE_INCLUDE_DIRECTORIES "${LivecastAsio_INCLUDE_DIR}")
  endif()
  # livecast's headers use Asio without Boost.
  set_property(TARGET livecast::asio PROPERTY INTERFACE_COMPILE_DEFINITIONS ASIO_STANDALONE)
endif()
unset(_livecast_asio_found_by)
