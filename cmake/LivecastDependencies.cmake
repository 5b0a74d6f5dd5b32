# Finds livecast's dependencies. Public: standalone Asio and threads. Private
# (compiled into src/, never in public headers): websocketpp, RapidJSON.
include(GNUInstallDirs)
find_package(Threads REQUIRED)

# Standalone Asio ships no CMake config on Debian; Conan and vcpkg name their
# targets differently. Use an existing target when one exists, else the header.
if(NOT TARGET livecast_asio)
  add_library(livecast_asio INTERFACE)
  if(TARGET asio::asio)
    target_link_libraries(livecast_asio INTERFACE asio::asio)
  else()
    find_path(LIVECAST_ASIO_INCLUDE_DIR asio.hpp REQUIRED)
    target_include_directories(livecast_asio INTERFACE $<BUILD_INTERFACE:${LIVECAST_ASIO_INCLUDE_DIR}>)
  endif()
  target_compile_definitions(livecast_asio INTERFACE ASIO_STANDALONE)
endif()

if(NOT TARGET livecast_third_party)
  add_library(livecast_third_party INTERFACE)
  find_path(LIVECAST_WEBSOCKETPP_INCLUDE_DIR websocketpp/version.hpp REQUIRED)
  find_path(LIVECAST_RAPIDJSON_INCLUDE_DIR rapidjson/document.h REQUIRED)
  target_include_directories(livecast_third_party INTERFACE
    ${LIVECAST_WEBSOCKETPP_INCLUDE_DIR} ${LIVECAST_RAPIDJSON_INCLUDE_DIR})
  # websocketpp: use the C++11 standard library, not Boost.
  target_compile_definitions(livecast_third_party INTERFACE _WEBSOCKETPP_CPP11_STL_)
endif()
