// Decides every subscribe and publish, from clients and from the host's
// server-side joins alike.
#pragma once

#include <livecast/config.hpp>
#include <livecast/principal.hpp>

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

LIVECAST_BEGIN_NAMESPACE

enum class Action { subscribe, publish };

namespace detail {

// What a placeholder stands for when the principal has no value for it that
// can be put into a pattern.
enum class UnusableClaim {
  matches_nothing,   // the pattern matches no topic (allow rules, topic_matches)
  matches_anything,  // the placeholder becomes `*` (deny rules: fail closed)
};

// A value that can stand in a pattern: not empty, and holding neither a
// pattern character (`*`, `?`, `{`, `}`) nor the separator ':', so that it
// fills exactly the one segment its placeholder stands in. "acme:transactions"
// would otherwise make `org:{org}` reach org acme's "transactions" topic.
inline bool substitutable(std::string_view value) noexcept {
  return !value.empty() && value.find_first_of("*?{}:") == std::string_view::npos;
}

inline bool glob_matches(std::string_view pattern, std::string_view topic, const Principal& principal,
                         UnusableClaim unusable) {
  struct Token {
    enum Kind { literal, star, one } kind;
    std::string text;
  };
  std::vector<Token> tokens;
  auto add_literal = [&](std::string_view s) {
    if (s.empty()) return;
    if (!tokens.empty() && tokens.back().kind == Token::literal)
      tokens.back().text.append(s.data(), s.size());
    else
      tokens.push_back({Token::literal, std::string(s)});
  };
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    char c = pattern[i];
    if (c == '*') {
      tokens.push_back({Token::star, {}});
    } else if (c == '?') {
      tokens.push_back({Token::one, {}});
    } else if (c == '{') {
      auto close = pattern.find('}', i);
      if (close == std::string_view::npos) {
        add_literal(pattern.substr(i));
        break;
      }
      std::string key(pattern.substr(i + 1, close - i - 1));
      const std::string& value = key == "id" ? principal.id : principal.claim(key);
      if (substitutable(value)) {
        add_literal(value);
      } else if (unusable == UnusableClaim::matches_anything) {
        // `*` matches every topic the pattern matches with any value in its
        // place, the empty one and the unusable one included.
        tokens.push_back({Token::star, {}});
      } else {
        return false;
      }
      i = close;
    } else {
      add_literal(std::string_view(&pattern[i], 1));
    }
  }
  // Iterative glob match with single-star backtracking over tokens.
  std::size_t t = 0, pos = 0;
  std::size_t star_token = std::string_view::npos, star_pos = 0;
  while (pos < topic.size() || t < tokens.size()) {
    if (t < tokens.size()) {
      const Token& tok = tokens[t];
      if (tok.kind == Token::star) {
        star_token = t++;
        star_pos = pos;
        continue;
      }
      if (tok.kind == Token::one && pos < topic.size()) {
        ++t;
        ++pos;
        continue;
      }
      if (tok.kind == Token::literal && topic.substr(pos, tok.text.size()) == tok.text) {
        ++t;
        pos += tok.text.size();
        continue;
      }
    }
    if (star_token == std::string_view::npos || star_pos >= topic.size()) return false;
    t = star_token + 1;
    pos = ++star_pos;
  }
  return true;
}

}  // namespace detail

// Matches `topic` against a glob `pattern` after substituting the principal's
// claims: `{org}` becomes principal.claim("org"), `{id}` the principal's id.
// `*` matches any run of characters (':' and '.' included), `?` exactly one.
// Substituted values match literally, and only values that fill one segment
// are substituted: a placeholder whose value is missing, empty, or holds `*`,
// `?`, `{`, `}` or ':' makes the pattern match nothing, so a token without an
// org never reaches `org:{org}:*`, and an org named "acme:transactions" never
// reaches "org:acme:transactions" through `org:{org}`.
inline bool topic_matches(std::string_view pattern, std::string_view topic, const Principal& principal) {
  return detail::glob_matches(pattern, topic, principal, detail::UnusableClaim::matches_nothing);
}

// An ordered rule list. Deny rules win over allow rules; with no matching
// allow rule the answer is no. A rule with a role applies only to principals
// that have that role.
//
// Placeholders fail closed. An allow rule whose placeholder has no usable
// value (missing, empty, or holding a pattern character or ':'; see
// topic_matches) allows nothing. A deny rule in that case denies every topic
// it would deny for some value: its placeholder counts as `*`, so a viewer's
// token without an org still cannot read `org:{org}:transactions` of any org.
//
//   Authorizer auth;
//   auth.allow_subscribe("org:{org}:*")              // anyone, in their own org
//       .deny_subscribe("org:{org}:transactions", "viewer")
//       .allow_publish("org:{org}:chat", "admin");
class Authorizer {
 public:
  // A custom check runs before the rules; returning nullopt defers to them.
  using Check = std::function<std::optional<bool>(Action, std::string_view topic, const Principal&)>;

  Authorizer& allow(Action a, std::string pattern, std::string role = {}) {
    rules_.push_back({a, true, std::move(pattern), std::move(role)});
    return *this;
  }
  Authorizer& deny(Action a, std::string pattern, std::string role = {}) {
    rules_.push_back({a, false, std::move(pattern), std::move(role)});
    return *this;
  }
  Authorizer& allow_subscribe(std::string pattern, std::string role = {}) {
    return allow(Action::subscribe, std::move(pattern), std::move(role));
  }
  Authorizer& allow_publish(std::string pattern, std::string role = {}) {
    return allow(Action::publish, std::move(pattern), std::move(role));
  }
  Authorizer& deny_subscribe(std::string pattern, std::string role = {}) {
    return deny(Action::subscribe, std::move(pattern), std::move(role));
  }
  Authorizer& deny_publish(std::string pattern, std::string role = {}) {
    return deny(Action::publish, std::move(pattern), std::move(role));
  }
  Authorizer& check(Check c) {
    checks_.push_back(std::move(c));
    return *this;
  }

  bool allowed(Action a, std::string_view topic, const Principal& p) const {
    for (auto& c : checks_)
      if (auto verdict = c(a, topic, p)) return *verdict;
    bool allow = false;
    for (auto& r : rules_) {
      if (r.action != a) continue;
      if (!r.role.empty() && !p.has_role(r.role)) continue;
      const auto unusable = r.allow ? detail::UnusableClaim::matches_nothing : detail::UnusableClaim::matches_anything;
      if (!detail::glob_matches(r.pattern, topic, p, unusable)) continue;
      if (!r.allow) return false;
      allow = true;
    }
    return allow;
  }

  // The default: any principal may subscribe to any topic; clients publish
  // nothing (the host publishes through Broker::publish).
  static Authorizer subscribe_anything() { return Authorizer().allow_subscribe("*"); }

 private:
  struct Rule {
    Action action;
    bool allow;
    std::string pattern;
    std::string role;
  };
  std::vector<Rule> rules_;
  std::vector<Check> checks_;
};

LIVECAST_END_NAMESPACE
