// Proves the package links and runs: a broker on its own thread takes one
// publication. Exits non-zero when it does not.
#include <livecast/livecast.hpp>

#include <cstdio>

int main() {
  livecast::Broker broker;
  broker.start();
  std::error_code ec = broker.publish("test_package", livecast::Json::object({{"ok", true}}));
  const auto publications = broker.metrics().publications;
  broker.stop();
  if (ec || publications != 1) {
    std::fprintf(stderr, "publish: %s, publications: %llu\n", ec ? ec.message().c_str() : "ok",
                 static_cast<unsigned long long>(publications));
    return 1;
  }
  std::printf("livecast %s: ok\n", LIVECAST_VERSION_STRING);
  return 0;
}
