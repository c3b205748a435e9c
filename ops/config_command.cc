// `freshet config`: print the defaults, print or validate a config file.
#include <cstdio>

#include "ops/commands.h"
#include "ops/config.h"
#include "ops/flags.h"

namespace freshet::ops {

int ConfigCommand(const std::vector<std::string>& args) {
  auto flags = Flags::Parse(args, {"print", "validate"}, {"print-defaults"});
  if (!flags.ok()) {
    std::fprintf(stderr, "freshet config: %s\n", flags.status().message().c_str());
    return 2;
  }
  if (flags->Has("print-defaults")) {
    std::fputs(ConfigToText(DefaultConfig()).c_str(), stdout);
    return 0;
  }
  const bool print = flags->Has("print");
  const std::string path = print ? flags->Get("print") : flags->Get("validate");
  if (path.empty()) {
    std::fprintf(stderr, "freshet config: give one of --print-defaults, --print FILE, --validate FILE\n");
    return 2;
  }
  auto config = LoadEffectiveConfig(path);
  if (!config.ok()) {
    std::fprintf(stderr, "freshet config: %s\n", config.status().message().c_str());
    return 2;
  }
  if (print) {
    std::fputs(ConfigToText(*config).c_str(), stdout);
  } else {
    std::printf("config %s: ok\n", path.c_str());
  }
  return 0;
}

}  // namespace freshet::ops
