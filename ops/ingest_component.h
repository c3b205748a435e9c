// IngestComponent: the joiner (ingest/joiner.h) running on its own thread with its
// RocksDB store, its metrics and its admin server, as one unit. `freshet ingest` runs
// one on its own; `freshet run` runs one beside the learner, with the same ports and
// metric names, so the same tools work in both layouts.
//
// Thread-safety: Start/Stop from one thread; stats, running and url from any.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "common/admin_http.h"
#include "common/metrics.h"
#include "common/signals.h"
#include "ingest/joiner.h"
#include "schemas/config.pb.h"
#include "store/kv_store.h"

namespace freshet::ops {

class IngestComponent {
 public:
  // Opens the store at `store_path`, creates the joiner on `bootstrap`, starts the
  // admin server on config.admin().ingest_port() and the joiner's thread. Errors name
  // what failed and what to do (store locked, port taken, ...).
  static StatusOr<std::unique_ptr<IngestComponent>> Start(const FreshetConfig& config, const std::string& bootstrap,
                                                         const std::string& store_path);
  ~IngestComponent();  // Stop()

  // Stops intake, flushes, checkpoints, leaves the group, stops the admin server.
  // Returns the joiner's result (its first error, if any). Idempotent.
  Status Stop();
  // False once the joiner's thread has ended on its own (a sticky error): the caller
  // should stop and report Stop()'s status.
  bool running() const { return running_.load(); }
  ingest::Joiner::Stats stats() const { return joiner_->stats(); }
  std::string admin_url() const { return admin_->url(); }
  const std::string& store_path() const { return store_path_; }

 private:
  IngestComponent() = default;

  std::string store_path_;
  MetricsRegistry metrics_;
  std::unique_ptr<store::KvStore> store_;
  std::unique_ptr<ingest::Joiner> joiner_;
  std::unique_ptr<AdminServer> admin_;
  StopFlag stop_;
  std::thread thread_;
  std::atomic<bool> running_{false};
  Status result_;
  bool stopped_ = false;
};

}  // namespace freshet::ops
