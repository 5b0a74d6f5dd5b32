// The principal the tests use for "a <role> of <org>": id "<role>@<org>",
// roles {role}, claims {org}, as the dashboard demo's tokens produce.
#pragma once

#include <livecast/principal.hpp>

#include <string>
#include <utility>

namespace livecast_test {

inline livecast::Principal member(std::string org, std::string role) {
  livecast::Principal p;
  p.id = role + "@" + org;
  p.roles = {role};
  p.claims["org"] = std::move(org);
  return p;
}

}  // namespace livecast_test
