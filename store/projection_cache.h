// ProjectionCache: per item, the TWIN per-head projections of its inherent features
// (K_h W^h for every head, docs/models.md §4), stamped with the model version whose
// weights computed them. The GSU scores up to 10^4 behaviours per request from these
// instead of projecting each behaviour live; staleness (current − stamped version)
// is what bounds GSU/ESU consistency (the TWIN paper's 94/100 at 15-minute refresh).
//
// Policy: an entry is served while current − stamped <= refresh_after_versions; an
// older entry, or one stamped with a version newer than the current one (the model
// was restored to an earlier checkpoint, so the weights that computed it are gone),
// comes back as kStale and the caller recomputes and Puts it. A stale projection is
// never served.
//
// Held in memory (a flat float arena) because GSU reads thousands per request;
// Persist/Load copy it to/from a RocksDB family so a restart starts warm, and the
// version stamps keep a restored copy honest.
//
//   ProjectionCache cache({.width = heads * d_k, .refresh_after_versions = 5}, &metrics);
//   cache.GetMany(items, version, out, &result);     // kHit rows filled in `out`
//   cache.Put(item, version, row);                   // after recomputing misses
//
// Metrics: freshet_store_projection_lookups_total{result=hit|miss|stale},
// freshet_store_projection_staleness_versions (mean staleness of the served entries
// of the last GetMany), freshet_store_projection_items, and
// freshet_store_projection_refused_total (Puts refused at max_items).
//
// Thread-safety: every method may run concurrently (readers share a lock).
#pragma once

#include <cstdint>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "common/metrics.h"
#include "common/status.h"
#include "store/kv_store.h"

namespace freshet::store {

inline constexpr char kProjectionFamily[] = "twin_projection";

class ProjectionCache {
 public:
  struct Options {
    int width = 0;                       // floats per item (heads · d_k)
    int64_t refresh_after_versions = 0;  // serve entries at most this many versions old
    int64_t max_items = 1 << 22;         // Puts of new items beyond this are refused (and counted)
  };
  enum class Result : uint8_t { kHit, kMiss, kStale };

  // metrics may be null (tests, benchmarks).
  ProjectionCache(const Options& options, MetricsRegistry* metrics);

  // For each items[i]: kHit copies the row into out[i·width, (i+1)·width) and sets
  // staleness[i] (if given); kMiss/kStale leave the row untouched.
  // REQUIRES: out has items.size()·width floats; result sized by the call.
  void GetMany(const std::vector<uint64_t>& items, int64_t current_version, float* out,
               std::vector<Result>* result, std::vector<int64_t>* staleness = nullptr);
  // One item; returns the result and fills `out` (width floats) on a hit.
  Result Get(uint64_t item, int64_t current_version, float* out, int64_t* staleness = nullptr);
  // Stores `row` (width floats) computed by `version`'s weights.
  void Put(uint64_t item, int64_t version, const float* row);
  // Drops everything (e.g. the projection's shape changed).
  void Clear();

  // The entries a lookup at current_version would serve (kHit), sorted by item, as
  // bytes: what a learner checkpoint keeps so that a restored learner's GSU serves
  // exactly the projections a learner that never stopped would (entries it would
  // refresh anyway are left out, which keeps the bytes small).
  std::string SaveServable(int64_t current_version) const;
  // Replaces the contents with SaveServable's bytes. DataLoss when they are
  // truncated or of another width (the cache is then left empty or partial).
  [[nodiscard]] Status RestoreServable(std::string_view bytes);

  // Queues every entry Put since the last Persist into `batch` (family
  // kProjectionFamily; open the store with it).
  void Persist(WriteBatch* batch);
  // Loads every entry of the family. DataLoss names the item whose value is corrupt;
  // entries of another width are skipped (counted in the return value).
  StatusOr<int64_t> Load(const KvStore& store);

  int64_t size() const;
  int width() const { return options_.width; }
  int64_t refresh_after_versions() const { return options_.refresh_after_versions; }
  double hits() const { return hits_->Value(); }
  double misses() const { return misses_->Value(); }
  double stale() const { return stale_->Value(); }

 private:
  Result Classify(int64_t stamped, int64_t current) const;

  Options options_;
  MetricsRegistry own_metrics_;  // used when the caller passes none
  Counter* hits_;
  Counter* misses_;
  Counter* stale_;
  Counter* refused_;
  Gauge* staleness_;
  Gauge* items_;

  mutable std::shared_mutex mu_;
  std::unordered_map<uint64_t, int64_t> index_;  // item → slot; guarded by mu_
  std::vector<int64_t> version_;                 // per slot; guarded by mu_
  std::vector<uint64_t> item_;                   // per slot; guarded by mu_
  std::vector<float> arena_;                     // slot · width; guarded by mu_
  std::unordered_set<int64_t> dirty_;            // slots Put since Persist; guarded by mu_
};

}  // namespace freshet::store
