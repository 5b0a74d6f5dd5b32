// Reading livecast.v1 messages in tests without a JSON parser: the protocol
// writes publications as {"topic":...,"offset":N,"data":...}, replies with
// "id"/"ok"/"error" first.
#pragma once

#include <doctest/doctest.h>

#include <cstdint>
#include <string>
#include <vector>

namespace livecast_test {

inline bool is_publication(const std::string& m) { return m.rfind("{\"topic\":", 0) == 0; }
inline bool has(const std::string& m, const std::string& part) { return m.find(part) != std::string::npos; }

inline std::uint64_t number_after(const std::string& m, const std::string& key) {
  auto at = m.find("\"" + key + "\":");
  REQUIRE(at != std::string::npos);
  return std::stoull(m.substr(at + key.size() + 3));
}

inline std::string string_after(const std::string& m, const std::string& key) {
  auto at = m.find("\"" + key + "\":\"");
  REQUIRE(at != std::string::npos);
  auto start = at + key.size() + 4;
  return m.substr(start, m.find('"', start) - start);
}

inline std::vector<std::uint64_t> publication_offsets(const std::vector<std::string>& received) {
  std::vector<std::uint64_t> r;
  for (auto& m : received)
    if (is_publication(m)) r.push_back(number_after(m, "offset"));
  return r;
}

}  // namespace livecast_test
