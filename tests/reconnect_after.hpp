// What a test reads back from a CloseCode::reconnect_after (4012) close: the
// delay its reason names ("reconnect after <N> ms", docs/protocol.md). Shared
// by the drain and rebalancing tests; parsed here, not with the library's own
// parser, so that a change of the wire text fails them.
#pragma once

#include <optional>
#include <string>

namespace livecast_test {

// "reconnect after <N> ms" -> N; nullopt for anything else.
inline std::optional<long> reconnect_delay(const std::string& reason) {
  const std::string prefix = "reconnect after ", suffix = " ms";
  if (reason.size() <= prefix.size() + suffix.size() || reason.compare(0, prefix.size(), prefix) != 0 ||
      reason.compare(reason.size() - suffix.size(), suffix.size(), suffix) != 0)
    return std::nullopt;
  const std::string digits = reason.substr(prefix.size(), reason.size() - prefix.size() - suffix.size());
  if (digits.empty() || digits.size() > 9 || digits.find_first_not_of("0123456789") != std::string::npos)
    return std::nullopt;
  return std::stol(digits);
}

}  // namespace livecast_test
