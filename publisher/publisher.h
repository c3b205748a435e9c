// Publisher: the learner daemon's version cutter (DESIGN.md §1.3, §3, §4). It rides
// on the learner's training thread through TrainingLoop::SetPublishHooks, so every
// version is cut from a consistent model (never read while a step runs):
//
//   after each step ─► DeltaTracker::RecordBatch (rows touched)
//   each Tick, every publisher.publish_interval_ms (or on demand):
//     FULL (first cut of a run, every full_every_versions, delta bound hit, unpin)
//       or DELTA (touched rows, evicted keys, dense tensors that changed);
//       nothing when no step ran and no row changed since the last version
//     ─► validation gate: any non-finite value, or a gate_floors task whose
//        prequential AUC is below its floor ─► NOT published:
//          freshet_publisher_blocked_total{reason}++, freshet_publisher_gate_alert = 1,
//          serving stays on the last good version; the next delta still covers
//          everything since that version
//     ─► SnapshotStore::Write (manifest + payload, one WriteBatch)
//     ─► PushClient::Publish (every replica, in the background)
//
// Rollback(V) pushes the stored version V (materialized as FULL) to every replica and
// pins it: no version is cut while pinned. Unpin() clears the pin and has the training
// thread cut a FULL of the newest trained model. Pin() pins the newest published
// version. The pin is stored, so a restarted publisher keeps serving the pinned
// version; otherwise it starts by pushing the newest stored version, and its first
// cut is FULL (what changed before the restart is unknown). Version numbers continue
// from the store.
//
// Metrics: freshet_publisher_version (newest published), freshet_publisher_blocked_total
// {reason}, freshet_publisher_gate_alert, freshet_publisher_versions_total{kind},
// freshet_publisher_bytes_total{kind}, freshet_publisher_delta_overflow_total,
// freshet_publisher_pinned, freshet_publisher_cut_seconds,
// freshet_freshness_seconds{stage="published"}; per replica see push_client.h.
//
//   Publisher::Options o{.config = config.publisher(), .tasks = tasks, .store = db, ...};
//   ASSIGN_OR_RETURN(auto publisher, Publisher::Create(std::move(o)));
//   RETURN_IF_ERROR(publisher->Attach(online_learner->loop()));  // before the learner starts
//   publisher->RegisterAdmin(&admin);                            // /v1/versions, /v1/rollback, ...
//
// Thread-safety: AfterStep/OnTick/CutNow on the training thread; everything else from
// any thread.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/admin_http.h"
#include "common/clock.h"
#include "common/metrics.h"
#include "common/status.h"
#include "learner/training_loop.h"
#include "publisher/delta_tracker.h"
#include "publisher/push_client.h"
#include "publisher/snapshot_store.h"
#include "schemas/config.pb.h"

namespace freshet::publisher {

// Why the gate holds `update` back ("non_finite", "auc_floor"), or "" to publish.
// `detail` (optional) gets a sentence for logs and the admin API.
std::string GateReason(const ModelUpdate& update, const std::vector<learner::TaskMetrics>& metrics,
                       const PublisherConfig& config, std::string* detail = nullptr);

class Publisher {
 public:
  struct Options {
    PublisherConfig config;           // validated
    std::string topic = "samples";    // recorded in manifests' input offsets
    store::KvStore* store = nullptr;  // opened with SnapshotStore::Families(); required
    MetricsRegistry* metrics = nullptr;  // required
    Clock* clock = nullptr;           // nullptr: Clock::Real()
    std::string hmac_key;             // required when config.replicas is not empty
  };
  struct Cut {
    uint64_t version = 0;       // 0: nothing published (blocked or pinned)
    UpdateKind kind = UPDATE_KIND_UNSPECIFIED;
    std::string blocked;        // the gate's reason when blocked
    std::string detail;
  };

  static StatusOr<std::unique_ptr<Publisher>> Create(Options options);
  ~Publisher();  // Stop()

  // Installs the hooks on `loop` and starts pushing. REQUIRES: the loop is not running.
  Status Attach(learner::TrainingLoop* loop);
  // Stops pushing. Idempotent.
  void Stop();

  // Training thread (the hooks call these).
  void AfterStep(const Batch& batch);
  void OnTick();
  // Cuts a version now (FULL when `full`). Errors: the snapshot store failed.
  StatusOr<Cut> CutNow(bool full);

  // Admin, any thread.
  StatusOr<std::vector<ModelManifest>> Versions() const { return snapshots_->List(); }
  // Pushes full `version` to every replica and pins it; waits up to wait_ms for the
  // replicas' acks (a replica that is down gets it when it comes back).
  Status Rollback(uint64_t version, int64_t wait_ms);
  // Pins the newest published version. FailedPrecondition when none exists.
  StatusOr<uint64_t> Pin();
  // Clears the pin and has the training thread cut a FULL; waits up to wait_ms.
  StatusOr<Cut> Unpin(int64_t wait_ms);
  // Asks for a FULL at the next tick.
  void RequestFull();
  std::optional<uint64_t> pinned() const { return snapshots_->pinned(); }
  uint64_t published_version() const;
  std::vector<PushClient::ReplicaState> replicas() const { return push_->Replicas(); }
  bool WaitForReplicas(uint64_t version, int64_t timeout_ms) const { return push_->WaitForVersion(version, timeout_ms); }

  // /readyz: the store is healthy and, when replicas are configured, one is connected.
  Status Ready() const;
  // The "publisher" object of /status.
  std::string StatusJson() const;
  // GET /v1/versions, POST /v1/rollback?to=V, /v1/pin, /v1/unpin (the POSTs need the
  // admin token). Call before admin->Start().
  void RegisterAdmin(AdminServer* admin);

  SnapshotStore& snapshots() { return *snapshots_; }

 private:
  explicit Publisher(Options options);
  Status CutLocked(bool full, Cut* cut);  // REQUIRES: publish_mu_ held, training thread
  void Block(const std::string& reason, const std::string& detail);

  Options options_;
  Clock* clock_;
  learner::TrainingLoop* loop_ = nullptr;
  std::unique_ptr<SnapshotStore> snapshots_;
  std::unique_ptr<DeltaTracker> tracker_;
  std::unique_ptr<PushClient> push_;
  int64_t next_cut_ms_ = 0;                 // training thread
  int64_t admitted_at_last_cut_ = 0;        // training thread
  int versions_since_full_ = 0;             // training thread
  int64_t cut_at_step_ = -1;                // train step of the newest cut; training thread
  // Training thread: the next cut must be FULL (a requested FULL is still owed, or no
  // version was cut yet in this run: what changed before a restart is unknown).
  bool full_next_cut_ = true;
  RateLimiter warn_limiter_{5000};

  // Held from the pin check to the push, so a rollback and a cut never interleave.
  std::mutex publish_mu_;
  mutable std::mutex mu_;
  std::condition_variable unpin_cv_;
  bool full_requested_ = false;      // guarded by mu_
  uint64_t unpin_requested_ = 0;     // guarded by mu_: request counter
  uint64_t unpin_done_ = 0;          // guarded by mu_
  StatusOr<Cut> unpin_result_{Cut{}};  // guarded by mu_
  uint64_t published_ = 0;           // guarded by mu_: newest version published
  int64_t published_at_ms_ = 0;      // guarded by mu_
  std::string last_blocked_;         // guarded by mu_
  Status error_;                     // guarded by mu_: sticky store error

  Gauge* version_gauge_;
  Gauge* alert_gauge_;
  Gauge* pinned_gauge_;
  Histogram* cut_seconds_;
  Histogram* freshness_;
};

}  // namespace freshet::publisher
