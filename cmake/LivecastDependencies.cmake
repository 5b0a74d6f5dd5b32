# Finds livecast's dependencies. Public: standalone Asio and threads. Private
# (compiled into src/, never in public headers): websocketpp, RapidJSON,
# OpenSSL 3 (libcrypto: JWT signature checks; libssl: TLS; Debian's libssl-dev)
# and fmt (the default log sink; Debian's libfmt-dev).
include(GNUInstallDirs)
find_package(Threads REQUIRED)
find_package(OpenSSL 3.0 REQUIRED COMPONENTS Crypto SSL)
find_package(fmt REQUIRED)

# livecast::asio: the same find module ships with the installed package, so a
# consumer's livecast::livecast finds Asio again on the consumer's machine
# instead of carrying this machine's include path.
find_package(LivecastAsio REQUIRED MODULE)
if(NOT TARGET livecast_asio)
  add_library(livecast_asio INTERFACE)
  target_link_libraries(livecast_asio INTERFACE livecast::asio)
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
