# Warnings and sanitizers for livecast's own targets (never forced on users).
function(livecast_set_warnings target)
  if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
    target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic)
    if(LIVECAST_WARNINGS_AS_ERRORS)
      target_compile_options(${target} PRIVATE -Werror)
    endif()
    # GCC reads through sanitizer instrumentation poorly and reports
    # std::variant alternatives as maybe-uninitialized (seen with gcc 12, TSan, -O2).
    if(LIVECAST_SANITIZE AND CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
      target_compile_options(${target} PRIVATE -Wno-maybe-uninitialized)
    endif()
    # Asio's handler invocation uses std::atomic_thread_fence, which TSan does
    # not model; gcc says so for every handler. TSan still sees Asio's mutexes.
    if("thread" IN_LIST LIVECAST_SANITIZE AND CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
      target_compile_options(${target} PRIVATE -Wno-tsan)
    endif()
  endif()
endfunction()

# Sanitizers apply to livecast itself and, through its usage requirements, to
# everything in this build that links it; an installed livecast carries none.
function(livecast_set_sanitizers target)
  if(LIVECAST_SANITIZE)
    string(REPLACE ";" "," _sanitizers "${LIVECAST_SANITIZE}")
    target_compile_options(${target} PUBLIC "$<BUILD_INTERFACE:-fsanitize=${_sanitizers};-fno-omit-frame-pointer>")
    target_link_options(${target} PUBLIC "$<BUILD_INTERFACE:-fsanitize=${_sanitizers}>")
  endif()
endfunction()
