# Packaging tests, run by ctest as `cmake -DSTEP=... -P run.cmake`:
#   STEP=install           install livecast's build into PREFIX and check the
#                          exported files (and livecast.pc, when pkg-config exists)
#   STEP=find_package      build and run the consumer against PREFIX
#   STEP=add_subdirectory  build and run the consumer with livecast's sources
# Other inputs: LIVECAST_SOURCE_DIR, LIVECAST_BINARY_DIR, CONSUMER_DIR,
# PREFIX, WORK_DIR, CONFIG, GENERATOR, MAKE_PROGRAM, CXX_COMPILER,
# CXX_STANDARD, SANITIZE (comma-separated), WARNINGS_AS_ERRORS, WITH_REDIS
# (1: livecast was built with livecast::redis, so the consumer uses it too).
cmake_minimum_required(VERSION 3.21)

foreach(input IN ITEMS STEP LIVECAST_SOURCE_DIR LIVECAST_BINARY_DIR CONSUMER_DIR PREFIX GENERATOR CXX_COMPILER)
  if(NOT DEFINED ${input} OR "${${input}}" STREQUAL "")
    message(FATAL_ERROR "run.cmake: -D${input}=... is required")
  endif()
endforeach()

# Runs a command, echoing it; stops the test when it fails.
function(run_checked)
  execute_process(COMMAND ${ARGN} COMMAND_ECHO STDOUT RESULT_VARIABLE result)
  if(NOT result EQUAL 0)
    list(JOIN ARGN " " shown)
    message(FATAL_ERROR "failed (${result}): ${shown}")
  endif()
endfunction()

set(parallel --parallel 2)
set(config_args "")
if(CONFIG)
  set(config_args --config "${CONFIG}")
endif()
set(sanitize_flags "")
if(SANITIZE)
  set(sanitize_flags "-fsanitize=${SANITIZE} -fno-omit-frame-pointer")
endif()

# Configures, builds and runs the consumer project in WORK_DIR.
function(build_and_run_consumer)
  if(NOT WORK_DIR OR NOT CXX_STANDARD)
    message(FATAL_ERROR "run.cmake: -DWORK_DIR=... and -DCXX_STANDARD=... are required")
  endif()
  file(REMOVE_RECURSE "${WORK_DIR}")
  set(with_redis OFF)
  if(WITH_REDIS)
    set(with_redis ON)
  endif()
  set(configure "${CMAKE_COMMAND}" -S "${CONSUMER_DIR}" -B "${WORK_DIR}" -G "${GENERATOR}"
      "-DCMAKE_CXX_COMPILER=${CXX_COMPILER}" "-DCMAKE_CXX_STANDARD=${CXX_STANDARD}"
      "-DCMAKE_BUILD_TYPE=${CONFIG}" "-DCONSUMER_WITH_REDIS=${with_redis}" ${ARGN})
  if(MAKE_PROGRAM)
    list(APPEND configure "-DCMAKE_MAKE_PROGRAM=${MAKE_PROGRAM}")
  endif()
  if(SANITIZE)
    # Sanitizers bring their own compiler warnings (gcc's -Wtsan on Asio).
    list(APPEND configure -DCONSUMER_WARNINGS_AS_ERRORS=OFF)
  endif()
  run_checked(${configure})
  run_checked("${CMAKE_COMMAND}" --build "${WORK_DIR}" ${config_args} ${parallel})
  file(GLOB_RECURSE programs "${WORK_DIR}/consumer" "${WORK_DIR}/consumer.exe")
  list(LENGTH programs count)
  if(NOT count EQUAL 1)
    message(FATAL_ERROR "expected one consumer program under ${WORK_DIR}, found: ${programs}")
  endif()
  run_checked(${programs})
endfunction()

if(STEP STREQUAL "install")
  file(REMOVE_RECURSE "${PREFIX}")
  run_checked("${CMAKE_COMMAND}" --install "${LIVECAST_BINARY_DIR}" --prefix "${PREFIX}" ${config_args})

  file(GLOB_RECURSE config_files "${PREFIX}/livecast-config.cmake")
  if(NOT config_files)
    message(FATAL_ERROR "no livecast-config.cmake under ${PREFIX}")
  endif()
  list(GET config_files 0 config_file)
  get_filename_component(package_dir "${config_file}" DIRECTORY)
  foreach(expected IN ITEMS livecast-config-version.cmake livecast-targets.cmake FindLivecastAsio.cmake)
    if(NOT EXISTS "${package_dir}/${expected}")
      message(FATAL_ERROR "${expected} is missing from ${package_dir}")
    endif()
  endforeach()

  # The exported targets name no private dependency and no path of this
  # machine's source or build tree: a consumer needs only Asio and threads.
  file(GLOB target_files "${package_dir}/livecast-targets*.cmake")
  foreach(file IN LISTS target_files)
    file(READ "${file}" text)
    foreach(leak IN ITEMS websocketpp rapidjson hiredis livecast_third_party livecast_asio
                          "${LIVECAST_SOURCE_DIR}" "${LIVECAST_BINARY_DIR}")
      string(FIND "${text}" "${leak}" at)
      if(NOT at EQUAL -1)
        message(FATAL_ERROR "${file} mentions '${leak}'")
      endif()
    endforeach()
    if(file MATCHES "livecast-targets.cmake$"
       AND NOT text MATCHES "INTERFACE_LINK_LIBRARIES \"[^\"]*livecast::asio[^\"]*Threads::Threads")
      message(FATAL_ERROR "${file}: livecast::livecast should link livecast::asio and Threads::Threads")
    endif()
  endforeach()

  file(GLOB_RECURSE pc_files "${PREFIX}/livecast.pc")
  if(NOT pc_files)
    message(FATAL_ERROR "no livecast.pc under ${PREFIX}")
  endif()
  file(GLOB_RECURSE redis_pc_files "${PREFIX}/livecast-redis.pc")
  if(WITH_REDIS AND NOT redis_pc_files)
    message(FATAL_ERROR "no livecast-redis.pc under ${PREFIX}")
  endif()
  find_program(PKG_CONFIG_EXECUTABLE NAMES pkg-config pkgconf)
  if(NOT PKG_CONFIG_EXECUTABLE)
    message(STATUS "pkg-config not found: livecast.pc installed but not tried")
    return()
  endif()
  # Compile the consumer with nothing but pkg-config's flags.
  get_filename_component(pc_dir "${pc_files}" DIRECTORY)
  set(ENV{PKG_CONFIG_PATH} "${pc_dir}")
  execute_process(COMMAND "${PKG_CONFIG_EXECUTABLE}" --cflags --libs livecast
                  OUTPUT_VARIABLE pc_flags OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE result)
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "pkg-config --cflags --libs livecast failed")
  endif()
  message(STATUS "pkg-config: ${pc_flags}")
  string(FIND "${pc_flags}" "-I${PREFIX}/include" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "livecast.pc does not point into ${PREFIX}")
  endif()
  execute_process(COMMAND "${PKG_CONFIG_EXECUTABLE}" --variable=libdir livecast
                  OUTPUT_VARIABLE pc_libdir OUTPUT_STRIP_TRAILING_WHITESPACE)
  separate_arguments(pc_flags UNIX_COMMAND "${pc_flags}")
  # Finds liblivecast.so at run time when livecast was built shared.
  list(APPEND pc_flags "-Wl,-rpath,${pc_libdir}")
  separate_arguments(extra_flags UNIX_COMMAND "${sanitize_flags}")
  set(program "${PREFIX}/../pkg-config-consumer")
  run_checked("${CXX_COMPILER}" -std=c++17 ${extra_flags} "${CONSUMER_DIR}/main.cpp" -o "${program}" ${pc_flags})
  run_checked("${program}")
  if(WITH_REDIS)
    # The Redis component through livecast-redis.pc alone (it requires livecast.pc).
    execute_process(COMMAND "${PKG_CONFIG_EXECUTABLE}" --cflags --libs livecast-redis
                    OUTPUT_VARIABLE redis_flags OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE result)
    if(NOT result EQUAL 0)
      message(FATAL_ERROR "pkg-config --cflags --libs livecast-redis failed")
    endif()
    message(STATUS "pkg-config (redis): ${redis_flags}")
    separate_arguments(redis_flags UNIX_COMMAND "${redis_flags}")
    list(APPEND redis_flags "-Wl,-rpath,${pc_libdir}")
    run_checked("${CXX_COMPILER}" -std=c++17 ${extra_flags} -DCONSUMER_WITH_REDIS "${CONSUMER_DIR}/main.cpp"
                -o "${program}-redis" ${redis_flags})
    run_checked("${program}-redis")
  endif()

elseif(STEP STREQUAL "find_package")
  set(flags "")
  if(sanitize_flags)
    set(flags "-DCMAKE_CXX_FLAGS=${sanitize_flags}" "-DCMAKE_EXE_LINKER_FLAGS=${sanitize_flags}")
  endif()
  build_and_run_consumer("-DCMAKE_PREFIX_PATH=${PREFIX}" -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF ${flags})
  # It must have used the package just installed, not one elsewhere.
  file(STRINGS "${WORK_DIR}/CMakeCache.txt" found REGEX "^livecast_DIR:")
  if(NOT found MATCHES "=${PREFIX}/")
    message(FATAL_ERROR "the consumer found livecast elsewhere: ${found}")
  endif()

elseif(STEP STREQUAL "add_subdirectory")
  build_and_run_consumer("-DLIVECAST_SOURCE_DIR=${LIVECAST_SOURCE_DIR}"
    -DLIVECAST_BUILD_TESTS=OFF -DLIVECAST_BUILD_EXAMPLES=OFF
    "-DLIVECAST_SANITIZE=${SANITIZE}" "-DLIVECAST_WARNINGS_AS_ERRORS=${WARNINGS_AS_ERRORS}")
  if(EXISTS "${WORK_DIR}/livecast/tests" OR EXISTS "${WORK_DIR}/livecast/examples")
    message(FATAL_ERROR "add_subdirectory configured livecast's tests or examples")
  endif()

else()
  message(FATAL_ERROR "run.cmake: unknown STEP '${STEP}'")
endif()
