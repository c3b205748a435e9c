// TrainingLoop: the single-threaded heart of the online learner. Fed serialized
// Samples with their (partition, offset) by OnlineLearner's training thread (or a
// test), it
//
//   1. parses and validates each sample (bad ones are counted and skipped),
//   2. skips sample_ids already trained within the dedup horizon (SampleDedup),
//   3. cuts a mini-batch at learner.batch_size samples, or when the first pending
//      sample has waited learner.batch_deadline_ms (0: size only),
//   4. numerical guard: non-finite inputs, loss or gradients → the batch is not
//      applied, counted with the offending tasks, logged rate-limited,
//   5. trains one step (origin-dependent loss weights, origin_weights.h) and feeds
//      the predictions made BEFORE the step to the PrequentialEvaluator, through the
//      PrequentialScorer (each impression scored once, against its eventual label),
//   6. on timers: prequential metrics, expert diagnostics + warnings, embedding
//      eviction, and a checkpoint (CheckpointStore: state + dedup + offsets, one
//      WriteBatch) every learner.checkpoint_interval_ms, when there is new work.
//
// Offsets. trained_offsets() is, per partition, the next offset after the last
// record whose effect is in the trained state (trained, or skipped as duplicate/bad).
// Records in the pending partial batch are NOT included, so a checkpoint taken at any
// time plus a replay from its offsets reproduces exactly the same batches.
//
// Stream time. Embedding rows are stamped with, and evicted by, the newest event time
// trained so far rather than the wall clock, and dedup expiry uses event time too, so
// the trained state depends only on the sequence of batches (exact determinism).
// Batch composition is deterministic when batches are cut by size only
// (batch_deadline_ms = 0) and records arrive in a fixed order (one partition, or a
// fixed interleaving); with a deadline, batch boundaries depend on arrival timing.
//
// Thread-safety: Add, Tick, Finish, Checkpoint, Restore and trainer() from ONE thread.
// Progress, trained_offsets and health may be called from any thread.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_set>
#include <vector>

#include "common/clock.h"
#include "common/logging.h"
#include "common/metrics.h"
#include "common/status.h"
#include "learner/batch.h"
#include "learner/checkpoint_store.h"
#include "learner/cpu/trainer.h"
#include "learner/evaluator.h"
#include "learner/prequential_scorer.h"
#include "learner/learner_probe.h"
#include "learner/sample_dedup.h"
#include "learner/sample_source.h"
#include "learner/twin_feed.h"
#include "schemas/config.pb.h"

namespace freshet::store {
class KvStore;
}

namespace freshet::learner {

// What `freshet run`'s progress line and /status show.
struct LearnerProgress {
  int64_t steps = 0;
  int64_t records = 0;             // records consumed (trained, skipped or pending)
  int64_t samples_trained = 0;
  double samples_per_s = 0;        // over the last metrics interval
  int64_t duplicates_skipped = 0;
  int64_t bad_samples = 0;
  int64_t skipped_batches = 0;
  int64_t pending_samples = 0;     // in the partial batch
  std::vector<TaskMetrics> tasks;  // prequential, refreshed every metrics_interval_ms
  uint64_t checkpoint_version = 0; // 0: none yet
  int64_t checkpoint_time_ms = 0;
  int64_t checkpoint_step = 0;
  int64_t checkpoints_written = 0;
  std::map<int32_t, int64_t> trained_offsets;
  std::string error;               // the sticky error, "" when healthy
};

// The task-layout fingerprint ingest stamps on samples (ingest/task_rules.h contract):
// FNV-1a 32 over, per task, name, 0, type byte, 0.
uint32_t TaskLayoutFingerprint(const std::vector<TaskConfig>& tasks);

class TrainingLoop {
 public:
  struct Options {
    LearnerConfig learner;           // validated
    std::vector<TaskConfig> tasks;   // validated, model/tower order
    std::string topic = "samples";   // recorded in the manifest's offsets
    store::KvStore* store = nullptr; // opened with CheckpointStore::Families() (+ TwinFeed::ConfigureStore
                                     // with TWIN); null: no checkpoints (and no TWIN)
    MetricsRegistry* metrics = nullptr;  // required; outlives the loop
    Clock* clock = nullptr;          // nullptr: Clock::Real()
    // Immediate-policy impressions are scored once their longest window plus this
    // grace has passed in stream time (ingest.allowed_lateness_ms).
    int64_t label_grace_ms = 5000;
  };

  // InvalidArgument for a model/task config the trainer refuses.
  static StatusOr<std::unique_ptr<TrainingLoop>> Create(Options options);

  // Loads the newest checkpoint that verifies. false: none (fresh start). Errors:
  // every checkpoint corrupt, or written for another model config (the message says
  // what to do).
  StatusOr<bool> Restore();

  // One consumed record. Trains when the batch is full. Errors are fatal (checkpoint
  // failures); bad samples are counted, not errors.
  Status Add(const SourceRecord& record);
  // Timers: deadline batch, metrics, diagnostics, checkpoint. Call at least every
  // MsUntilNextTimer() ms.
  Status Tick();
  int64_t MsUntilNextTimer() const;
  // Stop: trains the partial batch (unless size-only batching: then it is left for
  // the replay after restart), then checkpoints.
  Status Finish();
  // Writes a checkpoint now (pending samples excluded, see the header comment).
  Status Checkpoint();

  LearnerProgress Progress() const;
  std::map<int32_t, int64_t> trained_offsets() const;
  // OK, or the first fatal error (sticky).
  Status health() const;

  // Publisher hooks (publisher/publisher.h), called on the training thread so the
  // publisher reads a consistent model: after_step after every optimizer step attempt
  // (the batch's ids may have been admitted even when the step was refused), on_tick
  // at the end of every Tick. Set before the loop runs.
  struct PublishHooks {
    std::function<void(const Batch&)> after_step;
    std::function<void()> on_tick;
  };
  void SetPublishHooks(PublishHooks hooks) { publish_hooks_ = std::move(hooks); }
  // What a version's manifest records about the trained state (training thread).
  struct TrainedStamp {
    int64_t steps = 0;
    int64_t newest_event_ms = 0;  // stream time: newest event time trained
    int64_t newest_emit_ms = 0;   // newest sample emit time trained
  };
  TrainedStamp trained_stamp() const { return {steps_.load(), stream_time_ms_, newest_emit_ms_}; }

  // Test hook: sees (and may alter) each batch after it is built, before the guard.
  void SetBatchHookForTest(std::function<void(Batch*)> hook) { batch_hook_ = std::move(hook); }
  cpu::Trainer<float>& trainer() { return *trainer_; }
  // The TWIN behaviour feed (twin_feed.h); null unless learner.model.twin.enabled.
  TwinFeed* twin_feed() { return twin_.get(); }
  int pending_samples() const { return builder_.size(); }

 private:
  explicit TrainingLoop(Options options);
  Status TrainPending();
  Status Fail(Status s);
  void RefreshMetrics(int64_t now_ms);
  void RunDiagnostics();
  std::string SaveLoopState() const;
  Status LoadLoopState(std::string_view bytes);

  Options options_;
  Clock* clock_;
  std::unique_ptr<cpu::Trainer<float>> trainer_;
  std::unique_ptr<CheckpointStore> checkpoints_;
  std::unique_ptr<TwinFeed> twin_;  // histories in, engagements out around each step
  LearnerProbe probe_;
  PrequentialEvaluator evaluator_;
  PrequentialScorer scorer_;  // feeds evaluator_: each impression once (prequential_scorer.h)
  SampleDedup dedup_;
  BatchBuilder builder_;
  std::function<void(Batch*)> batch_hook_;
  PublishHooks publish_hooks_;
  RateLimiter warn_limiter_{5000};
  int min_batch_ = 1;  // 2 when the model has BatchNorm
  bool last_step_ok_ = false;  // the model's last forward is a trained batch (diagnostics)
  std::atomic<int> pending_count_{0};

  // The pending partial batch, row-aligned with builder_.
  std::vector<PrequentialScorer::Row> pending_rows_;  // what the scorer needs per pending sample
  std::vector<SampleOrigin> pending_origins_;
  std::vector<uint64_t> pending_ids_;
  std::vector<int64_t> pending_event_ms_;
  std::vector<int64_t> pending_emit_ms_;
  std::unordered_set<uint64_t> pending_set_;
  std::map<int32_t, int64_t> pending_offsets_;  // next offset, records since the last cut
  int64_t first_pending_ms_ = 0;

  // Loop state saved with each checkpoint.
  int64_t stream_time_ms_ = 0;       // newest event time trained
  int64_t newest_emit_ms_ = 0;
  int64_t last_evict_stream_ms_ = 0;
  std::atomic<int64_t> records_{0}, steps_{0}, samples_{0}, duplicates_{0}, bad_{0}, skipped_batches_{0};

  // Timers (wall clock).
  int64_t next_checkpoint_ms_ = 0, next_metrics_ms_ = 0, next_diagnostics_ms_ = 0;
  int64_t rate_mark_ms_ = 0, rate_mark_samples_ = 0;

  mutable std::mutex mu_;
  std::map<int32_t, int64_t> trained_offsets_;  // guarded by mu_
  std::map<int32_t, int64_t> checkpointed_offsets_;  // of the newest checkpoint; guarded by mu_
  std::vector<TaskMetrics> task_metrics_;       // guarded by mu_
  double samples_per_s_ = 0;                    // guarded by mu_
  uint64_t checkpoint_version_ = 0;             // guarded by mu_
  int64_t checkpoint_time_ms_ = 0, checkpoint_step_ = 0, checkpoints_written_ = 0;  // guarded by mu_
  Status error_;                                // guarded by mu_
};

}  // namespace freshet::learner
