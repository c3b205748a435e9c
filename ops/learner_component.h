// LearnerComponent: the online learner (learner/online_learner.h) with its RocksDB
// store, metrics, publisher (publisher/publisher.h: versions in the same store, pushed
// to publisher.replicas), admin server on admin.learner_port and the freshness
// dashboard (/dashboard, ops/dashboard.h) as one unit. `freshet learn`
// runs one on its own; `freshet run` runs one as the pipeline's front door and adds
// its own checks and status to the same admin server through `configure_admin`.
//
// Thread-safety: Start/Stop from one thread; Progress, running and url from any.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/admin_http.h"
#include "common/metrics.h"
#include "learner/online_learner.h"
#include "ops/dashboard.h"
#include "publisher/publisher.h"
#include "schemas/config.pb.h"
#include "store/kv_store.h"

namespace freshet::ops {

// The admin token in `path` (trailing whitespace trimmed). NotFound / InvalidArgument
// naming the file and the config field when it is missing or empty.
StatusOr<std::string> ReadAdminTokenFile(const std::string& path);

class LearnerComponent {
 public:
  struct Options {
    FreshetConfig config;   // effective and validated
    std::string bootstrap;  // Kafka bootstrap servers
    std::string store_path;
    std::string component = "freshet-learner";
    // Called before the admin server starts, with the component's server and
    // registry: add readiness checks, handlers, metrics, or replace /status.
    std::function<void(AdminServer*, MetricsRegistry*)> configure_admin;
    // The other daemons the dashboard reads besides this learner. nullopt: ingest and
    // the serving replicas at the config's admin ports (the multi-process layout;
    // ports set to 0 are left out).
    std::optional<std::vector<DashboardSource>> dashboard_peers;
  };

  // The default dashboard peers for `config` (see Options::dashboard_peers).
  static std::vector<DashboardSource> PeersFromConfig(const FreshetConfig& config);

  // Opens the store, creates and starts the learner (restoring its newest checkpoint)
  // and the admin server. Errors say what failed and what to do.
  static StatusOr<std::unique_ptr<LearnerComponent>> Start(Options options);
  ~LearnerComponent();  // Stop()

  // Stops intake, drains, writes the final checkpoint, leaves the group, stops the
  // publisher and the admin server. Returns the learner's first error, if any.
  // Idempotent.
  Status Stop();
  // False once the learner has failed (a sticky error); the caller should stop.
  bool running() const { return learner_->error().ok(); }
  learner::LearnerProgress Progress() const { return learner_->Progress(); }
  // The learner's /status object, with a "publisher" member when it publishes.
  std::string StatusJson() const;
  std::string admin_url() const { return admin_->url(); }
  std::string dashboard_url() const { return admin_->url() + "/dashboard"; }
  const Dashboard& dashboard() const { return *dashboard_; }
  MetricsRegistry* metrics() { return &metrics_; }
  // nullptr when publisher.enabled is false.
  publisher::Publisher* publisher() { return publisher_.get(); }

 private:
  LearnerComponent() = default;

  MetricsRegistry metrics_;
  std::unique_ptr<store::KvStore> store_;
  std::unique_ptr<learner::OnlineLearner> learner_;
  std::unique_ptr<publisher::Publisher> publisher_;  // after learner_: destroyed first
  std::unique_ptr<AdminServer> admin_;
  std::unique_ptr<Dashboard> dashboard_;
  bool stopped_ = false;
  Status result_;
};

}  // namespace freshet::ops
