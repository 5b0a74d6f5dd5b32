// The load tools hold thousands of sockets in one process: each raises its
// open-file limit to the hard maximum before connecting.
#pragma once

#include <sys/resource.h>

#include <cstddef>

namespace livecast_bench {

// Raises the soft RLIMIT_NOFILE to the hard one; returns the soft limit now
// in force (what a tool may count on when it plans its connections).
inline std::size_t raise_open_file_limit() {
  rlimit limit{};
  getrlimit(RLIMIT_NOFILE, &limit);
  limit.rlim_cur = limit.rlim_max;
  setrlimit(RLIMIT_NOFILE, &limit);
  getrlimit(RLIMIT_NOFILE, &limit);
  return static_cast<std::size_t>(limit.rlim_cur);
}

}  // namespace livecast_bench
