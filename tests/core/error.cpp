// The error codes: every one has a wire name, and errc_count follows the last.
#include <livecast/error.hpp>

#include <doctest/doctest.h>

#include <set>
#include <string>

using namespace livecast;

TEST_CASE("errc_count covers every code, each with its own wire name") {
  std::set<std::string> names;
  for (std::size_t i = 0; i < errc_count; ++i) {
    const std::string name = to_wire_name(static_cast<Errc>(i));
    CHECK_MESSAGE(name != "unknown", "code " << i << " has no wire name");
    names.insert(name);
  }
  CHECK(names.size() == errc_count);
  // A code added after the last one without raising errc_count would have a
  // name here; per-code counters would then index past their array.
  CHECK(std::string(to_wire_name(static_cast<Errc>(errc_count))) == "unknown");
  CHECK(make_error_code(Errc::internal_error).message() == "internal_error");
}
