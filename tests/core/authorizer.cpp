#include "org_member.hpp"

#include <livecast/authorizer.hpp>

#include <doctest/doctest.h>

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
  CHECK(topic_matches("org:{org}:kpi", "org:*:kpi", star));
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
