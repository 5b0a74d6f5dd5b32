# Overlay port for websocketpp 0.8.2, header-only, on standalone Asio (vcpkg's
# registry no longer carries websocketpp). Used with --overlay-ports=<livecast>/ports.
#
# PLACEHOLDER: the SHA512 below has not been computed; the build machines
# cannot download the archive. The first `vcpkg install` fails and prints the
# archive's real SHA512: check it against a copy you trust, then put it here.
vcpkg_from_github(
  OUT_SOURCE_PATH SOURCE_PATH
  REPO zaphoyd/websocketpp
  REF "${VERSION}"
  SHA512 00000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000
  HEAD_REF master
  PATCHES
    0001-cxx20-no-template-id-on-constructors.patch
)

# Header-only: copy the headers instead of running upstream's CMake, which
# builds examples and tests and installs no headers of its own.
file(INSTALL "${SOURCE_PATH}/websocketpp" DESTINATION "${CURRENT_PACKAGES_DIR}/include"
  FILES_MATCHING PATTERN "*.hpp")
file(INSTALL "${CMAKE_CURRENT_LIST_DIR}/websocketpp-config.cmake" DESTINATION "${CURRENT_PACKAGES_DIR}/share/${PORT}")

file(REMOVE_RECURSE "${CURRENT_PACKAGES_DIR}/debug")
vcpkg_install_copyright(FILE_LIST "${SOURCE_PATH}/COPYING")
