// LearnerProbe: every metric the online learner exports (DESIGN.md §7 names), in one
// place, so the training loop just calls probe.Trained(n) (Redpanda's probe habit).
//
//   freshet_learner_samples_total                      samples trained
//   freshet_learner_steps_total                        optimizer steps applied
//   freshet_learner_skipped_batches_total{reason}      non_finite_input, non_finite_loss,
//                                                      non_finite_gradient, invalid_batch
//   freshet_learner_skipped_samples_total{reason}      duplicate, unparseable, invalid_sample
//   freshet_learner_non_finite_total{task}             skipped batches per offending task
//   freshet_learner_auc / _gauc / _log_loss / _calibration {task}   prequential, windowed
//   freshet_learner_checkpoints_total, _checkpoint_failures_total,
//   freshet_learner_checkpoint_seconds (histogram), _checkpoint_version, _checkpoint_bytes
//   freshet_learner_evicted_rows_total                 EmbeddingTable::EvictExpired
//   freshet_learner_embedding_rows                     live embedding rows
//   freshet_learner_dedup_entries                      remembered sample_ids
//   freshet_learner_expert_warning{expert,kind}        1 while zero_share / occupancy
//                                                      passes its threshold
//   freshet_learner_expert_warnings_total{kind}        diagnostics rounds that warned
//   freshet_freshness_seconds{stage="trained"}         sample emitted → in a step
// Expert/gate diagnostics themselves come from cpu::ExportDiagnostics.
//
// Thread-safety: metric objects are thread-safe; the probe is used by the training
// thread.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "common/metrics.h"
#include "learner/evaluator.h"
#include "schemas/config.pb.h"

namespace freshet::learner {

class LearnerProbe {
 public:
  LearnerProbe(MetricsRegistry* registry, const std::vector<TaskConfig>& tasks);

  void Trained(int samples) {
    samples_->Inc(samples);
    steps_->Inc();
  }
  void SkippedSample(const std::string& reason);
  // `tasks`: indices of the offending tasks (may be empty).
  void SkippedBatch(const std::string& reason, const std::vector<int>& tasks);
  void Freshness(double seconds) { freshness_->Observe(seconds); }
  void Checkpointed(double seconds, uint64_t version, size_t bytes);
  void CheckpointFailed() { checkpoint_failures_->Inc(); }
  void Evicted(int64_t rows) { evicted_->Inc(static_cast<double>(rows)); }
  void Sizes(int64_t embedding_rows, int64_t dedup_entries);
  void Quality(const std::vector<TaskMetrics>& metrics);
  // Sets the warning gauge of (expert, kind); counts a warning round when on.
  void ExpertWarning(const std::string& expert, const std::string& kind, bool on);
  // After restore, so the lifetime counters continue from the checkpoint.
  void Restored(int64_t samples, int64_t steps);

  MetricsRegistry* registry() const { return registry_; }

 private:
  MetricsRegistry* registry_;
  std::vector<std::string> task_names_;
  Counter* samples_;
  Counter* steps_;
  Histogram* freshness_;
  Counter* checkpoints_;
  Counter* checkpoint_failures_;
  Histogram* checkpoint_seconds_;
  Gauge* checkpoint_version_;
  Gauge* checkpoint_bytes_;
  Counter* evicted_;
  Gauge* embedding_rows_;
  Gauge* dedup_entries_;
  std::vector<Gauge*> auc_, gauc_, log_loss_, calibration_;
};

}  // namespace freshet::learner
