// `freshet ingest`: the ingest daemon. Joins `impressions` with `labels` into
// `samples` (ingest/joiner.h), keeps join state and input offsets in RocksDB under
// store.data_dir/ingest, serves admin HTTP on admin.ingest_port. SIGTERM/SIGINT:
// stop intake, flush, checkpoint, leave the group, exit 0.
#include <cstdio>

#include "common/logging.h"
#include "common/signals.h"
#include "ops/command_util.h"
#include "ops/commands.h"
#include "ops/config.h"
#include "ops/ingest_component.h"

namespace freshet::ops {

int IngestCommand(const std::vector<std::string>& args) {
  auto setup = SetUpCommand("ingest", args, {"kafka", "data-dir", "admin-port"}, {});
  if (!setup) return 2;
  FreshetConfig& config = setup->config;
  auto port = setup->flags.GetInt("admin-port", config.admin().ingest_port(), 0, 65535);
  if (!port.ok()) {
    std::fprintf(stderr, "freshet ingest: %s\n", port.status().message().c_str());
    return 2;
  }
  config.mutable_admin()->set_ingest_port(static_cast<int>(*port));
  if (config.kafka().bootstrap_servers().empty()) {
    std::fprintf(stderr, "freshet ingest: kafka.bootstrap_servers is empty; pass --kafka HOST:PORT (e.g. the "
                         "bootstrap= line of `freshet kafka`) or use `freshet run`\n");
    return 2;
  }
  ApplyLogLevel(config);
  LOG_INFO("effective_config").Kv("component", "ingest").Kv("text", ConfigToText(config));

  StopFlag stop;
  SignalWatcher watcher(&stop);  // before any thread starts
  const std::string store_path = config.store().data_dir() + "/ingest";
  auto ingest = IngestComponent::Start(config, config.kafka().bootstrap_servers(), store_path);
  if (!ingest.ok()) {
    std::fprintf(stderr, "freshet ingest: %s\n", ingest.status().ToString().c_str());
    return 1;
  }
  std::printf("freshet ingest: admin %s store=%s group=%s\n", (*ingest)->admin_url().c_str(), store_path.c_str(),
              config.ingest().consumer_group().c_str());
  std::fflush(stdout);

  while ((*ingest)->running() && !stop.WaitForMs(200)) {
  }
  Status result = (*ingest)->Stop();
  const auto st = (*ingest)->stats();
  std::printf("summary events=%llu samples=%llu deadletters=%llu checkpoints=%llu status=%s\n",
              static_cast<unsigned long long>(st.events), static_cast<unsigned long long>(st.samples),
              static_cast<unsigned long long>(st.deadletters), static_cast<unsigned long long>(st.checkpoints),
              result.ok() ? "ok" : result.ToString().c_str());
  std::fflush(stdout);
  if (!result.ok()) {
    std::fprintf(stderr, "freshet ingest: %s (restart: the joiner resumes from its last checkpoint)\n",
                 result.ToString().c_str());
    return 1;
  }
  return 0;
}

}  // namespace freshet::ops
