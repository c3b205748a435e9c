// `freshet learn`: the online learner daemon (learner/online_learner.h). Consumes
// `samples` in the consumer group learner.consumer_group, trains continuously, keeps
// checkpoints (state + dedup + consumed offsets, one WriteBatch) in RocksDB under
// store.data_dir/learner, publishes model versions (publisher/publisher.h) to
// publisher.replicas, and serves admin HTTP on admin.learner_port (/healthz,
// /readyz, /metrics, /status, /config). SIGTERM/SIGINT: stop intake, drain, final
// checkpoint, leave the group, exit 0.
#include <cstdio>

#include "common/logging.h"
#include "common/signals.h"
#include "ops/command_util.h"
#include "ops/commands.h"
#include "ops/config.h"
#include "ops/learner_component.h"

namespace freshet::ops {

int LearnCommand(const std::vector<std::string>& args) {
  auto daemon = SetUpDaemon("learn", args, &AdminConfig::learner_port, &AdminConfig::set_learner_port);
  if (!daemon) return 2;
  const FreshetConfig& config = *daemon;

  StopFlag stop;
  SignalWatcher watcher(&stop);  // before any thread starts
  LearnerComponent::Options lopt;
  lopt.config = config;
  lopt.bootstrap = config.kafka().bootstrap_servers();
  lopt.store_path = config.store().data_dir() + "/learner";
  auto learner = LearnerComponent::Start(lopt);
  if (!learner.ok()) {
    std::fprintf(stderr, "freshet learn: %s\n", learner.status().ToString().c_str());
    return 1;
  }
  std::printf("freshet learn: admin %s store=%s group=%s\n", (*learner)->admin_url().c_str(), lopt.store_path.c_str(),
              config.learner().consumer_group().c_str());
  std::fflush(stdout);

  while ((*learner)->running() && !stop.WaitForMs(200)) {
  }
  Status result = (*learner)->Stop();
  const learner::LearnerProgress p = (*learner)->Progress();
  publisher::Publisher* pub = (*learner)->publisher();
  std::printf("summary steps=%lld samples=%lld duplicates=%lld skipped_batches=%lld checkpoint=%llu published=%llu "
              "status=%s\n",
              static_cast<long long>(p.steps), static_cast<long long>(p.samples_trained),
              static_cast<long long>(p.duplicates_skipped), static_cast<long long>(p.skipped_batches),
              static_cast<unsigned long long>(p.checkpoint_version),
              static_cast<unsigned long long>(pub ? pub->published_version() : 0),
              result.ok() ? "ok" : result.ToString().c_str());
  std::fflush(stdout);
  if (!result.ok()) {
    std::fprintf(stderr, "freshet learn: %s (restart: the learner resumes from its last checkpoint)\n",
                 result.ToString().c_str());
    return 1;
  }
  return 0;
}

}  // namespace freshet::ops
