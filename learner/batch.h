// Batch: B training samples laid out column-wise, the learner's in-memory input
// (DESIGN.md §3). Built from freshet::Sample protos by BatchBuilder.
//
//   sparse[s]   one CSR per configured sparse slot s (TorchRec's KeyedJaggedTensor)
//                 sample:    0        1     2
//                 ids:     [ 17 42 | ∅  | 5 9 9 ]     uint64, all bags back to back
//                 offsets: [ 0      2    2       5 ]  B+1 entries; bag b = ids[o[b], o[b+1])
//   dense       (B, D)  row b = sample b's dense slots in config order; missing slot = 0
//   labels      (B, T)  task t's label (binary 0/1 or regression value)
//   masks       (B, T)  1 when the label is observed and the sample is in t's space
//   weights     (B, T)  per-sample importance weight (1 unless a label policy sets it)
//   user_ids, item_ids, event_times_ms   (B) each: the TWIN module's keys and request times
//   behaviours  long-term histories (TWIN), CSR like a sparse slot, oldest first:
//                 history h is behaviours[behaviour_offsets[h], behaviour_offsets[h+1]);
//                 sample b reads history behaviour_history[b], or history b when that
//                 is empty (rows of one user share one history: serving's candidates);
//                 offsets empty = no histories attached (AttachBehaviours fills them)
//
// Thread-safety: plain value.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include <Eigen/Core>

#include "common/status.h"
#include "schemas/model_config.pb.h"
#include "schemas/sample.pb.h"
#include "store/behaviour_cache.h"

namespace freshet {

using RowMatrixF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

struct Batch {
  struct SparseSlot {
    std::vector<uint64_t> ids;      // all bags back to back
    std::vector<int32_t> offsets;   // (B+1), offsets[0] = 0
  };
  int size = 0;                     // B
  std::vector<SparseSlot> sparse;   // one per ModelConfig.sparse_slots entry
  RowMatrixF dense;                 // (B, D)
  RowMatrixF labels;                // (B, T)
  RowMatrixF masks;                 // (B, T)
  RowMatrixF weights;               // (B, T)
  // Newest event time among the samples (for freshness and embedding timestamps).
  int64_t max_event_time_ms = 0;
  std::vector<uint64_t> user_ids;              // (B), or empty
  std::vector<uint64_t> item_ids;              // (B), or empty
  std::vector<int64_t> event_times_ms;         // (B), or empty
  std::vector<store::Behaviour> behaviours;    // all histories back to back
  std::vector<int32_t> behaviour_offsets;      // (H+1), or empty
  std::vector<int32_t> behaviour_history;      // (B) history of each sample, or empty: H = B
};

// True when behaviour_offsets and behaviour_history describe behaviours: offsets
// non-decreasing from 0 to behaviours.size(), one history per sample or an index in
// range for each. REQUIRES: offsets non-empty (histories attached).
bool BehavioursDescribed(const Batch& batch);
// Reads the histories of the batch's users (one MultiGet of the distinct users) into
// batch->behaviours; samples of one user share one history.
// REQUIRES: batch->user_ids has B entries (BatchBuilder fills it).
[[nodiscard]] Status AttachBehaviours(const store::BehaviourCache& cache, Batch* batch);
// Attaches given histories (oldest first) the same way. row_history empty: one
// history per row (histories has B entries); otherwise row b reads
// histories[row_history[b]] (serving: one request's history for all its candidates).
// InvalidArgument when the counts or indices do not fit the batch.
[[nodiscard]] Status AttachHistories(const std::vector<std::vector<store::Behaviour>>& histories, Batch* batch,
                                     const std::vector<int32_t>& row_history = {});

// Queues the batch's engagements as appends to their users' histories: a sample
// engaged when a binary task's label is observed and positive; action bit t = task t
// positive; play_ms = 1000 × the label of task `play_time_task` (−1: none). Call it
// AFTER the batch is trained so no sample sees its own engagement.
// binary_task: (T) whether task t is binary.
void QueueEngagements(const Batch& batch, const std::vector<bool>& binary_task, int play_time_task,
                      const store::BehaviourCache& cache, store::WriteBatch* out);

// Accumulates Samples into a Batch. The slot layout comes from the ModelConfig;
// the task count from the task list.
//
// Thread-safety: none.
class BatchBuilder {
 public:
  // expected_task_layout: Sample.task_layout must equal it; 0 skips the check.
  BatchBuilder(const ModelConfig& model, int num_tasks, uint32_t expected_task_layout = 0);

  // Appends one sample. InvalidArgument (and nothing appended) when the label, mask
  // or weight counts do not match the task count, a dense slot has the wrong width,
  // or the task layout differs. Sparse/dense slots the config does not know are
  // skipped and counted in unknown_slot_features().
  [[nodiscard]] Status Add(const Sample& sample);
  int size() const { return static_cast<int>(labels_.size()) / std::max(1, num_tasks_); }
  // Returns the batch of everything added since the last Finish and starts anew.
  Batch Finish();

  int64_t unknown_slot_features() const { return unknown_slot_features_; }
  int dense_dim() const { return dense_dim_; }

 private:
  int num_tasks_;
  uint32_t expected_task_layout_;
  std::unordered_map<uint32_t, int> sparse_index_;   // slot → position
  std::unordered_map<uint32_t, std::pair<int, int>> dense_index_;  // slot → (column, width)
  int dense_dim_ = 0;
  std::vector<Batch::SparseSlot> sparse_;
  std::vector<float> dense_, labels_, masks_, weights_;
  std::vector<uint64_t> user_ids_, item_ids_;
  std::vector<int64_t> event_times_ms_;
  int64_t max_event_time_ms_ = 0;
  int64_t unknown_slot_features_ = 0;
};

}  // namespace freshet
