// TwinFeed: the learner's side of the TWIN behaviour cache (store/behaviour_cache.h,
// docs/models.md §4). The training loop (and `freshet eval`) call it around each step:
//
//   batch = builder.Finish();
//   feed->Attach(&batch);          // histories of the batch's users, one MultiGet
//   trainer.Train(batch, ...);     // the module ignores behaviours at/after each
//                                  // sample's event time: no future leaks in
//   feed->Record(batch);           // AFTER the step: its engagements are appended
//
// Engagements (a binary task's label observed and positive; action bit t = task t;
// play time from learner.model.twin.play_time_task) are written right after each
// trained step, in their own WriteBatch, as STAGED appends (store/behaviour_cache.h),
// so the next batch and serving's secondary already see them. The checkpoint commits
// them in its own WriteBatch (QueueCommit), so the committed cache is exactly the
// checkpoint's; Create drops whatever is staged (appends made past the newest
// checkpoint, by a run that then stopped), and the replay of the samples past the
// checkpoint appends them again. So a restored learner sees, batch by batch, exactly
// the histories a learner that never stopped saw. The manifest records sequence()
// (ModelManifest.behaviour_cache_sequence) as of just before the checkpoint's batch.
// Projections are not kept here: the trainer saves the projection cache's servable
// entries with its state (learner/cpu/trainer.h).
//
// Metrics: freshet_learner_twin_engagements_total (behaviours appended),
// freshet_learner_twin_history_behaviours (mean history length of the last attached
// batch), freshet_learner_twin_users (RocksDB's estimate of users with a history).
//
// Thread-safety: Attach/Record from the training thread; sequence() from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "common/metrics.h"
#include "common/status.h"
#include "learner/batch.h"
#include "schemas/config.pb.h"
#include "store/behaviour_cache.h"
#include "store/kv_store.h"

namespace freshet::learner {

class TwinFeed {
 public:
  // Adds the behaviour family and its merge operator to `options` when the model has
  // TWIN (learner.model.twin.enabled); otherwise leaves them alone.
  static void ConfigureStore(const ModelConfig& model, store::KvStore::Options* options);

  // nullptr when TWIN is off. InvalidArgument when it is on without a store (the
  // cache lives in RocksDB) or play_time_task names no regression task. Drops the
  // store's staged appends (see above): create the feed before restoring a checkpoint.
  // REQUIRES: `store` opened with ConfigureStore(model, ...); store and metrics (may
  // be null) outlive the feed.
  static StatusOr<std::unique_ptr<TwinFeed>> Create(const ModelConfig& model, const std::vector<TaskConfig>& tasks,
                                                    store::KvStore* store, MetricsRegistry* metrics);

  // Reads the histories of the batch's users into it. DataLoss names a corrupt user.
  [[nodiscard]] Status Attach(Batch* batch);
  // Appends the trained batch's engagements (one write). The store's error if any.
  [[nodiscard]] Status Record(const Batch& batch);

  // Queues the commit of every staged append into `batch`, the checkpoint's.
  [[nodiscard]] Status QueueCommit(store::WriteBatch* batch) const { return cache_.QueueCommit(batch); }

  // The store's newest sequence number (for the checkpoint manifest).
  uint64_t sequence() const { return cache_.sequence(); }
  int64_t appended() const { return appended_; }
  const store::BehaviourCache& cache() const { return cache_; }

 private:
  TwinFeed(store::KvStore* store, int max_len) : store_(store), cache_(store, max_len, /*staged=*/true) {}

  store::KvStore* store_;
  store::BehaviourCache cache_;
  std::vector<bool> binary_task_;  // (T)
  int play_time_task_ = -1;
  int64_t appended_ = 0;
  MetricsRegistry own_metrics_;  // when the caller passes none
  Counter* engagements_ = nullptr;
  Gauge* history_ = nullptr;
};

}  // namespace freshet::learner
