// ProjectionCache: hit/miss/stale by version, restored-from-the-future entries are
// stale, counters, the max_items bound, and persistence through a real RocksDB.
#include "store/projection_cache.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

namespace freshet::store {
namespace {

using R = ProjectionCache::Result;

TEST(ProjectionCacheTest, ServesWithinRefreshWindowOnly) {
  MetricsRegistry metrics;
  ProjectionCache cache({.width = 3, .refresh_after_versions = 2}, &metrics);
  float row[3] = {1, 2, 3}, out[3] = {0, 0, 0};
  int64_t staleness = -1;
  EXPECT_EQ(cache.Get(5, 10, out, &staleness), R::kMiss);
  cache.Put(5, 10, row);
  EXPECT_EQ(cache.Get(5, 12, out, &staleness), R::kHit);
  EXPECT_EQ(staleness, 2);
  EXPECT_EQ(out[2], 3.0f);
  EXPECT_EQ(cache.Get(5, 13, out, &staleness), R::kStale);
  // Stamped after the current version: computed by weights a restore discarded.
  EXPECT_EQ(cache.Get(5, 9, out, &staleness), R::kStale);
  EXPECT_EQ(cache.hits(), 1);
  EXPECT_EQ(cache.misses(), 1);
  EXPECT_EQ(cache.stale(), 2);
  const std::string text = metrics.Render();
  EXPECT_NE(text.find("freshet_store_projection_lookups_total{result=\"stale\"} 2"), std::string::npos) << text;
  EXPECT_NE(text.find("freshet_store_projection_staleness_versions 2"), std::string::npos) << text;
}

TEST(ProjectionCacheTest, GetManyFillsOnlyHitRows) {
  ProjectionCache cache({.width = 2, .refresh_after_versions = 0}, nullptr);
  float a[2] = {1, 2}, b[2] = {3, 4};
  cache.Put(1, 4, a);
  cache.Put(2, 3, b);
  std::vector<float> out(6, -1);
  std::vector<R> result;
  cache.GetMany({1, 2, 3}, 4, out.data(), &result);
  EXPECT_EQ(result, (std::vector<R>{R::kHit, R::kStale, R::kMiss}));
  EXPECT_EQ(out, (std::vector<float>{1, 2, -1, -1, -1, -1}));
}

TEST(ProjectionCacheTest, RefusesNewItemsAtMaxItems) {
  MetricsRegistry metrics;
  ProjectionCache cache({.width = 1, .refresh_after_versions = 0, .max_items = 2}, &metrics);
  float v = 1;
  cache.Put(1, 0, &v);
  cache.Put(2, 0, &v);
  cache.Put(3, 0, &v);
  cache.Put(1, 1, &v);  // updating a held item is always allowed
  EXPECT_EQ(cache.size(), 2);
  EXPECT_EQ(cache.Get(3, 0, &v), R::kMiss);
  EXPECT_EQ(cache.Get(1, 1, &v), R::kHit);
  EXPECT_NE(metrics.Render().find("freshet_store_projection_refused_total 1"), std::string::npos);
}

TEST(ProjectionCacheTest, PersistAndLoadThroughRocksDb) {
  const auto dir = std::filesystem::temp_directory_path() / ("freshet_pc_" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  KvStore::Options o;
  o.path = dir.string();
  o.families = {kProjectionFamily};
  {
    auto db = KvStore::Open(o);
    ASSERT_TRUE(db.ok());
    ProjectionCache cache({.width = 2, .refresh_after_versions = 1}, nullptr);
    float a[2] = {0.5f, -1.5f};
    cache.Put(1ull << 63, 7, a);
    WriteBatch b;
    cache.Persist(&b);
    EXPECT_EQ(b.size(), 1u);
    ASSERT_TRUE((*db)->Write(b).ok());
    WriteBatch again;
    cache.Persist(&again);
    EXPECT_TRUE(again.empty()) << "only entries Put since the last Persist";
    // An entry of another width (another model shape) is skipped on load.
    ProjectionCache other({.width = 3, .refresh_after_versions = 1}, nullptr);
    float c[3] = {1, 2, 3};
    other.Put(2, 7, c);
    WriteBatch ob;
    other.Persist(&ob);
    ASSERT_TRUE((*db)->Write(ob).ok());
  }
  auto db = KvStore::Open(o);
  ASSERT_TRUE(db.ok());
  ProjectionCache cache({.width = 2, .refresh_after_versions = 1}, nullptr);
  auto skipped = cache.Load(**db);
  ASSERT_TRUE(skipped.ok()) << skipped.status();
  EXPECT_EQ(*skipped, 1);
  float out[2];
  EXPECT_EQ(cache.Get(1ull << 63, 8, out), R::kHit);
  EXPECT_EQ(out[1], -1.5f);
  EXPECT_EQ(cache.Get(1ull << 63, 9, out), R::kStale);  // stamps survive the reload
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace freshet::store
