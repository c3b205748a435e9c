// DeltaTracker: bounded touched-row and eviction sets, dense change detection.
#include "publisher/delta_tracker.h"

#include <algorithm>

#include "common/logging.h"
#include "learner/checkpoint_store.h"

namespace freshet::publisher {
namespace {

bool KeyLess(const cpu::EmbeddingKey& a, const cpu::EmbeddingKey& b) {
  return a.slot != b.slot ? a.slot < b.slot : a.id < b.id;
}

uint32_t TensorCrc(const DenseTensor& t) {
  return learner::Crc32c(t.values().data(), static_cast<size_t>(t.values_size()) * sizeof(float));
}

}  // namespace

DeltaTracker::DeltaTracker(int64_t max_rows, Counter* overflows)
    : max_rows_(std::max<int64_t>(1, max_rows)), overflows_(overflows) {}

void DeltaTracker::Insert(std::unordered_set<cpu::EmbeddingKey, KeyHash>* set, const cpu::EmbeddingKey& key) {
  if (overflowed_) return;
  set->insert(key);
  if (size() <= max_rows_) return;
  // Past the bound: the next version is FULL, which carries every row, so the sets
  // are no longer needed.
  overflowed_ = true;
  touched_.clear();
  evicted_.clear();
  if (overflows_) overflows_->Inc();
  LOG_WARNING("publisher_delta_overflow").Kv("max_delta_rows", max_rows_).Kv("next_version", "full");
}

void DeltaTracker::RecordBatch(const Batch& batch, const cpu::EmbeddingTable<float>& table) {
  if (overflowed_) return;
  for (size_t s = 0; s < batch.sparse.size(); ++s) {
    for (uint64_t id : batch.sparse[s].ids) {
      if (table.Lookup(static_cast<int>(s), id).valid()) Insert(&touched_, {static_cast<int32_t>(s), id});
      if (overflowed_) return;
    }
  }
}

void DeltaTracker::RecordEvictions(cpu::EmbeddingTable<float>* table) {
  for (const cpu::EmbeddingKey& key : table->DrainEvictionLog()) Insert(&evicted_, key);
}

DeltaTracker::Pending DeltaTracker::Collect(const cpu::EmbeddingTable<float>& table) const {
  Pending p;
  p.overflowed = overflowed_;
  if (overflowed_) return p;
  // A key's final state decides: a row now → send it; none → delete it.
  for (const cpu::EmbeddingKey& k : touched_) {
    if (table.Lookup(k.slot, k.id).valid()) p.rows.push_back(k);
    else p.evicted.push_back(k);
  }
  for (const cpu::EmbeddingKey& k : evicted_) {
    if (touched_.count(k)) continue;
    if (table.Lookup(k.slot, k.id).valid()) p.rows.push_back(k);  // evicted, then admitted again
    else p.evicted.push_back(k);
  }
  std::sort(p.rows.begin(), p.rows.end(), KeyLess);
  std::sort(p.evicted.begin(), p.evicted.end(), KeyLess);
  return p;
}

void DeltaTracker::Reset() {
  overflowed_ = false;
  touched_.clear();
  evicted_.clear();
}

void DeltaTracker::DropUnchangedDense(ModelUpdate* delta) const {
  auto* dense = delta->mutable_dense();
  auto unchanged = [this](const DenseTensor& t) {
    auto it = dense_crc_.find(t.name());
    return it != dense_crc_.end() && it->second == TensorCrc(t);
  };
  dense->erase(std::remove_if(dense->begin(), dense->end(), unchanged), dense->end());
}

void DeltaTracker::CommitDense(const ModelUpdate& published) {
  if (published.manifest().kind() == UPDATE_FULL) dense_crc_.clear();
  for (const DenseTensor& t : published.dense()) dense_crc_[t.name()] = TensorCrc(t);
}

}  // namespace freshet::publisher
