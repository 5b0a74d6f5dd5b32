# Install rules: the library, its public headers, the CMake package (the same
# livecast::livecast target as in the build tree) and a pkg-config file.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(LIVECAST_INSTALL_CMAKEDIR "${CMAKE_INSTALL_LIBDIR}/cmake/livecast"
    CACHE STRING "Where livecast-config.cmake goes, relative to the prefix")
mark_as_advanced(LIVECAST_INSTALL_CMAKEDIR)

install(TARGETS livecast EXPORT livecast-targets
  ARCHIVE DESTINATION "${CMAKE_INSTALL_LIBDIR}" COMPONENT livecast_development
  LIBRARY DESTINATION "${CMAKE_INSTALL_LIBDIR}" COMPONENT livecast_runtime
          NAMELINK_COMPONENT livecast_development
  RUNTIME DESTINATION "${CMAKE_INSTALL_BINDIR}" COMPONENT livecast_runtime)
install(DIRECTORY "${PROJECT_SOURCE_DIR}/include/livecast"
  DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}" COMPONENT livecast_development
  FILES_MATCHING PATTERN "*.hpp")

# websocketpp and RapidJSON are linked as $<BUILD_INTERFACE:...>, so they stay
# out of this file; Asio and threads are found again by livecast-config.cmake.
install(EXPORT livecast-targets
  FILE livecast-targets.cmake
  NAMESPACE livecast::
  DESTINATION "${LIVECAST_INSTALL_CMAKEDIR}"
  COMPONENT livecast_development)

# The Redis backend is a component of its own (find_package(livecast
# COMPONENTS redis)); its export file is read only when it is asked for.
if(TARGET livecast_redis)
  install(TARGETS livecast_redis EXPORT livecast-redis-targets
    ARCHIVE DESTINATION "${CMAKE_INSTALL_LIBDIR}" COMPONENT livecast_development
    LIBRARY DESTINATION "${CMAKE_INSTALL_LIBDIR}" COMPONENT livecast_runtime
            NAMELINK_COMPONENT livecast_development
    RUNTIME DESTINATION "${CMAKE_INSTALL_BINDIR}" COMPONENT livecast_runtime)
  install(EXPORT livecast-redis-targets
    FILE livecast-redis-targets.cmake
    NAMESPACE livecast::
    DESTINATION "${LIVECAST_INSTALL_CMAKEDIR}"
    COMPONENT livecast_development)
  install(FILES "${CMAKE_CURRENT_LIST_DIR}/FindLivecastHiredis.cmake"
    DESTINATION "${LIVECAST_INSTALL_CMAKEDIR}"
    COMPONENT livecast_development)
endif()

# A static livecast leaves OpenSSL's libcrypto and fmt to the consumer's link step:
# livecast-config.cmake finds them then, and livecast.pc names them in Requires
# (`pkg-config --libs` without --static leaves out Requires.private).
get_target_property(LIVECAST_LIBRARY_TYPE livecast TYPE)
if(LIVECAST_LIBRARY_TYPE STREQUAL "STATIC_LIBRARY")
  set(LIVECAST_PC_REQUIRES "Requires: libcrypto >= 3.0, fmt")
else()
  set(LIVECAST_PC_REQUIRES "Requires.private: libcrypto >= 3.0, fmt")
endif()

configure_package_config_file("${CMAKE_CURRENT_LIST_DIR}/livecast-config.cmake.in"
  "${PROJECT_BINARY_DIR}/livecast-config.cmake"
  INSTALL_DESTINATION "${LIVECAST_INSTALL_CMAKEDIR}")
# The ABI namespace (livecast::v0) changes with the major version.
write_basic_package_version_file("${PROJECT_BINARY_DIR}/livecast-config-version.cmake"
  VERSION "${PROJECT_VERSION}"
  COMPATIBILITY SameMajorVersion)
install(FILES
    "${PROJECT_BINARY_DIR}/livecast-config.cmake"
    "${PROJECT_BINARY_DIR}/livecast-config-version.cmake"
    "${CMAKE_CURRENT_LIST_DIR}/FindLivecastAsio.cmake"
  DESTINATION "${LIVECAST_INSTALL_CMAKEDIR}"
  COMPONENT livecast_development)

# pkg-config. The prefix is filled in at install time, so that
# `cmake --install --prefix DIR` writes a file that points into DIR.
foreach(_livecast_dir IN ITEMS LIBDIR INCLUDEDIR)
  if(IS_ABSOLUTE "${CMAKE_INSTALL_${_livecast_dir}}")
    set(LIVECAST_PC_${_livecast_dir} "${CMAKE_INSTALL_${_livecast_dir}}")
  else()
    set(LIVECAST_PC_${_livecast_dir} "\${prefix}/${CMAKE_INSTALL_${_livecast_dir}}")
  endif()
endforeach()
set(LIVECAST_PC_ASIO_CFLAGS "")
if(LivecastAsio_INCLUDE_DIR AND NOT LivecastAsio_INCLUDE_DIR IN_LIST CMAKE_CXX_IMPLICIT_INCLUDE_DIRECTORIES)
  set(LIVECAST_PC_ASIO_CFLAGS " -I${LivecastAsio_INCLUDE_DIR}")
endif()
set(LIVECAST_PC_PREFIX "@CMAKE_INSTALL_PREFIX@")  # left for the install step
configure_file("${CMAKE_CURRENT_LIST_DIR}/livecast.pc.in" "${PROJECT_BINARY_DIR}/livecast.pc.in" @ONLY)
install(CODE "configure_file(\"${PROJECT_BINARY_DIR}/livecast.pc.in\" \"${PROJECT_BINARY_DIR}/livecast.pc\" @ONLY)"
  COMPONENT livecast_development)
install(FILES "${PROJECT_BINARY_DIR}/livecast.pc"
  DESTINATION "${CMAKE_INSTALL_LIBDIR}/pkgconfig"
  COMPONENT livecast_development)
if(TARGET livecast_redis)
  # A static livecast_redis needs hiredis at link time: -lhiredis, from the
  # library hiredis was found as.
  set(LIVECAST_PC_HIREDIS_LIBS "-lhiredis")
  configure_file("${CMAKE_CURRENT_LIST_DIR}/livecast-redis.pc.in" "${PROJECT_BINARY_DIR}/livecast-redis.pc.in" @ONLY)
  install(CODE "configure_file(\"${PROJECT_BINARY_DIR}/livecast-redis.pc.in\" \"${PROJECT_BINARY_DIR}/livecast-redis.pc\" @ONLY)"
    COMPONENT livecast_development)
  install(FILES "${PROJECT_BINARY_DIR}/livecast-redis.pc"
    DESTINATION "${CMAKE_INSTALL_LIBDIR}/pkgconfig"
    COMPONENT livecast_development)
endif()

install(FILES "${PROJECT_SOURCE_DIR}/LICENSE" DESTINATION "${CMAKE_INSTALL_DOCDIR}" COMPONENT livecast_development)
