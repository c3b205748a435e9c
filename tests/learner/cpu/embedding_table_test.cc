// EmbeddingTable: exact keys, count-min admission, TTL eviction with a log, the
// memory budget (refuse / evict-oldest, both counted, never exceeded), and save/load.
#include "learner/cpu/embedding_table.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "common/clock.h"

namespace freshet::cpu {
namespace {

EmbeddingTableOptions Options() {
  EmbeddingTableOptions o;
  o.slot_dims = {4, 2};
  o.cms_width = 4096;
  o.init_std = 0.1;
  return o;
}

TEST(EmbeddingTableTest, CollisionFreeRowsPerSlotAndId) {
  EmbeddingTable<float> table(Options());
  std::set<std::pair<int, int>> rows;
  for (uint64_t id = 0; id < 5000; ++id) {
    const RowId a = table.LookupOrAdmit(0, id * 0x9E3779B97F4A7C15ull, 0);
    ASSERT_TRUE(a.valid());
    EXPECT_TRUE(rows.insert({a.slot, a.row}).second) << "two keys share a row";
  }
  // The same id in another slot is another key.
  const RowId other = table.LookupOrAdmit(1, 0, 0);
  EXPECT_TRUE(other.valid());
  EXPECT_EQ(other.slot, 1);
  EXPECT_EQ(table.stats().rows, 5001);
  EXPECT_EQ(table.Lookup(0, 0).row, table.LookupOrAdmit(0, 0, 0).row);
  EXPECT_FALSE(table.Lookup(1, 12345).valid());
  // Initial values depend on (seed, slot, id) only, not on admission order.
  EmbeddingTable<float> again(Options());
  again.LookupOrAdmit(1, 0, 0);
  const RowId b = again.LookupOrAdmit(0, 7 * 0x9E3779B97F4A7C15ull, 0);
  const RowId a = table.Lookup(0, 7 * 0x9E3779B97F4A7C15ull);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(again.Weights(b)[i], table.Weights(a)[i]);
}

TEST(EmbeddingTableTest, AdmissionAfterMinCount) {
  EmbeddingTableOptions o = Options();
  o.min_count = 3;
  EmbeddingTable<float> table(o);
  EXPECT_FALSE(table.LookupOrAdmit(0, 99, 0).valid());
  EXPECT_FALSE(table.LookupOrAdmit(0, 99, 0).valid());
  EXPECT_EQ(table.EstimateCount(0, 99), 2u);
  EXPECT_FALSE(table.Lookup(0, 99).valid()) << "Lookup (serving) neither counts nor admits";
  EXPECT_TRUE(table.LookupOrAdmit(0, 99, 0).valid());
  EXPECT_FALSE(table.LookupOrAdmit(1, 99, 0).valid()) << "counts are per (slot, id)";
  const auto s = table.stats();
  EXPECT_EQ(s.admitted, 1);
  EXPECT_EQ(s.below_min_count, 3);
  EXPECT_GT(s.sketch_bytes, 0);
}

TEST(EmbeddingTableTest, TtlEvictionAndEvictionLog) {
  FakeClock clock;
  EmbeddingTableOptions o = Options();
  o.ttl_ms = 60'000;
  EmbeddingTable<float> table(o);
  const int64_t t0 = clock.NowMs();
  for (uint64_t id = 1; id <= 3; ++id) table.LookupOrAdmit(0, id, t0);
  clock.AdvanceMs(30'000);
  table.LookupOrAdmit(0, 2, clock.NowMs());  // id 2 updated later
  clock.AdvanceMs(31'000);                   // ids 1, 3 are 61 s old; id 2 is 31 s old
  EXPECT_EQ(table.EvictExpired(clock.NowMs()), 2);
  EXPECT_FALSE(table.Lookup(0, 1).valid());
  EXPECT_TRUE(table.Lookup(0, 2).valid());
  EXPECT_FALSE(table.Lookup(0, 3).valid());
  const auto log = table.DrainEvictionLog();
  ASSERT_EQ(log.size(), 2u);
  EXPECT_EQ(log[0].id, 1u);
  EXPECT_EQ(log[1].id, 3u);
  EXPECT_TRUE(table.DrainEvictionLog().empty()) << "the log is drained once";
  EXPECT_EQ(table.stats().evicted_ttl, 2);
  EXPECT_EQ(table.stats().bytes_used, table.RowBytes(0));
}

// A row's tenancy says whether a copy of its values kept elsewhere (the GPU arena)
// is still current: it changes when an evicted id is re-admitted into the same row.
TEST(EmbeddingTableTest, TenancyChangesWheneverARowIsHandedOutAgain) {
  EmbeddingTableOptions o = Options();
  o.ttl_ms = 10;
  EmbeddingTable<float> table(o);
  const RowId a = table.LookupOrAdmit(0, 7, 0);
  const RowId b = table.LookupOrAdmit(0, 8, 5);
  const uint64_t first = table.Tenancy(a);
  EXPECT_NE(first, 0u);
  EXPECT_NE(table.Tenancy(b), first);
  const uint64_t second = table.Tenancy(b);
  EXPECT_EQ(table.Tenancy(table.LookupOrAdmit(0, 8, 6)), second) << "a lookup of a live row keeps its tenancy";
  table.Weights(a)[0] = 42.f;  // trained
  ASSERT_EQ(table.EvictExpired(12), 1);  // id 7 (last update 0) goes, id 8 (6) stays
  EXPECT_EQ(table.Tenancy(a), 0u) << "a free row has no tenancy";
  const RowId again = table.LookupOrAdmit(0, 7, 13);
  ASSERT_EQ(again.row, a.row) << "the freed row is reused: the case a row's id alone cannot tell apart";
  EXPECT_NE(table.Tenancy(again), first);
  EXPECT_NE(table.Weights(again)[0], 42.f) << "re-admission starts from fresh values";
  // Load hands every row out anew.
  ByteWriter w;
  table.Save(&w);
  const uint64_t before = std::max(table.Tenancy(again), table.Tenancy(b));
  ByteReader r(w.str());
  ASSERT_TRUE(table.Load(&r).ok());
  EXPECT_GT(table.Tenancy(table.Lookup(0, 7)), before);
  EXPECT_GT(table.Tenancy(table.Lookup(0, 8)), before);
}

TEST(EmbeddingTableTest, BudgetRefuseIsCountedAndNeverExceeded) {
  EmbeddingTableOptions o = Options();
  EmbeddingTable<float> probe(o);
  o.max_bytes = 3 * probe.RowBytes(0) + 10;
  o.evict_oldest_at_budget = false;
  EmbeddingTable<float> table(o);
  for (uint64_t id = 0; id < 10; ++id) {
    table.BeginBatch();
    table.LookupOrAdmit(0, id, static_cast<int64_t>(id));
    EXPECT_LE(table.bytes_used(), o.max_bytes);
  }
  const auto s = table.stats();
  EXPECT_EQ(s.rows, 3);
  EXPECT_EQ(s.refused_budget, 7);
  EXPECT_EQ(s.evicted_budget, 0);
  EXPECT_TRUE(table.Lookup(0, 0).valid());
}

TEST(EmbeddingTableTest, BudgetEvictsLeastRecentlyUpdatedButNotRowsInFlight) {
  EmbeddingTableOptions o = Options();
  EmbeddingTable<float> probe(o);
  o.max_bytes = 3 * probe.RowBytes(0);
  EmbeddingTable<float> table(o);
  table.BeginBatch();
  for (uint64_t id = 0; id < 3; ++id) table.LookupOrAdmit(0, id, 10 + id);
  table.BeginBatch();
  table.LookupOrAdmit(0, 0, 20);             // id 0 is fresh now; id 1 is the oldest
  EXPECT_TRUE(table.LookupOrAdmit(0, 7, 21).valid());
  EXPECT_FALSE(table.Lookup(0, 1).valid());
  EXPECT_TRUE(table.Lookup(0, 0).valid());
  // Next up is id 2 (not in this batch): evictable. Then only rows of this batch remain.
  EXPECT_TRUE(table.LookupOrAdmit(0, 8, 22).valid());
  EXPECT_FALSE(table.LookupOrAdmit(0, 9, 23).valid()) << "all rows are in use by the batch in flight";
  const auto s = table.stats();
  EXPECT_EQ(s.evicted_budget, 2);
  EXPECT_EQ(s.refused_budget, 1);
  EXPECT_LE(s.bytes_used, o.max_bytes);
  const auto log = table.DrainEvictionLog();
  ASSERT_EQ(log.size(), 2u);
  EXPECT_EQ(log[0].id, 1u);
  EXPECT_EQ(log[1].id, 2u);
}

TEST(EmbeddingTableTest, SaveLoadRoundTrip) {
  EmbeddingTableOptions o = Options();
  o.min_count = 2;
  o.ttl_ms = 100;
  EmbeddingTable<double> table(o);
  for (uint64_t id = 0; id < 50; ++id) {
    table.LookupOrAdmit(static_cast<int>(id % 2), id % 20, static_cast<int64_t>(id));
  }
  table.EvictExpired(110);
  ByteWriter w;
  table.Save(&w);
  EmbeddingTable<double> copy(o);
  ByteReader r(w.str());
  ASSERT_TRUE(copy.Load(&r).ok());
  EXPECT_TRUE(r.done());
  ByteWriter w2;
  copy.Save(&w2);
  EXPECT_EQ(w.str(), w2.str());
  EXPECT_EQ(copy.stats().rows, table.stats().rows);
  EXPECT_EQ(copy.stats().bytes_used, table.stats().bytes_used);
  // Truncated state is DataLoss, not a crash.
  EmbeddingTable<double> broken(o);
  ByteReader short_r(std::string_view(w.str()).substr(0, w.str().size() - 3));
  EXPECT_EQ(broken.Load(&short_r).code(), StatusCode::kDataLoss);
}

}  // namespace
}  // namespace freshet::cpu
