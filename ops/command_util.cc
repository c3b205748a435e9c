// SetUpCommand; see command_util.h.
#include "ops/command_util.h"

#include <cstdio>
#include <cstdlib>

#include <google/protobuf/stubs/logging.h>

#include "common/clock.h"
#include "common/logging.h"
#include "ops/config.h"

namespace freshet::ops {

namespace {

// libprotobuf logs an ERROR line per malformed string it parses; a flood of bad input
// (which the decoder dead-letters anyway) would write one unbounded stderr line per
// message. Its messages go through our logger instead, rate-limited.
void ProtobufLog(google::protobuf::LogLevel level, const char* file, int line, const std::string& message) {
  static RateLimiter limiter(5000);
  int64_t suppressed = 0;
  if (level < google::protobuf::LOGLEVEL_WARNING || !limiter.Allow(Clock::Real()->NowMs(), &suppressed)) return;
  LOG_WARNING("protobuf_log").Kv("message", message).Kv("file", file).Kv("line", line).Kv("suppressed", suppressed);
}

}  // namespace

std::optional<CommandSetup> SetUpCommand(const std::string& name, const std::vector<std::string>& args,
                                         std::set<std::string> with_value, const std::set<std::string>& switches) {
  google::protobuf::SetLogHandler(&ProtobufLog);
  with_value.insert("config");
  auto fail = [&](const Status& s) {
    std::fprintf(stderr, "freshet %s: %s\n", name.c_str(), s.message().c_str());
    return std::nullopt;
  };
  auto flags = Flags::Parse(args, with_value, switches);
  if (!flags.ok()) return fail(flags.status());
  FreshetConfig before_defaults;
  if (flags->Has("replay")) {
    if (flags->Get("replay") != "kuairand")
      return fail(InvalidArgumentError("--replay " + flags->Get("replay") +
                                       ": unknown data set (kuairand is the one there is)"));
    before_defaults.mutable_replay()->set_dataset(flags->Get("replay"));
  }
  auto loaded = LoadEffectiveConfig(flags->Get("config"), before_defaults);
  if (!loaded.ok()) return fail(loaded.status());
  FreshetConfig config = std::move(loaded).value();
  if (flags->Has("kafka")) config.mutable_kafka()->set_bootstrap_servers(flags->Get("kafka"));
  if (flags->Has("data-dir")) config.mutable_store()->set_data_dir(flags->Get("data-dir"));
  if (Status v = Validate(config); !v.ok()) return fail(v);
  return CommandSetup{std::move(flags).value(), std::move(config)};
}

std::string DataDir() {
  const char* env = std::getenv("FRESHET_DATA_DIR");
  return env != nullptr && *env != '\0' ? std::string(env) : std::string(FRESHET_SOURCE_DIR "/../shared/data");
}

void ApplyLogLevel(const FreshetConfig& config) {
  LogLevel level;
  if (ParseLogLevel(config.log_level(), &level)) SetMinLogLevel(level);
}

std::optional<FreshetConfig> SetUpDaemon(const std::string& name, const std::vector<std::string>& args,
                                         int32_t (AdminConfig::*port)() const,
                                         void (AdminConfig::*set_port)(int32_t)) {
  auto setup = SetUpCommand(name, args, {"kafka", "data-dir", "admin-port"}, {});
  if (!setup) return std::nullopt;
  FreshetConfig& config = setup->config;
  auto admin_port = setup->flags.GetInt("admin-port", (config.admin().*port)(), 0, 65535);
  if (!admin_port.ok()) {
    std::fprintf(stderr, "freshet %s: %s\n", name.c_str(), admin_port.status().message().c_str());
    return std::nullopt;
  }
  (config.mutable_admin()->*set_port)(static_cast<int32_t>(*admin_port));
  if (config.kafka().bootstrap_servers().empty()) {
    std::fprintf(stderr,
                 "freshet %s: kafka.bootstrap_servers is empty; pass --kafka HOST:PORT (e.g. the bootstrap= line of "
                 "`freshet kafka`) or use `freshet run`\n",
                 name.c_str());
    return std::nullopt;
  }
  ApplyLogLevel(config);
  LOG_INFO("effective_config").Kv("component", name).Kv("text", ConfigToText(config));
  return std::move(config);
}

}  // namespace freshet::ops
