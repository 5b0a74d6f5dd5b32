# vcpkg port of livecast, used as an overlay port:
#   vcpkg install livecast[redis] --overlay-ports=<livecast>/ports
# The sources are the checkout this port sits in (two directories up), or the
# directory named by the environment variable LIVECAST_SOURCE_DIR (pass it
# through with VCPKG_KEEP_ENV_VARS=LIVECAST_SOURCE_DIR). A registry port would
# fetch a release instead:
#   vcpkg_from_github(OUT_SOURCE_PATH SOURCE_PATH REPO <owner>/livecast
#                     REF "v${VERSION}" SHA512 <sha512 of the release archive>)
if(DEFINED ENV{LIVECAST_SOURCE_DIR})
  file(TO_CMAKE_PATH "$ENV{LIVECAST_SOURCE_DIR}" SOURCE_PATH)
else()
  get_filename_component(SOURCE_PATH "${CMAKE_CURRENT_LIST_DIR}/../.." ABSOLUTE)
endif()
if(NOT EXISTS "${SOURCE_PATH}/include/livecast/config.hpp")
  message(FATAL_ERROR "livecast sources not found at ${SOURCE_PATH}; set LIVECAST_SOURCE_DIR")
endif()

vcpkg_check_features(OUT_FEATURE_OPTIONS FEATURE_OPTIONS
  FEATURES
    redis LIVECAST_WITH_REDIS
)

vcpkg_cmake_configure(
  SOURCE_PATH "${SOURCE_PATH}"
  OPTIONS
    -DLIVECAST_BUILD_TESTS=OFF
    -DLIVECAST_BUILD_EXAMPLES=OFF
    -DLIVECAST_BUILD_BENCHMARKS=OFF
    -DLIVECAST_INSTALL=ON
    ${FEATURE_OPTIONS}
)
vcpkg_cmake_install()
vcpkg_cmake_config_fixup(CONFIG_PATH lib/cmake/livecast)
vcpkg_fixup_pkgconfig()

file(REMOVE_RECURSE
  "${CURRENT_PACKAGES_DIR}/debug/include"
  "${CURRENT_PACKAGES_DIR}/debug/share")
# The install puts LICENSE under share/doc/livecast; vcpkg wants it as copyright.
file(REMOVE_RECURSE "${CURRENT_PACKAGES_DIR}/share/doc")
vcpkg_install_copyright(FILE_LIST "${SOURCE_PATH}/LICENSE")
file(INSTALL "${CMAKE_CURRENT_LIST_DIR}/usage" DESTINATION "${CURRENT_PACKAGES_DIR}/share/${PORT}")
