// DeltaTracker over a real EmbeddingTable: touched rows, evictions resolved by the
// final state, the bound escalating to FULL (counted), dense change detection.
#include "publisher/delta_tracker.h"

#include <gtest/gtest.h>

namespace freshet::publisher {
namespace {

cpu::EmbeddingTable<float> Table(int64_t ttl_ms = 0) {
  cpu::EmbeddingTableOptions o;
  o.slot_dims = {2, 3};
  o.cms_width = 1024;
  o.ttl_ms = ttl_ms;
  return cpu::EmbeddingTable<float>(o);
}

// A batch of one sample per (slot 0 id, slot 1 id) pair; ids admitted into `table`.
Batch TouchBatch(cpu::EmbeddingTable<float>* table, const std::vector<uint64_t>& ids0,
                 const std::vector<uint64_t>& ids1, int64_t now_ms) {
  Batch b;
  b.size = 1;
  for (const auto* ids : {&ids0, &ids1}) {
    Batch::SparseSlot s;
    s.ids = *ids;
    s.offsets = {0, static_cast<int32_t>(ids->size())};
    b.sparse.push_back(s);
  }
  table->BeginBatch();
  for (int s = 0; s < 2; ++s)
    for (uint64_t id : b.sparse[s].ids) table->LookupOrAdmit(s, id, now_ms);
  return b;
}

std::vector<std::pair<int, uint64_t>> Keys(const std::vector<cpu::EmbeddingKey>& keys) {
  std::vector<std::pair<int, uint64_t>> out;
  for (const auto& k : keys) out.emplace_back(k.slot, k.id);
  return out;
}

TEST(DeltaTrackerTest, CollectsTouchedRowsAndEvictionsByTheirFinalState) {
  auto table = Table(/*ttl_ms=*/100);
  MetricsRegistry m;
  DeltaTracker t(100, m.GetCounter("overflow", ""));
  t.RecordBatch(TouchBatch(&table, {1, 2, 2}, {7}, 1000), table);
  t.RecordBatch(TouchBatch(&table, {3}, {}, 1050), table);
  EXPECT_EQ(t.size(), 4);
  // Ids 1, 2 and 7 (last updated at 1000) expire at 1101; 3 stays.
  EXPECT_EQ(table.EvictExpired(1101), 3);
  t.RecordBatch(TouchBatch(&table, {2}, {}, 1102), table);  // 2 comes back
  t.RecordEvictions(&table);
  DeltaTracker::Pending p = t.Collect(table);
  EXPECT_FALSE(p.overflowed);
  EXPECT_EQ(Keys(p.rows), (std::vector<std::pair<int, uint64_t>>{{0, 2}, {0, 3}}));
  EXPECT_EQ(Keys(p.evicted), (std::vector<std::pair<int, uint64_t>>{{0, 1}, {1, 7}}));
  t.Reset();
  EXPECT_EQ(t.size(), 0);
  EXPECT_TRUE(t.Collect(table).rows.empty());
}

TEST(DeltaTrackerTest, PastTheBoundTheNextVersionIsFullAndTheOverflowIsCounted) {
  auto table = Table();
  MetricsRegistry m;
  Counter* overflows = m.GetCounter("overflow", "");
  DeltaTracker t(5, overflows);
  t.RecordBatch(TouchBatch(&table, {1, 2, 3}, {1, 2}, 10), table);
  EXPECT_FALSE(t.overflowed());
  t.RecordBatch(TouchBatch(&table, {4}, {}, 20), table);
  EXPECT_TRUE(t.overflowed());
  EXPECT_EQ(overflows->Value(), 1);
  t.RecordBatch(TouchBatch(&table, {5, 6}, {}, 30), table);  // no second count while overflowed
  EXPECT_EQ(overflows->Value(), 1);
  EXPECT_TRUE(t.Collect(table).overflowed);
  t.Reset();  // the FULL was published
  EXPECT_FALSE(t.overflowed());
  t.RecordBatch(TouchBatch(&table, {6}, {}, 40), table);
  EXPECT_EQ(Keys(t.Collect(table).rows), (std::vector<std::pair<int, uint64_t>>{{0, 6}}));
}

TEST(DeltaTrackerTest, DropsDenseTensorsEqualToTheLastPublished) {
  DeltaTracker t(10, nullptr);
  auto tensor = [](ModelUpdate* u, const std::string& name, float v) {
    DenseTensor* d = u->add_dense();
    d->set_name(name);
    d->add_values(v);
    d->add_values(2 * v);
  };
  ModelUpdate full;
  full.mutable_manifest()->set_kind(UPDATE_FULL);
  tensor(&full, "a", 1);
  tensor(&full, "b", 2);
  t.CommitDense(full);
  ModelUpdate delta;
  delta.mutable_manifest()->set_kind(UPDATE_DELTA);
  tensor(&delta, "a", 1);    // unchanged
  tensor(&delta, "b", 2.5);  // changed
  tensor(&delta, "c", 1);    // new
  t.DropUnchangedDense(&delta);
  ASSERT_EQ(delta.dense_size(), 2);
  EXPECT_EQ(delta.dense(0).name(), "b");
  EXPECT_EQ(delta.dense(1).name(), "c");
}

}  // namespace
}  // namespace freshet::publisher
