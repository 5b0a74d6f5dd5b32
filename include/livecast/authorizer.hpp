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

// Matches `topic` against a glob `pattern` after substituting the principal's
// claims: `{org}` becomes principal.claim("org"), `{id}` the principal's id.
// `*` matches any run of characters (':' and '.' included), `?` exactly one.
// A placeholder whose claim is missing or empty makes the pattern match
// nothing, so a token without an org never reaches `org:{org}:*`. Substituted
// values match literally: a claim of "*" is not a wildcard.
inline bool topic_matches(std::string_view pattern, std::string_view topic, const Principal& principal) {
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
      if (value.empty()) return false;
      add_literal(value);
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

// An ordered rule list. Deny rules win over allow rules; with no matching
// allow rule the answer is no. A rule with a role applies only to principals
// that have that role.
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
      if (!topic_matches(r.pattern, topic, p)) continue;
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
