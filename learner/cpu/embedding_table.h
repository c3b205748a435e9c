// EmbeddingTable: embedding rows that grow with the id space.
//
//   (slot, id) ──exact hash map──► RowId{slot, row} ──► [ w (dim) | optimizer state (dim·k) ]
//
// - Collision-free: the map compares the full (slot, id) key; two ids never share a row.
// - Admission: an unseen id is counted in a count-min sketch and gets a row once its
//   estimated count reaches min_count. Until then it pools as zeros and gets no update.
// - Eviction: rows not updated for ttl_ms are evicted by EvictExpired(now_ms). Rows
//   are kept in an LRU list ordered by last update, so eviction walks from the front.
// - Eviction log: every evicted key is appended to a log that the publisher drains
//   (DrainEvictionLog) to write deletions into the next delta.
// - Memory budget: bytes of rows + optimizer state + a per-entry estimate of map
//   overhead. Admission that would exceed max_bytes either evicts the least recently
//   updated row (BUDGET_EVICT_OLDEST) or is refused (BUDGET_REFUSE); both are counted
//   in stats(). bytes_used() never exceeds max_bytes. Rows touched by the batch in
//   flight are never evicted for budget (admission is refused instead, and counted).
//
// New rows are N(0, init_std²) drawn from a generator seeded by (seed, slot, id), so
// a row's initial value does not depend on admission order, and restore needs no RNG
// state.
//
// Thread-safety: none; the trainer thread owns the table.
#pragma once

#include <cstdint>
#include <list>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "learner/cpu/serialize.h"
#include "learner/cpu/tensor.h"

namespace freshet::cpu {

struct EmbeddingTableOptions {
  std::vector<int> slot_dims;  // width per slot index (slot index = position in config)
  int min_count = 1;
  int cms_width = 1 << 20;     // rounded up to a power of two
  int cms_depth = 4;
  int64_t ttl_ms = 0;          // 0: rows never expire
  int64_t max_bytes = 0;       // 0: no limit
  bool evict_oldest_at_budget = true;
  double init_std = 0.01;
  uint64_t seed = 1;
  int state_width = 1;         // optimizer values per embedding element (Adagrad 1, FTRL 2)
  double state_init = 0.0;     // initial optimizer state value (Adagrad's accumulator)
};

struct EmbeddingKey {
  int32_t slot = 0;  // slot index
  uint64_t id = 0;
  friend bool operator==(const EmbeddingKey& a, const EmbeddingKey& b) {
    return a.slot == b.slot && a.id == b.id;
  }
};

struct RowId {
  int32_t slot = -1;
  int32_t row = -1;
  bool valid() const { return row >= 0; }
};

struct EmbeddingTableStats {
  int64_t rows = 0;
  int64_t bytes_used = 0;          // rows + state + entry overhead; ≤ max_bytes
  int64_t sketch_bytes = 0;        // the count-min sketch (fixed)
  int64_t admitted = 0;
  int64_t below_min_count = 0;     // lookups of ids not yet admitted
  int64_t refused_budget = 0;      // admissions refused at the memory budget
  int64_t evicted_budget = 0;      // rows evicted to make room
  int64_t evicted_ttl = 0;         // rows evicted by EvictExpired
};

template <typename T>
class EmbeddingTable {
 public:
  // Per-entry bookkeeping (map node + LRU node) charged to the budget.
  static constexpr int64_t kEntryOverheadBytes = 96;

  explicit EmbeddingTable(const EmbeddingTableOptions& options);

  // Serving/inference path: the row of (slot, id) or an invalid RowId. Counts nothing.
  RowId Lookup(int slot, uint64_t id) const;
  // Training path: returns the row, admitting the id if its count reaches min_count
  // and the budget allows. Marks the row updated at now_ms and pins it for the
  // current batch (see BeginBatch). Invalid RowId: not admitted (yet).
  RowId LookupOrAdmit(int slot, uint64_t id, int64_t now_ms);
  // Starts a new batch: rows pinned by the previous one become evictable.
  void BeginBatch() { ++batch_serial_; }

  // REQUIRES: id.valid(). Pointers are valid until the next LookupOrAdmit.
  T* Weights(RowId id) { return &arena_[id.slot][static_cast<size_t>(id.row) * stride_[id.slot]]; }
  const T* Weights(RowId id) const {
    return &arena_[id.slot][static_cast<size_t>(id.row) * stride_[id.slot]];
  }
  // Optimizer state of the row: state_width × dim values, laid out [k][dim].
  T* State(RowId id) { return Weights(id) + dims_[id.slot]; }
  int dim(int slot) const { return dims_[slot]; }
  int num_slots() const { return static_cast<int>(dims_.size()); }
  // The row's current tenancy: a number, never reused, given each time the row is
  // handed to an id (admission, UpsertRow of a new id, Load), and 0 while the row is
  // free. A copy of the row's values kept elsewhere (the GPU arena) is current only
  // while the tenancy it was taken under still holds: an id evicted and re-admitted
  // into the same row number gets a new one. REQUIRES: id.valid().
  uint64_t Tenancy(RowId id) const { return tenancy_[id.slot][static_cast<size_t>(id.row)]; }

  // Publisher/serving: f(key, weights) for every live row, in LRU order.
  template <typename F>
  void ForEachRow(F&& f) const {
    for (const EmbeddingKey& key : lru_) f(key, Weights(map_.at(key).row));
  }
  // Serving: sets the dim(slot) weights of (slot, id), inserting the row when absent.
  // No admission, budget or eviction log: a serving copy holds exactly the rows the
  // publisher sends. A new row's optimizer state is state_init. REQUIRES: valid slot.
  RowId UpsertRow(int slot, uint64_t id, const T* weights);
  // Serving: removes (slot, id) if present, without logging it. Returns whether it was.
  bool EraseRow(int slot, uint64_t id);

  // Evicts rows whose last update is older than now_ms − ttl_ms. Returns the count.
  int64_t EvictExpired(int64_t now_ms);
  // Keys evicted since the last drain, in eviction order.
  std::vector<EmbeddingKey> DrainEvictionLog();

  EmbeddingTableStats stats() const;
  int64_t bytes_used() const { return bytes_used_; }
  int64_t RowBytes(int slot) const;
  // Count-min estimate of how often (slot, id) was seen before admission.
  uint32_t EstimateCount(int slot, uint64_t id) const;

  // Every live row, in LRU order, with its state; the sketch; counters; the log.
  void Save(ByteWriter* w) const;
  // REQUIRES: built with the same options as the saved table.
  [[nodiscard]] Status Load(ByteReader* r);

 private:
  struct KeyHash {
    size_t operator()(const EmbeddingKey& k) const;
  };
  struct Entry {
    RowId row;
    int64_t last_update_ms = 0;
    uint64_t pinned_batch = 0;
    std::list<EmbeddingKey>::iterator lru;
  };

  uint64_t SketchHash(const EmbeddingKey& key, int level) const;
  uint32_t SketchAdd(const EmbeddingKey& key);  // returns the new estimate
  bool MakeRoom(int slot);                      // for one row of `slot`
  RowId Admit(const EmbeddingKey& key, int64_t now_ms);
  RowId AllocateRow(const EmbeddingKey& key, int64_t now_ms);  // storage + map + LRU entry
  void Evict(std::unordered_map<EmbeddingKey, Entry, KeyHash>::iterator it);  // logs it, then FreeRow
  void FreeRow(std::unordered_map<EmbeddingKey, Entry, KeyHash>::iterator it);  // undoes AllocateRow
  void InitRow(const EmbeddingKey& key, RowId row);  // drawn weights + InitState
  void InitState(RowId row);                         // optimizer state = state_init

  EmbeddingTableOptions options_;
  std::vector<int> dims_;
  std::vector<size_t> stride_;                 // dim · (1 + state_width)
  std::vector<std::vector<T>> arena_;          // per slot: rows × stride
  std::vector<std::vector<int32_t>> free_rows_;
  std::vector<std::vector<uint64_t>> tenancy_;  // per slot, per row; 0 = free
  uint64_t last_tenancy_ = 0;
  std::unordered_map<EmbeddingKey, Entry, KeyHash> map_;
  std::list<EmbeddingKey> lru_;                // front = least recently updated
  std::vector<uint32_t> sketch_;               // cms_depth × cms_width
  uint64_t sketch_mask_ = 0;
  std::vector<EmbeddingKey> eviction_log_;
  uint64_t batch_serial_ = 1;
  int64_t bytes_used_ = 0;
  EmbeddingTableStats counters_;
};

}  // namespace freshet::cpu
