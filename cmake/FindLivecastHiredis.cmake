# Finds hiredis (only its reply reader is used) for livecast's Redis backend
# and defines livecast::hiredis. Shipped with the installed package, so that a
# static livecast::redis finds hiredis again on the consumer's machine.
#   LivecastHiredis_INCLUDE_DIR  the directory that holds hiredis/hiredis.h
#   LivecastHiredis_LIBRARY      the hiredis library
# hiredis >= 1.0 (and Conan's, vcpkg's) installs a CMake package with hiredis::hiredis.
find_package(hiredis CONFIG QUIET)
if(TARGET hiredis::hiredis)
  if(NOT TARGET livecast::hiredis)
    add_library(livecast::hiredis INTERFACE IMPORTED)
    set_target_properties(livecast::hiredis PROPERTIES INTERFACE_LINK_LIBRARIES hiredis::hiredis)
  endif()
  set(LivecastHiredis_FOUND TRUE)
  return()
endif()

# Otherwise (Debian's 0.14 has no target): pkg-config, then a plain search.
find_package(PkgConfig QUIET)
if(PKG_CONFIG_FOUND)
  pkg_check_modules(PC_LivecastHiredis QUIET hiredis)
endif()
find_path(LivecastHiredis_INCLUDE_DIR hiredis/hiredis.h HINTS ${PC_LivecastHiredis_INCLUDE_DIRS})
find_library(LivecastHiredis_LIBRARY NAMES hiredis HINTS ${PC_LivecastHiredis_LIBRARY_DIRS})
mark_as_advanced(LivecastHiredis_INCLUDE_DIR LivecastHiredis_LIBRARY)

include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(LivecastHiredis
  REQUIRED_VARS LivecastHiredis_LIBRARY LivecastHiredis_INCLUDE_DIR)

if(LivecastHiredis_FOUND AND NOT TARGET livecast::hiredis)
  add_library(livecast::hiredis UNKNOWN IMPORTED)
  set_target_properties(livecast::hiredis PROPERTIES
    IMPORTED_LOCATION "${LivecastHiredis_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${LivecastHiredis_INCLUDE_DIR}")
endif()
