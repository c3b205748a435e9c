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
  auto daemon = SetUpDaemon("ingest", args, &AdminConfig::ingest_port, &AdminConfig::set_ingest_port);
  if (!daemon) return 2;
  const FreshetConfig& config = *daemon;

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
