// What the fuzz targets share: a check that aborts (libFuzzer then saves the
// input as a crash) and says which property failed.
#pragma once

#include <cstdio>
#include <cstdlib>

// A property of the code under test that must hold for every input.
#define FUZZ_CHECK(condition)                                                                  \
  do {                                                                                         \
    if (!(condition)) {                                                                        \
      std::fprintf(stderr, "fuzz property violated at %s:%d: %s\n", __FILE__, __LINE__, #condition); \
      std::abort();                                                                            \
    }                                                                                          \
  } while (false)
