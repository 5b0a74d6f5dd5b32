# websocketpp::websocketpp for the overlay port: the headers, on standalone
# Asio with the C++11 standard library instead of Boost.
include(CMakeFindDependencyMacro)
find_dependency(asio CONFIG)

if(NOT TARGET websocketpp::websocketpp)
  get_filename_component(_websocketpp_prefix "${CMAKE_CURRENT_LIST_DIR}/../.." ABSOLUTE)
  add_library(websocketpp::websocketpp INTERFACE IMPORTED)
  set_target_properties(websocketpp::websocketpp PROPERTIES
    INTERFACE_INCLUDE_DIRECTORIES "${_websocketpp_prefix}/include"
    INTERFACE_COMPILE_DEFINITIONS "ASIO_STANDALONE;_WEBSOCKETPP_CPP11_STL_"
    INTERFACE_LINK_LIBRARIES asio::asio)
  unset(_websocketpp_prefix)
endif()
set(websocketpp_VERSION 0.8.2)
