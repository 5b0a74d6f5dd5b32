# cmake -DPATCH=... -DPATCH_DIR=ports/websocketpp -DWEBSOCKETPP_INCLUDE_DIR=/usr/include
#       -DASIO_INCLUDE_DIR=... -DCXX_COMPILER=... -DPROBE=websocketpp_probe.cpp -DWORK_DIR=... -P ...
# Lays out a copy of the installed websocketpp headers as the 0.8.2 release
# archive has them (websocketpp/ at the top), applies the overlay port's
# patches in order with `patch -p1` as vcpkg does, and compiles a probe
# against the result: as C++20 (the template-id fix) and, once there is an
# Asio patch, as C++17 with ASIO_NO_DEPRECATED (Asio without the names later
# Asio releases removed).
cmake_minimum_required(VERSION 3.21)

if(NOT EXISTS "${WEBSOCKETPP_INCLUDE_DIR}/websocketpp/version.hpp")
  message(FATAL_ERROR "no websocketpp headers under ${WEBSOCKETPP_INCLUDE_DIR}")
endif()
file(READ "${WEBSOCKETPP_INCLUDE_DIR}/websocketpp/version.hpp" version_header)
set(numbers "")
foreach(part IN ITEMS major minor patch)
  string(REGEX MATCH "static int const ${part}_version = ([0-9]+)" _ "${version_header}")
  list(APPEND numbers "${CMAKE_MATCH_1}")
endforeach()
list(JOIN numbers "." installed_version)
if(NOT installed_version STREQUAL "0.8.2")
  message(FATAL_ERROR "the patches are for websocketpp 0.8.2; these headers are ${installed_version}")
endif()

set(tree "${WORK_DIR}/websocketpp-0.8.2")
file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${tree}")
file(COPY "${WEBSOCKETPP_INCLUDE_DIR}/websocketpp" DESTINATION "${tree}")

file(GLOB patches "${PATCH_DIR}/*.patch")
list(SORT patches)
if(NOT patches)
  message(FATAL_ERROR "no patches in ${PATCH_DIR}")
endif()
foreach(patch_file IN LISTS patches)
  # --dry-run first, so that a patch that does not apply leaves no half-patched file behind.
  foreach(mode IN ITEMS --dry-run --quiet)
    execute_process(COMMAND "${PATCH}" -p1 --batch --forward ${mode} -i "${patch_file}"
      WORKING_DIRECTORY "${tree}" RESULT_VARIABLE result OUTPUT_VARIABLE output ERROR_VARIABLE output)
    if(NOT result EQUAL 0)
      message(FATAL_ERROR "${patch_file} does not apply to websocketpp 0.8.2 (patch ${mode}):\n${output}")
    endif()
  endforeach()
  file(GLOB_RECURSE rejects "${tree}/*.rej" "${tree}/*.orig")
  if(rejects)
    message(FATAL_ERROR "${patch_file} applied with fuzz or rejects: ${rejects}")
  endif()
  message(STATUS "applied ${patch_file}")
endforeach()

set(include_flags "-I${tree}")
if(ASIO_INCLUDE_DIR)
  list(APPEND include_flags "-I${ASIO_INCLUDE_DIR}")
endif()
set(variants "-std=c++20")
if(patches MATCHES "asio")
  list(APPEND variants "-std=c++17;-DASIO_NO_DEPRECATED")
endif()
foreach(variant IN LISTS variants)
  execute_process(
    COMMAND "${CXX_COMPILER}" ${variant} -fsyntax-only -Wall -Wextra -DASIO_STANDALONE -D_WEBSOCKETPP_CPP11_STL_
            ${include_flags} "${PROBE}"
    RESULT_VARIABLE result OUTPUT_VARIABLE output ERROR_VARIABLE output)
  if(NOT result EQUAL 0)
    string(SUBSTRING "${output}" 0 6000 output)
    message(FATAL_ERROR "the patched websocketpp does not compile with ${variant}:\n${output}")
  endif()
  message(STATUS "patched websocketpp compiles with ${variant}")
endforeach()
