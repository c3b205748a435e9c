// EmbeddingTable: exact map, count-min admission, LRU/TTL eviction, byte budget.
#include "learner/cpu/embedding_table.h"

#include <algorithm>
#include <limits>

#include "common/check.h"

namespace freshet::cpu {
namespace {

uint64_t Mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xFF51AFD7ED558CCDull;
  x ^= x >> 33;
  x *= 0xC4CEB9FE1A85EC53ull;
  x ^= x >> 33;
  return x;
}

uint64_t KeyBits(const EmbeddingKey& k) {
  return Mix(k.id ^ Mix(static_cast<uint64_t>(k.slot) + 0x9E3779B97F4A7C15ull));
}

}  // namespace

template <typename T>
size_t EmbeddingTable<T>::KeyHash::operator()(const EmbeddingKey& k) const {
  return static_cast<size_t>(KeyBits(k));
}

template <typename T>
EmbeddingTable<T>::EmbeddingTable(const EmbeddingTableOptions& options)
    : options_(options), dims_(options.slot_dims) {
  CHECK_GE(options.state_width, 0);
  for (int d : dims_) {
    CHECK_GT(d, 0);
    stride_.push_back(static_cast<size_t>(d) * (1 + options.state_width));
  }
  arena_.resize(dims_.size());
  free_rows_.resize(dims_.size());
  tenancy_.resize(dims_.size());
  uint64_t width = 1;
  while (width < static_cast<uint64_t>(std::max(1, options.cms_width))) width <<= 1;
  sketch_mask_ = width - 1;
  sketch_.assign(width * std::max(1, options.cms_depth), 0);
}

template <typename T>
int64_t EmbeddingTable<T>::RowBytes(int slot) const {
  return static_cast<int64_t>(stride_[slot] * sizeof(T)) + kEntryOverheadBytes;
}

template <typename T>
uint64_t EmbeddingTable<T>::SketchHash(const EmbeddingKey& key, int level) const {
  return Mix(KeyBits(key) + 0x632BE59BD9B4E019ull * static_cast<uint64_t>(level + 1)) & sketch_mask_;
}

template <typename T>
uint32_t EmbeddingTable<T>::SketchAdd(const EmbeddingKey& key) {
  uint32_t estimate = std::numeric_limits<uint32_t>::max();
  const uint64_t width = sketch_mask_ + 1;
  for (int level = 0; level < std::max(1, options_.cms_depth); ++level) {
    uint32_t& c = sketch_[level * width + SketchHash(key, level)];
    if (c != std::numeric_limits<uint32_t>::max()) ++c;
    estimate = std::min(estimate, c);
  }
  return estimate;
}

template <typename T>
uint32_t EmbeddingTable<T>::EstimateCount(int slot, uint64_t id) const {
  const EmbeddingKey key{slot, id};
  uint32_t estimate = std::numeric_limits<uint32_t>::max();
  const uint64_t width = sketch_mask_ + 1;
  for (int level = 0; level < std::max(1, options_.cms_depth); ++level)
    estimate = std::min(estimate, sketch_[level * width + SketchHash(key, level)]);
  return estimate;
}

template <typename T>
RowId EmbeddingTable<T>::Lookup(int slot, uint64_t id) const {
  auto it = map_.find(EmbeddingKey{slot, id});
  return it == map_.end() ? RowId{} : it->second.row;
}

template <typename T>
RowId EmbeddingTable<T>::LookupOrAdmit(int slot, uint64_t id, int64_t now_ms) {
  const EmbeddingKey key{slot, id};
  auto it = map_.find(key);
  if (it != map_.end()) {
    Entry& e = it->second;
    e.last_update_ms = now_ms;
    e.pinned_batch = batch_serial_;
    lru_.splice(lru_.end(), lru_, e.lru);  // most recently updated goes to the back
    return e.row;
  }
  if (SketchAdd(key) < static_cast<uint32_t>(std::max(1, options_.min_count))) {
    ++counters_.below_min_count;
    return RowId{};
  }
  return Admit(key, now_ms);
}

template <typename T>
bool EmbeddingTable<T>::MakeRoom(int slot) {
  if (options_.max_bytes <= 0) return true;
  const int64_t need = RowBytes(slot);
  while (bytes_used_ + need > options_.max_bytes) {
    if (!options_.evict_oldest_at_budget || lru_.empty()) return false;
    auto it = map_.find(lru_.front());
    // The oldest row is in use by the batch in flight: everything is; refuse.
    if (it->second.pinned_batch == batch_serial_) return false;
    Evict(it);
    ++counters_.evicted_budget;
  }
  return true;
}

template <typename T>
RowId EmbeddingTable<T>::Admit(const EmbeddingKey& key, int64_t now_ms) {
  if (!MakeRoom(key.slot)) {
    ++counters_.refused_budget;
    return RowId{};
  }
  const RowId row = AllocateRow(key, now_ms);
  InitRow(key, row);
  ++counters_.admitted;
  return row;
}

template <typename T>
RowId EmbeddingTable<T>::AllocateRow(const EmbeddingKey& key, int64_t now_ms) {
  RowId row{key.slot, -1};
  auto& free_rows = free_rows_[key.slot];
  if (!free_rows.empty()) {
    row.row = free_rows.back();
    free_rows.pop_back();
  } else {
    auto& arena = arena_[key.slot];
    row.row = static_cast<int32_t>(arena.size() / stride_[key.slot]);
    arena.resize(arena.size() + stride_[key.slot]);
    tenancy_[key.slot].push_back(0);
  }
  tenancy_[key.slot][static_cast<size_t>(row.row)] = ++last_tenancy_;
  lru_.push_back(key);
  Entry entry;
  entry.row = row;
  entry.last_update_ms = now_ms;
  entry.pinned_batch = batch_serial_;
  entry.lru = std::prev(lru_.end());
  map_.emplace(key, entry);
  bytes_used_ += RowBytes(key.slot);
  return row;
}

template <typename T>
RowId EmbeddingTable<T>::UpsertRow(int slot, uint64_t id, const T* weights) {
  CHECK(slot >= 0 && slot < num_slots());
  const EmbeddingKey key{slot, id};
  auto it = map_.find(key);
  RowId row;
  if (it != map_.end()) {
    row = it->second.row;
  } else {
    row = AllocateRow(key, /*now_ms=*/0);
    InitState(row);
  }
  std::copy(weights, weights + dims_[slot], Weights(row));
  return row;
}

template <typename T>
bool EmbeddingTable<T>::EraseRow(int slot, uint64_t id) {
  auto it = map_.find(EmbeddingKey{slot, id});
  if (it == map_.end()) return false;
  FreeRow(it);
  return true;
}

template <typename T>
void EmbeddingTable<T>::InitRow(const EmbeddingKey& key, RowId row) {
  Rng rng(options_.seed ^ KeyBits(key));
  T* w = Weights(row);
  const int d = dims_[key.slot];
  for (int i = 0; i < d; ++i) w[i] = static_cast<T>(options_.init_std * rng.Normal());
  InitState(row);
}

template <typename T>
void EmbeddingTable<T>::InitState(RowId row) {
  T* s = State(row);
  for (int i = 0; i < dims_[row.slot] * options_.state_width; ++i) s[i] = static_cast<T>(options_.state_init);
}

template <typename T>
void EmbeddingTable<T>::Evict(typename std::unordered_map<EmbeddingKey, Entry, KeyHash>::iterator it) {
  eviction_log_.push_back(it->first);
  FreeRow(it);
}

template <typename T>
void EmbeddingTable<T>::FreeRow(typename std::unordered_map<EmbeddingKey, Entry, KeyHash>::iterator it) {
  const int slot = it->first.slot;
  free_rows_[slot].push_back(it->second.row.row);
  tenancy_[slot][static_cast<size_t>(it->second.row.row)] = 0;
  lru_.erase(it->second.lru);
  map_.erase(it);
  bytes_used_ -= RowBytes(slot);
}

template <typename T>
int64_t EmbeddingTable<T>::EvictExpired(int64_t now_ms) {
  if (options_.ttl_ms <= 0) return 0;
  int64_t evicted = 0;
  // LRU front = oldest update; stop at the first row that is still fresh.
  while (!lru_.empty()) {
    auto it = map_.find(lru_.front());
    if (now_ms - it->second.last_update_ms <= options_.ttl_ms) break;
    Evict(it);
    ++evicted;
  }
  counters_.evicted_ttl += evicted;
  return evicted;
}

template <typename T>
std::vector<EmbeddingKey> EmbeddingTable<T>::DrainEvictionLog() {
  std::vector<EmbeddingKey> out;
  out.swap(eviction_log_);
  return out;
}

template <typename T>
EmbeddingTableStats EmbeddingTable<T>::stats() const {
  EmbeddingTableStats s = counters_;
  s.rows = static_cast<int64_t>(map_.size());
  s.bytes_used = bytes_used_;
  s.sketch_bytes = static_cast<int64_t>(sketch_.size() * sizeof(uint32_t));
  return s;
}

template <typename T>
void EmbeddingTable<T>::Save(ByteWriter* w) const {
  w->Put<uint64_t>(dims_.size());
  for (int d : dims_) w->Put<int32_t>(d);
  w->Put<uint64_t>(map_.size());
  for (const EmbeddingKey& key : lru_) {  // LRU order, so eviction order survives restore
    const Entry& e = map_.at(key);
    w->Put<int32_t>(key.slot);
    w->Put<uint64_t>(key.id);
    w->Put<int64_t>(e.last_update_ms);
    w->PutArray(Weights(e.row), stride_[key.slot]);
  }
  w->PutArray(sketch_.data(), sketch_.size());
  w->Put(counters_);
  w->Put<uint64_t>(eviction_log_.size());
  for (const EmbeddingKey& k : eviction_log_) {  // field by field: the struct has padding
    w->Put<int32_t>(k.slot);
    w->Put<uint64_t>(k.id);
  }
}

template <typename T>
Status EmbeddingTable<T>::Load(ByteReader* r) {
  uint64_t slots = 0;
  RETURN_IF_ERROR(r->Get(&slots));
  if (slots != dims_.size()) return InvalidArgumentError("embedding state has another slot count");
  for (int d : dims_) {
    int32_t saved = 0;
    RETURN_IF_ERROR(r->Get(&saved));
    if (saved != d) return InvalidArgumentError("embedding state has another slot width");
  }
  map_.clear();
  lru_.clear();
  for (auto& a : arena_) a.clear();
  for (auto& f : free_rows_) f.clear();
  for (auto& t : tenancy_) t.clear();  // last_tenancy_ goes on: no number is reused
  bytes_used_ = 0;
  uint64_t rows = 0;
  RETURN_IF_ERROR(r->Get(&rows));
  for (uint64_t i = 0; i < rows; ++i) {
    EmbeddingKey key;
    int64_t last_update = 0;
    RETURN_IF_ERROR(r->Get(&key.slot));
    RETURN_IF_ERROR(r->Get(&key.id));
    RETURN_IF_ERROR(r->Get(&last_update));
    if (key.slot < 0 || key.slot >= num_slots()) return DataLossError("embedding state: bad slot");
    auto& arena = arena_[key.slot];
    RowId row{key.slot, static_cast<int32_t>(arena.size() / stride_[key.slot])};
    arena.resize(arena.size() + stride_[key.slot]);
    tenancy_[key.slot].push_back(++last_tenancy_);
    RETURN_IF_ERROR(r->GetArray(Weights(row), stride_[key.slot]));
    lru_.push_back(key);
    Entry entry;
    entry.row = row;
    entry.last_update_ms = last_update;
    entry.lru = std::prev(lru_.end());
    map_.emplace(key, entry);
    bytes_used_ += RowBytes(key.slot);
  }
  RETURN_IF_ERROR(r->GetArray(sketch_.data(), sketch_.size()));
  RETURN_IF_ERROR(r->Get(&counters_));
  uint64_t log_size = 0;
  RETURN_IF_ERROR(r->Get(&log_size));
  eviction_log_.clear();
  for (uint64_t i = 0; i < log_size; ++i) {
    EmbeddingKey k;
    RETURN_IF_ERROR(r->Get(&k.slot));
    RETURN_IF_ERROR(r->Get(&k.id));
    eviction_log_.push_back(k);
  }
  return Status::Ok();
}

FRESHET_INSTANTIATE(EmbeddingTable)

}  // namespace freshet::cpu
