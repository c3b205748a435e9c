// `freshet serve --config FILE --replica I`: one serving replica as its own process
// (publisher/serving_node.h). Listens for pushed versions on serving.push_base_port
// + I (or --push-port; 0 = a free port), serves admin HTTP and POST /v1/score on
// admin.serving_base_port + I (or --admin-port), and reads the shared HMAC key from
// --hmac-key-file or publisher.hmac_key_file. Prints one line
//   freshet serve: replica=I push_port=P admin=http://127.0.0.1:A
// once both listeners are bound. It serves nothing until the publisher pushes a FULL.
// SIGTERM/SIGINT: stop admin HTTP, then the push listener, exit 0.
#include <cstdio>

#include "common/logging.h"
#include "common/signals.h"
#include "ops/command_util.h"
#include "ops/commands.h"
#include "ops/config.h"
#include "publisher/frame.h"
#include "publisher/serving_node.h"

namespace freshet::ops {

int ServeCommand(const std::vector<std::string>& args) {
  auto setup = SetUpCommand("serve", args, {"replica", "push-port", "admin-port", "hmac-key-file"}, {});
  if (!setup) return 2;
  const FreshetConfig& config = setup->config;
  auto usage = [](const Status& s) {
    std::fprintf(stderr, "freshet serve: %s\n", s.message().c_str());
    return 2;
  };
  auto replica = setup->flags.GetInt("replica", 0, 0, 63);
  if (!replica.ok()) return usage(replica.status());
  publisher::ServingNode::Ports ports;
  for (auto [flag, port] : {std::pair{"push-port", &ports.push}, std::pair{"admin-port", &ports.admin}}) {
    if (!setup->flags.Has(flag)) continue;
    auto value = setup->flags.GetInt(flag, 0, 0, 65535);
    if (!value.ok()) return usage(value.status());
    *port = static_cast<int>(*value);
  }
  auto key = publisher::LoadHmacKey(setup->flags.Get("hmac-key-file", config.publisher().hmac_key_file()));
  if (!key.ok()) return usage(key.status());
  ApplyLogLevel(config);
  LOG_INFO("effective_config").Kv("component", "serve").Kv("text", ConfigToText(config));

  StopFlag stop;
  SignalWatcher watcher(&stop);  // before any thread starts
  auto node = publisher::ServingNode::Start(config, static_cast<int>(*replica), std::move(key).value(), ports);
  if (!node.ok()) {
    std::fprintf(stderr, "freshet serve: %s\n", node.status().ToString().c_str());
    return node.status().code() == StatusCode::kInvalidArgument ? 2 : 1;
  }
  std::printf("freshet serve: replica=%lld push_port=%d admin=%s\n", static_cast<long long>(*replica),
              (*node)->push_port(), (*node)->admin_url().c_str());
  std::fflush(stdout);
  while (!stop.WaitForMs(500)) {
  }
  (*node)->Stop();
  std::printf("summary replica=%lld version=%llu\n", static_cast<long long>(*replica),
              static_cast<unsigned long long>((*node)->replica().version()));
  std::fflush(stdout);
  return 0;
}

}  // namespace freshet::ops
