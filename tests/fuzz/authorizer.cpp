// Fuzzes the Authorizer: topic_matches and Authorizer::allowed, with patterns,
// topics, roles and claim values all taken from the input.
//
// Properties, for every input:
// - both agree with a reference written from their documentation alone
//   (substitution, then a dynamic-programming glob match; deny wins, then
//   any allow, else no), which shares no code with the backtracking matcher;
// - a claim value fills exactly one segment: when `org:{org}:*` matches a
//   topic, the topic's second ':'-separated segment is the org claim itself,
//   whatever the claim holds (':' included);
// - deny rules fail closed: when a deny rule refuses a topic for some usable
//   value of a claim (the input's, or any segment of the topic), a principal
//   whose claim is missing, empty or unusable is refused that topic too.
#include "fuzz_check.hpp"

#include <livecast/authorizer.hpp>

#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

using namespace livecast;

namespace {

// --- the reference, from authorizer.hpp's comments -------------------------

struct PatternItem {
  enum Kind { character, any_run, any_one } kind;
  char c = 0;
};

bool usable_value(std::string_view v) {
  if (v.empty()) return false;
  for (char c : v)
    if (c == '*' || c == '?' || c == '{' || c == '}' || c == ':') return false;
  return true;
}

// The pattern with its placeholders replaced, one item per character; an
// unusable value makes an allow pattern match nothing (nullopt) and stands
// for any run of characters in a deny pattern. From a '{' with no '}' after
// it, the rest of the pattern is literal text, '*' and '?' included.
std::optional<std::vector<PatternItem>> expand(std::string_view pattern, const Principal& p, bool deny) {
  std::vector<PatternItem> items;
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '{' && pattern.find('}', i) == std::string_view::npos) {
      for (; i < pattern.size(); ++i) items.push_back({PatternItem::character, pattern[i]});
      break;
    }
    if (c == '*') {
      items.push_back({PatternItem::any_run});
    } else if (c == '?') {
      items.push_back({PatternItem::any_one});
    } else if (c == '{') {
      const std::size_t close = pattern.find('}', i);
      const std::string key(pattern.substr(i + 1, close - i - 1));
      const std::string value = key == "id" ? p.id : (p.claims.count(key) ? p.claims.at(key) : std::string());
      if (usable_value(value)) {
        for (char v : value) items.push_back({PatternItem::character, v});
      } else if (deny) {
        items.push_back({PatternItem::any_run});
      } else {
        return std::nullopt;
      }
      i = close;
    } else {
      items.push_back({PatternItem::character, c});
    }
  }
  return items;
}

bool glob(const std::vector<PatternItem>& items, std::string_view topic) {
  // matches[j]: the items so far match topic's first j characters.
  std::vector<char> matches(topic.size() + 1, 0), next(topic.size() + 1, 0);
  matches[0] = 1;
  for (const PatternItem& item : items) {
    next.assign(topic.size() + 1, 0);
    for (std::size_t j = 0; j <= topic.size(); ++j) {
      if (item.kind == PatternItem::any_run) {
        next[j] = matches[j] || (j > 0 && next[j - 1]);
      } else if (j > 0 && matches[j - 1]) {
        next[j] = item.kind == PatternItem::any_one || topic[j - 1] == item.c;
      }
    }
    matches.swap(next);
  }
  return matches[topic.size()] != 0;
}

bool reference_matches(std::string_view pattern, std::string_view topic, const Principal& p, bool deny) {
  auto items = expand(pattern, p, deny);
  return items && glob(*items, topic);
}

struct Rule {
  Action action;
  bool allow;
  std::string pattern;
  std::string role;
};

bool reference_allowed(const std::vector<Rule>& rules, Action a, std::string_view topic, const Principal& p) {
  bool allowed = false;
  for (const Rule& r : rules) {
    if (r.action != a || (!r.role.empty() && !p.has_role(r.role))) continue;
    if (!reference_matches(r.pattern, topic, p, !r.allow)) continue;
    if (!r.allow) return false;
    allowed = true;
  }
  return allowed;
}

// --- input -----------------------------------------------------------------

// Text from the front of the input; mapped onto a small alphabet when a bit
// from the back says so, so that patterns, topics and claims meet often.
std::string fuzz_text(FuzzedDataProvider& in, std::size_t max) {
  static constexpr char alphabet[] = "ab:*?{}.org";
  const bool small_alphabet = in.ConsumeBool();
  std::string out = in.ConsumeRandomLengthString(max);
  if (small_alphabet)
    for (char& c : out) c = alphabet[static_cast<unsigned char>(c) % (sizeof alphabet - 1)];
  return out;
}

std::vector<std::string> segments(std::string_view topic) {
  std::vector<std::string> out;
  while (true) {
    const std::size_t colon = topic.find(':');
    out.emplace_back(topic.substr(0, colon));
    if (colon == std::string_view::npos) return out;
    topic.remove_prefix(colon + 1);
  }
}

Principal with_org(Principal p, std::optional<std::string> org) {
  if (org)
    p.claims["org"] = *org;
  else
    p.claims.erase("org");
  return p;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
  FuzzedDataProvider in(bytes, size);

  Principal principal;
  principal.id = fuzz_text(in, 32);
  if (in.ConsumeBool()) principal.claims["org"] = fuzz_text(in, 32);
  if (in.ConsumeBool()) principal.claims["team"] = fuzz_text(in, 32);
  if (in.ConsumeBool()) principal.roles.push_back(in.ConsumeBool() ? "viewer" : "admin");

  std::vector<Rule> rules(in.ConsumeIntegralInRange<std::size_t>(0, 4));
  for (Rule& r : rules) {
    r.action = in.ConsumeBool() ? Action::subscribe : Action::publish;
    r.allow = in.ConsumeBool();
    r.pattern = fuzz_text(in, 32);
    const int role = in.ConsumeIntegralInRange<int>(0, 2);
    r.role = role == 0 ? "" : role == 1 ? "viewer" : "admin";
  }
  const std::string pattern = fuzz_text(in, 32);
  const std::string topic = fuzz_text(in, 64);

  // The matcher against the reference.
  const bool matches = topic_matches(pattern, topic, principal);
  FUZZ_CHECK(matches == reference_matches(pattern, topic, principal, /*deny=*/false));

  // The rule list against the reference.
  Authorizer authorizer;
  for (const Rule& r : rules) {
    if (r.allow)
      authorizer.allow(r.action, r.pattern, r.role);
    else
      authorizer.deny(r.action, r.pattern, r.role);
  }
  for (Action a : {Action::subscribe, Action::publish})
    FUZZ_CHECK(authorizer.allowed(a, topic, principal) == reference_allowed(rules, a, topic, principal));

  // A claim fills one segment, never more.
  if (topic_matches("org:{org}:*", topic, principal)) {
    const std::vector<std::string> parts = segments(topic);
    FUZZ_CHECK(parts.size() >= 3 && parts[0] == "org" && parts[1] == principal.claim("org"));
  }
  if (topic_matches("user:{id}", topic, principal)) FUZZ_CHECK(topic == "user:" + principal.id);

  // Deny rules fail closed: what the fuzzed pattern denies for some usable
  // org, it denies to a principal without a usable org.
  Authorizer deny_one = Authorizer().allow_subscribe("*").deny_subscribe(pattern);
  std::vector<std::string> orgs = segments(topic);
  orgs.push_back(principal.claim("org"));
  bool denied_for_some_org = false;
  for (const std::string& org : orgs) {
    if (!usable_value(org)) continue;
    if (!deny_one.allowed(Action::subscribe, topic, with_org(principal, org))) {
      denied_for_some_org = true;
      break;
    }
  }
  if (denied_for_some_org) {
    FUZZ_CHECK(!deny_one.allowed(Action::subscribe, topic, with_org(principal, std::nullopt)));
    FUZZ_CHECK(!deny_one.allowed(Action::subscribe, topic, with_org(principal, std::string())));
    FUZZ_CHECK(!deny_one.allowed(Action::subscribe, topic, with_org(principal, principal.claim("org") + ":x")));
    FUZZ_CHECK(!deny_one.allowed(Action::subscribe, topic, with_org(principal, "*")));
  }
  return 0;
}
