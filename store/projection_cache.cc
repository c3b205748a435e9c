// ProjectionCache; see projection_cache.h.
#include "store/projection_cache.h"

#include <algorithm>
#include <cstring>
#include <mutex>

namespace freshet::store {
namespace {

// 'p' + item id big-endian: fixed width, sorted by item.
std::string ProjectionKey(uint64_t item) {
  std::string k(9, '\0');
  k[0] = 'p';
  for (int i = 0; i < 8; ++i) k[1 + i] = static_cast<char>(item >> (56 - 8 * i));
  return k;
}

uint64_t ItemFromKey(std::string_view k) {
  uint64_t item = 0;
  for (int i = 0; i < 8; ++i) item = (item << 8) | static_cast<uint8_t>(k[1 + i]);
  return item;
}

constexpr size_t kHeaderBytes = 12;  // version i64 | width u32, then width floats (LE)

// Appends one entry's value (header + row) to `out`.
void AppendEntry(int64_t version, const float* row, size_t width, std::string* out) {
  const size_t at = out->size();
  const uint32_t w = static_cast<uint32_t>(width);
  out->resize(at + kHeaderBytes + width * sizeof(float));
  std::memcpy(out->data() + at, &version, 8);
  std::memcpy(out->data() + at + 8, &w, 4);
  std::memcpy(out->data() + at + kHeaderBytes, row, width * sizeof(float));
}

}  // namespace

ProjectionCache::ProjectionCache(const Options& options, MetricsRegistry* metrics) : options_(options) {
  MetricsRegistry* m = metrics != nullptr ? metrics : &own_metrics_;
  const std::string lookups = "TWIN projection cache lookups by result";
  hits_ = m->GetCounter("freshet_store_projection_lookups_total", lookups, {{"result", "hit"}});
  misses_ = m->GetCounter("freshet_store_projection_lookups_total", lookups, {{"result", "miss"}});
  stale_ = m->GetCounter("freshet_store_projection_lookups_total", lookups, {{"result", "stale"}});
  refused_ = m->GetCounter("freshet_store_projection_refused_total", "Projection Puts refused at max_items");
  staleness_ = m->GetGauge("freshet_store_projection_staleness_versions",
                           "Mean staleness (versions) of the projections served by the last lookup");
  items_ = m->GetGauge("freshet_store_projection_items", "Items in the TWIN projection cache");
}

ProjectionCache::Result ProjectionCache::Classify(int64_t stamped, int64_t current) const {
  if (stamped > current) return Result::kStale;  // from weights a restore discarded
  return current - stamped <= options_.refresh_after_versions ? Result::kHit : Result::kStale;
}

void ProjectionCache::GetMany(const std::vector<uint64_t>& items, int64_t current_version, float* out,
                              std::vector<Result>* result, std::vector<int64_t>* staleness) {
  const size_t w = static_cast<size_t>(options_.width);
  result->assign(items.size(), Result::kMiss);
  if (staleness != nullptr) staleness->assign(items.size(), 0);
  int64_t hit = 0, miss = 0, stale = 0, staleness_sum = 0;
  {
    std::shared_lock lock(mu_);
    for (size_t i = 0; i < items.size(); ++i) {
      auto it = index_.find(items[i]);
      if (it == index_.end()) {
        ++miss;
        continue;
      }
      const int64_t stamped = version_[it->second];
      const Result r = Classify(stamped, current_version);
      (*result)[i] = r;
      if (r != Result::kHit) {
        ++stale;
        continue;
      }
      ++hit;
      staleness_sum += current_version - stamped;
      if (staleness != nullptr) (*staleness)[i] = current_version - stamped;
      std::memcpy(out + i * w, arena_.data() + it->second * w, w * sizeof(float));
    }
  }
  if (hit > 0) hits_->Inc(static_cast<double>(hit));
  if (miss > 0) misses_->Inc(static_cast<double>(miss));
  if (stale > 0) stale_->Inc(static_cast<double>(stale));
  if (hit > 0) staleness_->Set(static_cast<double>(staleness_sum) / static_cast<double>(hit));
}

ProjectionCache::Result ProjectionCache::Get(uint64_t item, int64_t current_version, float* out,
                                             int64_t* staleness) {
  std::vector<Result> r;
  std::vector<int64_t> s;
  GetMany({item}, current_version, out, &r, &s);
  if (staleness != nullptr) *staleness = s[0];
  return r[0];
}

void ProjectionCache::Put(uint64_t item, int64_t version, const float* row) {
  const size_t w = static_cast<size_t>(options_.width);
  std::unique_lock lock(mu_);
  auto it = index_.find(item);
  int64_t slot;
  if (it != index_.end()) {
    slot = it->second;
  } else {
    if (static_cast<int64_t>(index_.size()) >= options_.max_items) {
      refused_->Inc();  // the item stays a miss: recomputed live each time, never wrong
      return;
    }
    slot = static_cast<int64_t>(item_.size());
    index_.emplace(item, slot);
    item_.push_back(item);
    version_.push_back(0);
    arena_.resize(arena_.size() + w);
    items_->Set(static_cast<double>(index_.size()));
  }
  version_[slot] = version;
  std::memcpy(arena_.data() + slot * w, row, w * sizeof(float));
  dirty_.insert(slot);
}

void ProjectionCache::Clear() {
  std::unique_lock lock(mu_);
  index_.clear();
  version_.clear();
  item_.clear();
  arena_.clear();
  dirty_.clear();
  items_->Set(0);
}

void ProjectionCache::Persist(WriteBatch* batch) {
  const size_t w = static_cast<size_t>(options_.width);
  std::unique_lock lock(mu_);
  std::string v;
  for (int64_t slot : dirty_) {
    v.clear();
    AppendEntry(version_[slot], arena_.data() + slot * w, w, &v);
    batch->Put(kProjectionFamily, ProjectionKey(item_[slot]), v);
  }
  dirty_.clear();
}

StatusOr<int64_t> ProjectionCache::Load(const KvStore& store) {
  const size_t w = static_cast<size_t>(options_.width);
  int64_t skipped = 0;
  Status bad = Status::Ok();
  std::vector<float> row(w);
  RETURN_IF_ERROR(store.ScanPrefix(kProjectionFamily, "p", [&](std::string_view key, std::string_view value) {
    if (key.size() != 9 || value.size() < kHeaderBytes) {
      bad = DataLossError("projection cache entry of " + std::to_string(value.size()) + " bytes is corrupt");
      return false;
    }
    int64_t version = 0;
    uint32_t width = 0;
    std::memcpy(&version, value.data(), 8);
    std::memcpy(&width, value.data() + 8, 4);
    if (value.size() != kHeaderBytes + static_cast<size_t>(width) * sizeof(float)) {
      bad = DataLossError("projection cache entry of item " + std::to_string(ItemFromKey(key)) +
                          " is truncated");
      return false;
    }
    if (width != w) {
      ++skipped;  // another model shape wrote it; it will be recomputed
      return true;
    }
    std::memcpy(row.data(), value.data() + kHeaderBytes, w * sizeof(float));
    Put(ItemFromKey(key), version, row.data());
    return true;
  }));
  RETURN_IF_ERROR(bad);
  std::unique_lock lock(mu_);
  dirty_.clear();  // what was loaded is already stored
  return skipped;
}

std::string ProjectionCache::SaveServable(int64_t current_version) const {
  const size_t w = static_cast<size_t>(options_.width);
  std::shared_lock lock(mu_);
  std::vector<int64_t> slots;
  for (int64_t slot = 0; slot < static_cast<int64_t>(item_.size()); ++slot)
    if (Classify(version_[slot], current_version) == Result::kHit) slots.push_back(slot);
  std::sort(slots.begin(), slots.end(), [&](int64_t a, int64_t b) { return item_[a] < item_[b]; });
  const uint64_t count = slots.size();
  std::string out(8, '\0');
  std::memcpy(out.data(), &count, 8);
  out.reserve(8 + count * (8 + kHeaderBytes + w * sizeof(float)));
  for (int64_t slot : slots) {
    out.append(reinterpret_cast<const char*>(&item_[slot]), 8);
    AppendEntry(version_[slot], arena_.data() + slot * w, w, &out);
  }
  return out;
}

Status ProjectionCache::RestoreServable(std::string_view bytes) {
  const size_t w = static_cast<size_t>(options_.width), entry = 8 + kHeaderBytes + w * sizeof(float);
  uint64_t count = 0;
  if (bytes.size() >= 8) std::memcpy(&count, bytes.data(), 8);
  if (bytes.size() < 8 || (bytes.size() - 8) / entry != count || (bytes.size() - 8) % entry != 0)
    return DataLossError("saved projection cache of " + std::to_string(bytes.size()) + " bytes does not hold " +
                         std::to_string(count) + " entries of width " + std::to_string(w));
  Clear();
  const char* p = bytes.data() + 8;
  for (uint64_t i = 0; i < count; ++i, p += entry) {
    uint64_t item = 0;
    int64_t version = 0;
    uint32_t width = 0;
    std::memcpy(&item, p, 8);
    std::memcpy(&version, p + 8, 8);
    std::memcpy(&width, p + 16, 4);
    if (width != w) return DataLossError("saved projection of item " + std::to_string(item) + " has width " +
                                         std::to_string(width) + ", the cache " + std::to_string(w));
    Put(item, version, reinterpret_cast<const float*>(p + 8 + kHeaderBytes));
  }
  return Status::Ok();
}

int64_t ProjectionCache::size() const {
  std::shared_lock lock(mu_);
  return static_cast<int64_t>(index_.size());
}

}  // namespace freshet::store
