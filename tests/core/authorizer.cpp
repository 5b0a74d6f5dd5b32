#include "org_member.hpp"

#include <livecast/authorizer.hpp>

#include <doctest/doctest.h>

#include <string>

using namespace livecast;
using livecast_test::member;

TEST_CASE("glob patterns") {
  Principal anyone;
  CHECK(topic_matches("*", "anything:at.all", anyone));
  CHECK(topic_matches("kpi.*", "kpi.revenue", anyone));
  CHECK_FALSE(topic_matches("kpi.*", "kpis.revenue", anyone));
  CHECK(topic_matches("a*b*c", "aXXbYYc", anyone));
  CHECK_FALSE(topic_matches("a*b*c", "aXXbYY", anyone));
  CHECK(topic_matches("t?", "t1", anyone));
  CHECK_FALSE(topic_matches("t?", "t", anyone));
  CHECK_FALSE(topic_matches("t?", "t12", anyone));
  CHECK(topic_matches("exact", "exact", anyone));
  CHECK_FALSE(topic_matches("exact", "exactly", anyone));
  CHECK(topic_matches("*:*", "a:b", anyone));
  CHECK_FALSE(topic_matches("", "a", anyone));
  CHECK(topic_matches("", "", anyone));
}

TEST_CASE("claims are substituted literally and a missing claim matches nothing") {
  Principal acme = member("acme", "viewer");
  CHECK(topic_matches("org:{org}:*", "org:acme:kpi", acme));
  CHECK_FALSE(topic_matches("org:{org}:*", "org:globex:kpi", acme));
  CHECK(topic_matches("user:{id}", "user:viewer@acme", acme));

  Principal no_org;
  CHECK_FALSE(topic_matches("org:{org}:*", "org::kpi", no_org));

  Principal star = member("*", "admin");  // a claim is never a wildcard
  CHECK_FALSE(topic_matches("org:{org}:kpi", "org:acme:kpi", star));
}

TEST_CASE("rules: allow, role-scoped deny, default no") {
  Authorizer auth;
  auth.allow_subscribe("org:{org}:*").deny_subscribe("org:{org}:transactions", "viewer").allow_publish("org:{org}:chat", "admin");

  Principal viewer = member("acme", "viewer"), analyst = member("acme", "analyst"), admin = member("acme", "admin");
  CHECK(auth.allowed(Action::subscribe, "org:acme:kpi.revenue", viewer));
  CHECK_FALSE(auth.allowed(Action::subscribe, "org:acme:transactions", viewer));
  CHECK(auth.allowed(Action::subscribe, "org:acme:transactions", analyst));
  CHECK_FALSE(auth.allowed(Action::subscribe, "org:globex:kpi.revenue", analyst));
  CHECK_FALSE(auth.allowed(Action::publish, "org:acme:chat", analyst));
  CHECK(auth.allowed(Action::publish, "org:acme:chat", admin));
  CHECK_FALSE(auth.allowed(Action::publish, "org:acme:kpi", admin));
  CHECK_FALSE(Authorizer().allowed(Action::subscribe, "x", admin));
}

TEST_CASE("a claim holding the separator or a pattern character matches nothing") {
  // The README's rules; an org whose name an attacker chose reads like part
  // of another org's topic once substituted.
  Authorizer auth;
  auth.allow_subscribe("org:{org}").allow_subscribe("org:{org}:*").deny_subscribe("org:{org}:transactions", "viewer");

  Principal forged = member("acme:transactions", "viewer");
  CHECK_FALSE(auth.allowed(Action::subscribe, "org:acme:transactions", forged));
  CHECK_FALSE(auth.allowed(Action::subscribe, "org:acme:transactions:eu", forged));
  CHECK_FALSE(topic_matches("org:{org}", "org:acme:transactions", forged));

  for (std::string value : {"a:b", "*", "a*", "a?", "{org}", "a{", "a}"}) {
    CAPTURE(value);
    Principal odd = member(value, "analyst");
    CHECK_FALSE(topic_matches("org:{org}", "org:" + value, odd));
    CHECK_FALSE(auth.allowed(Action::subscribe, "org:" + value, odd));
  }
  Principal odd_id = member("acme", "analyst");
  odd_id.id = "alice:admin";
  CHECK_FALSE(topic_matches("user:{id}", "user:alice:admin", odd_id));

  // Ordinary values still work, dots and dashes included.
  Principal acme = member("acme", "viewer"), dotted = member("acme.eu-1", "analyst");
  CHECK(auth.allowed(Action::subscribe, "org:acme:kpi", acme));
  CHECK_FALSE(auth.allowed(Action::subscribe, "org:acme:transactions", acme));
  CHECK(auth.allowed(Action::subscribe, "org:acme.eu-1:transactions", dotted));
}

TEST_CASE("a deny rule whose claim is missing or empty denies what it could deny for any value") {
  Authorizer auth;
  auth.allow_subscribe("org:*", "auditor")                  // auditors read every org
      .allow_subscribe("public:*")                          // everyone reads public topics
      .deny_subscribe("org:{org}:transactions", "viewer");  // viewers never their org's raw feed

  Principal no_org;
  no_org.id = "v1";
  no_org.roles = {"auditor", "viewer"};
  Principal empty_org = no_org;
  empty_org.claims["org"] = "";
  Principal forged = member("acme:x", "viewer");
  forged.roles.push_back("auditor");
  for (const Principal* p : {&no_org, &empty_org, &forged}) {
    CAPTURE(p->claim("org"));
    CHECK_FALSE(auth.allowed(Action::subscribe, "org:acme:transactions", *p));
    CHECK_FALSE(auth.allowed(Action::subscribe, "org:globex:transactions", *p));
    // What the rule could not deny for any value stays allowed.
    CHECK(auth.allowed(Action::subscribe, "org:acme:kpi", *p));
    CHECK(auth.allowed(Action::subscribe, "public:news", *p));
  }

  // The deny rule is the viewers'; an auditor alone is not concerned.
  Principal auditor;
  auditor.roles = {"auditor"};
  CHECK(auth.allowed(Action::subscribe, "org:acme:transactions", auditor));

  // An allow rule whose claim is missing allows nothing.
  Principal analyst;
  analyst.roles = {"analyst"};
  CHECK_FALSE(Authorizer().allow_subscribe("org:{org}:*").allowed(Action::subscribe, "org::kpi", analyst));
}

TEST_CASE("a custom check decides first, or defers") {
  Authorizer auth = Authorizer::subscribe_anything();
  auth.check([](Action, std::string_view topic, const Principal&) -> std::optional<bool> {
    if (topic == "secret") return false;
    return std::nullopt;
  });
  Principal p;
  CHECK_FALSE(auth.allowed(Action::subscribe, "secret", p));
  CHECK(auth.allowed(Action::subscribe, "public", p));
  CHECK_FALSE(auth.allowed(Action::publish, "public", p));
}
