// The smallest livecast program: a broker, one publication, one WebSocket
// endpoint on a free loopback port. Exits non-zero when anything is off.
#include <livecast/livecast.hpp>
#ifdef CONSUMER_WITH_REDIS
#include <livecast/redis_backend.hpp>
#include <livecast/redis_stream_source.hpp>
#endif

#include <cstdio>
#include <cstring>
#include <memory>
#include <stdexcept>

static_assert(LIVECAST_VERSION == LIVECAST_VERSION_MAJOR * 10000 + LIVECAST_VERSION_MINOR * 100 + LIVECAST_VERSION_PATCH,
              "LIVECAST_VERSION is major * 10000 + minor * 100 + patch");

int main() {
#ifdef LIVECAST_EXPECTED_VERSION
  if (std::strcmp(LIVECAST_VERSION_STRING, LIVECAST_EXPECTED_VERSION) != 0) {
    std::fprintf(stderr, "headers say %s, the CMake package says %s\n", LIVECAST_VERSION_STRING,
                 LIVECAST_EXPECTED_VERSION);
    return 1;
  }
#endif

  livecast::Broker broker;
  broker.start();

  livecast::WebSocketSettings settings;
  settings.address = "127.0.0.1";
  settings.port = 0;
  livecast::WebSocketTransport websocket(broker, settings);
  websocket.start();
  if (websocket.port() == 0) {
    std::fprintf(stderr, "the WebSocket transport did not bind a port\n");
    return 1;
  }

  std::error_code ec = broker.publish("sales", livecast::Json::object({{"revenue", 1250.5}, {"currency", "EUR"}}));
  if (ec) {
    std::fprintf(stderr, "publish failed: %s\n", ec.message().c_str());
    return 1;
  }
  const auto publications = broker.metrics().publications;
  websocket.stop();
  broker.stop();
  if (publications != 1) {
    std::fprintf(stderr, "expected 1 publication, the broker counted %llu\n",
                 static_cast<unsigned long long>(publications));
    return 1;
  }

  // JWT verification pulls in OpenSSL's libcrypto: a static livecast must
  // bring it to this link through the package (find_dependency, pkg-config).
  livecast::JwtSettings jwt;
  jwt.keys.push_back(livecast::JwtKey::hs256_secret("a secret of at least thirty-two bytes"));
  auto verifier = std::make_shared<livecast::JwtVerifier>(jwt);
  if (verifier->verify("not.a.token").accepted() || verifier->metrics().malformed != 1) {
    std::fprintf(stderr, "the JWT verifier accepted a malformed token or did not count it\n");
    return 1;
  }

#ifdef CONSUMER_WITH_REDIS
  // Linked, not connected: construction parses the URL; nothing dials out
  // until start(). A malformed URL must be refused.
  livecast::RedisBackendSettings redis;
  redis.url = "redis://127.0.0.1:6379/0";
  livecast::Broker with_redis(livecast::BrokerSettings{}, std::make_unique<livecast::RedisBackend>(redis));
  livecast::RedisStreamSourceSettings feed;
  feed.stream = "events";
  feed.consumer = "consumer-test";
  livecast::RedisStreamSource source(with_redis, feed);
  try {
    redis.url = "http://not-redis";
    livecast::RedisBackend refused(redis);
    std::fprintf(stderr, "a malformed Redis URL was accepted\n");
    return 1;
  } catch (const std::invalid_argument&) {
  }
#endif

  std::printf("livecast %s (%d): ok\n", LIVECAST_VERSION_STRING, LIVECAST_VERSION);
  return 0;
}
