# cmake -DHEADER_DIR=include/livecast -P check_includes.cmake
# Fails when a public header names a private dependency in an #include: those
# must stay in src/, so that users need only Asio to compile against livecast.
if(NOT HEADER_DIR OR NOT IS_DIRECTORY "${HEADER_DIR}")
  message(FATAL_ERROR "HEADER_DIR (the include/livecast directory) is not set or missing: '${HEADER_DIR}'")
endif()

file(GLOB_RECURSE headers "${HEADER_DIR}/*.hpp" "${HEADER_DIR}/*.h")
if(NOT headers)
  message(FATAL_ERROR "no headers found under ${HEADER_DIR}")
endif()

set(forbidden "^[ \t]*#[ \t]*include[ \t]*[<\"][ \t]*(websocketpp|rapidjson|hiredis|openssl|fmt)[/.]")
set(offences "")
foreach(header IN LISTS headers)
  file(STRINGS "${header}" includes REGEX "#[ \t]*include")
  foreach(line IN LISTS includes)
    string(TOLOWER "${line}" lowered)
    if(lowered MATCHES "${forbidden}")
      file(RELATIVE_PATH shown "${HEADER_DIR}/.." "${header}")
      string(APPEND offences "  ${shown}: ${line}\n")
    endif()
  endforeach()
endforeach()

list(LENGTH headers count)
if(offences)
  message(FATAL_ERROR "public headers include private dependencies (keep them in src/):\n${offences}")
endif()
message(STATUS "${count} public headers checked: no websocketpp, RapidJSON, hiredis, OpenSSL or fmt includes")
