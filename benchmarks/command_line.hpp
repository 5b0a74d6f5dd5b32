// The flags of the benchmark programs: `--name` switches and `--name value`
// options, each with the code that stores it. One loop for all of them:
// usage(0) on --help; usage(2) on an unknown name, a missing value, or a value
// its handler cannot convert (std::stoul and friends throw).
#pragma once

#include <exception>
#include <functional>
#include <map>
#include <string>

namespace livecast_bench {

struct CommandLine {
  std::map<std::string, std::function<void()>> switches;
  std::map<std::string, std::function<void(const std::string& value)>> options;

  // `usage` prints and exits.
  void parse(int argc, char** argv, void (*usage)(int)) const {
    for (int i = 1; i < argc; ++i) {
      const std::string name = argv[i];
      if (name == "--help") usage(0);
      if (auto s = switches.find(name); s != switches.end()) {
        s->second();
        continue;
      }
      auto o = options.find(name);
      if (o == options.end() || i + 1 >= argc) {
        usage(2);
        return;
      }
      try {
        o->second(argv[++i]);
      } catch (const std::exception&) {
        usage(2);
      }
    }
  }
};

}  // namespace livecast_bench
