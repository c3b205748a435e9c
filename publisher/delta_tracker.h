// DeltaTracker: what changed in the learner's model since the last published
// version, so the publisher can cut a DELTA (DESIGN.md §1.3, §4 "no silent drops"):
//
//   training thread, after every step ──► RecordBatch: (slot, id) of the batch's ids
//                                          that have a row (admitted or updated)
//   at each cut ──────────────────────────► RecordEvictions (drains the table's log)
//                                          Collect → rows to send, keys to delete
//   version published ────────────────────► Reset, CommitDense
//
// Bound: touched + evicted keys are held up to max_rows. Past it the tracker stops
// recording and reports overflowed(): the next version must be FULL (which carries
// every row), so nothing is dropped; each overflow is counted
// (freshet_publisher_delta_overflow_total). Dense tensors are compared by CRC32C with
// the last published ones, so a DELTA carries only the tensors that changed.
// A version held back by the validation gate is NOT followed by Reset: the next
// delta still covers everything since the last published version.
//
// Thread-safety: none; the learner's training thread owns it.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "common/metrics.h"
#include "learner/batch.h"
#include "learner/cpu/embedding_table.h"
#include "schemas/model.pb.h"

namespace freshet::publisher {

class DeltaTracker {
 public:
  struct Pending {
    std::vector<cpu::EmbeddingKey> rows;     // touched and present now, sorted by (slot, id)
    std::vector<cpu::EmbeddingKey> evicted;  // evicted and absent now, sorted by (slot, id)
    bool overflowed = false;                 // the bound was hit: cut FULL
  };

  // overflows: counter incremented once per overflow (may be null in tests).
  DeltaTracker(int64_t max_rows, Counter* overflows);

  // Records the ids of `batch` that have a row in `table` after the step.
  void RecordBatch(const Batch& batch, const cpu::EmbeddingTable<float>& table);
  // Moves the table's eviction log into the tracker.
  void RecordEvictions(cpu::EmbeddingTable<float>* table);
  // What the next DELTA must carry (does not reset).
  Pending Collect(const cpu::EmbeddingTable<float>& table) const;
  // The version cut from Collect() was published: track anew from here.
  void Reset();

  // Removes from `delta` the dense tensors whose values equal the last published.
  void DropUnchangedDense(ModelUpdate* delta) const;
  // Remembers the dense tensors of a published version (FULL or DELTA).
  void CommitDense(const ModelUpdate& published);

  int64_t size() const { return static_cast<int64_t>(touched_.size() + evicted_.size()); }
  bool overflowed() const { return overflowed_; }
  int64_t max_rows() const { return max_rows_; }

 private:
  struct KeyHash {
    size_t operator()(const cpu::EmbeddingKey& k) const {
      return std::hash<uint64_t>()(k.id * 0x9E3779B97F4A7C15ull ^ static_cast<uint64_t>(k.slot));
    }
  };
  void Insert(std::unordered_set<cpu::EmbeddingKey, KeyHash>* set, const cpu::EmbeddingKey& key);

  int64_t max_rows_;
  Counter* overflows_;
  bool overflowed_ = false;
  std::unordered_set<cpu::EmbeddingKey, KeyHash> touched_;
  std::unordered_set<cpu::EmbeddingKey, KeyHash> evicted_;
  std::unordered_map<std::string, uint32_t> dense_crc_;  // tensor name → CRC32C of its values
};

}  // namespace freshet::publisher
