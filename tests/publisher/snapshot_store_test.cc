// SnapshotStore on a temp-dir RocksDB: round trip (chunked payloads), retention by
// full snapshots, the pin's chain surviving retention, version numbering after a
// reopen, materialization of FULL + deltas, and corrupt versions.
#include "publisher/snapshot_store.h"

#include <gtest/gtest.h>
#include <google/protobuf/util/message_differencer.h>

#include <map>

#include "store/kv_store.h"
#include "tests/learner/online_test_util.h"
#include "tests/publisher/publisher_test_util.h"

namespace freshet::publisher {
namespace {

using learner::testutil::TempDir;
using testutil::Dense;
using testutil::OpenPublisherStore;
using testutil::RowMap;
using testutil::Rows;

ModelUpdate Update(uint64_t version, UpdateKind kind, uint64_t base = 0) {
  ModelUpdate u;
  ModelManifest* m = u.mutable_manifest();
  m->set_version(version);
  m->set_kind(kind);
  m->set_base_version(base);
  m->set_train_step(version * 10);
  return u;
}

void AddDense(ModelUpdate* u, const std::string& name, std::vector<float> values) {
  DenseTensor* t = u->add_dense();
  t->set_name(name);
  t->add_shape(1);
  t->add_shape(static_cast<int64_t>(values.size()));
  for (float v : values) t->add_values(v);
}

void AddRow(ModelUpdate* u, uint32_t slot, uint64_t id, std::vector<float> values) {
  SparseRows* r = u->add_sparse();
  r->set_slot(slot);
  r->set_dim(static_cast<uint32_t>(values.size()));
  r->add_ids(id);
  for (float v : values) r->add_values(v);
}

void AddEvicted(ModelUpdate* u, uint32_t slot, uint64_t id) {
  EvictedRows* e = u->add_evicted();
  e->set_slot(slot);
  e->add_ids(id);
}

std::vector<uint64_t> Versions(const SnapshotStore& s) {
  std::vector<uint64_t> out;
  auto list = s.List();
  EXPECT_TRUE(list.ok()) << list.status();
  if (list.ok())
    for (const ModelManifest& m : *list) out.push_back(m.version());
  return out;
}

TEST(SnapshotStoreTest, RoundTripsAChunkedFullUpdateBitExactly) {
  TempDir dir("snap_roundtrip");
  auto db = OpenPublisherStore(dir.path);
  auto store = SnapshotStore::Open(db.get(), 3);
  ASSERT_TRUE(store.ok()) << store.status();
  ModelUpdate u = Update(1, UPDATE_FULL);
  std::vector<float> big(1'300'000);  // 5.2 MB: two 4 MiB chunks
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<float>(i) * 0.25f - 7.0f;
  AddDense(&u, "big", big);
  AddRow(&u, 0, 42, {1.5f, -2.5f});
  (*u.mutable_manifest()->mutable_metrics())["auc/click"] = 0.71;
  ASSERT_TRUE((*store)->Write(u).ok());
  auto back = (*store)->Read(1);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(*back, u));
  EXPECT_EQ((*store)->newest_version(), 1u);
  EXPECT_EQ((*store)->Read(2).status().code(), StatusCode::kNotFound);
  // Versions only increase.
  EXPECT_EQ((*store)->Write(Update(1, UPDATE_FULL)).code(), StatusCode::kInvalidArgument);
}

TEST(SnapshotStoreTest, KeepsTheLastKFullSnapshotsAndTheDeltasAfterThem) {
  TempDir dir("snap_retention");
  auto db = OpenPublisherStore(dir.path);
  auto store = SnapshotStore::Open(db.get(), 2);
  ASSERT_TRUE(store.ok());
  SnapshotStore& s = **store;
  const std::vector<std::pair<uint64_t, UpdateKind>> plan = {{1, UPDATE_FULL}, {2, UPDATE_DELTA}, {3, UPDATE_DELTA},
                                                             {4, UPDATE_FULL}, {5, UPDATE_DELTA}, {6, UPDATE_FULL},
                                                             {7, UPDATE_DELTA}};
  for (auto [v, kind] : plan) ASSERT_TRUE(s.Write(Update(v, kind, kind == UPDATE_DELTA ? v - 1 : 0)).ok());
  EXPECT_EQ(Versions(s), (std::vector<uint64_t>{4, 5, 6, 7}));
  EXPECT_EQ(s.Read(3).status().code(), StatusCode::kNotFound);
  // A pin keeps its chain (FULL 4 and delta 5) beyond the retention window.
  ASSERT_TRUE(s.SetPin(5).ok());
  ASSERT_TRUE(s.Write(Update(8, UPDATE_FULL)).ok());
  ASSERT_TRUE(s.Write(Update(9, UPDATE_FULL)).ok());
  EXPECT_EQ(Versions(s), (std::vector<uint64_t>{4, 5, 6, 7, 8, 9}));
  auto list = s.List();
  ASSERT_TRUE(list.ok());
  EXPECT_TRUE((*list)[1].pinned());
  EXPECT_FALSE((*list)[0].pinned());
  ASSERT_TRUE(s.SetPin(std::nullopt).ok());
  ASSERT_TRUE(s.Write(Update(10, UPDATE_DELTA, 9)).ok());
  EXPECT_EQ(Versions(s), (std::vector<uint64_t>{8, 9, 10}));
  EXPECT_EQ(s.SetPin(3).code(), StatusCode::kNotFound);
}

TEST(SnapshotStoreTest, ReopenContinuesVersionNumbersAndKeepsThePin) {
  TempDir dir("snap_reopen");
  {
    auto db = OpenPublisherStore(dir.path);
    auto store = SnapshotStore::Open(db.get(), 3);
    ASSERT_TRUE(store.ok());
    ASSERT_TRUE((*store)->Write(Update(1, UPDATE_FULL)).ok());
    ASSERT_TRUE((*store)->Write(Update(2, UPDATE_DELTA, 1)).ok());
    ASSERT_TRUE((*store)->SetPin(1).ok());
  }
  auto db = OpenPublisherStore(dir.path);
  auto store = SnapshotStore::Open(db.get(), 3);
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ((*store)->newest_version(), 2u);
  EXPECT_EQ((*store)->newest_full_version(), std::optional<uint64_t>(1));
  EXPECT_EQ((*store)->pinned(), std::optional<uint64_t>(1));
  EXPECT_EQ((*store)->Write(Update(2, UPDATE_DELTA, 1)).code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE((*store)->Write(Update(3, UPDATE_DELTA, 2)).ok());
}

TEST(SnapshotStoreTest, MaterializesAFullPlusDeltasInOrder) {
  TempDir dir("snap_materialize");
  auto db = OpenPublisherStore(dir.path);
  auto store = SnapshotStore::Open(db.get(), 3);
  ASSERT_TRUE(store.ok());
  ModelUpdate f1 = Update(1, UPDATE_FULL);
  AddDense(&f1, "w", {1, 2});
  AddDense(&f1, "b", {0.5f});
  AddRow(&f1, 0, 10, {1, 1});
  AddRow(&f1, 0, 11, {2, 2});
  AddRow(&f1, 1, 10, {3, 3, 3});
  ModelUpdate d2 = Update(2, UPDATE_DELTA, 1);
  AddDense(&d2, "w", {5, 6});            // b unchanged: not in the delta
  AddRow(&d2, 0, 11, {-2, -2});          // update
  AddRow(&d2, 0, 12, {4, 4});            // add
  AddEvicted(&d2, 0, 10);                // delete
  ModelUpdate d3 = Update(3, UPDATE_DELTA, 2);
  AddEvicted(&d3, 0, 12);
  AddRow(&d3, 0, 10, {9, 9});            // evicted in v2, admitted again
  for (const ModelUpdate* u : {&f1, &d2, &d3}) ASSERT_TRUE((*store)->Write(*u).ok());

  auto v2 = (*store)->Materialize(2);
  ASSERT_TRUE(v2.ok()) << v2.status();
  EXPECT_EQ(v2->manifest().kind(), UPDATE_FULL);
  EXPECT_EQ(v2->manifest().version(), 2u);
  EXPECT_EQ(v2->manifest().sparse_rows_added(), 3u);
  EXPECT_EQ(Dense(*v2), (std::map<std::string, std::vector<float>>{{"w", {5, 6}}, {"b", {0.5f}}}));
  EXPECT_EQ(Rows(*v2), (RowMap{{{0, 11}, {-2, -2}}, {{0, 12}, {4, 4}}, {{1, 10}, {3, 3, 3}}}));
  auto v3 = (*store)->Materialize(3);
  ASSERT_TRUE(v3.ok()) << v3.status();
  EXPECT_EQ(Rows(*v3), (RowMap{{{0, 10}, {9, 9}}, {{0, 11}, {-2, -2}}, {{1, 10}, {3, 3, 3}}}));
  auto newest = (*store)->MaterializeNewest();
  ASSERT_TRUE(newest.ok() && newest->has_value());
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(**newest, *v3));
  auto v1 = (*store)->Materialize(1);
  ASSERT_TRUE(v1.ok());
  EXPECT_EQ(Rows(*v1), Rows(f1));
}

TEST(SnapshotStoreTest, ABrokenChainOrCorruptPayloadIsDataLossAndNewestFallsBack) {
  TempDir dir("snap_corrupt");
  auto db = OpenPublisherStore(dir.path);
  auto store = SnapshotStore::Open(db.get(), 3);
  ASSERT_TRUE(store.ok());
  ModelUpdate f1 = Update(1, UPDATE_FULL);
  AddRow(&f1, 0, 1, {1});
  ASSERT_TRUE((*store)->Write(f1).ok());
  ASSERT_TRUE((*store)->Write(Update(2, UPDATE_DELTA, 1)).ok());
  ASSERT_TRUE((*store)->Write(Update(3, UPDATE_DELTA, 1)).ok());  // names the wrong base
  EXPECT_EQ((*store)->Materialize(3).status().code(), StatusCode::kDataLoss);
  // Overwrite v2's payload chunk with garbage.
  store::WriteBatch b;
  b.Put(SnapshotStore::kFamily, "p/00000000000000000002/00000000", "garbage");
  ASSERT_TRUE(db->Write(b).ok());
  EXPECT_EQ((*store)->Read(2).status().code(), StatusCode::kDataLoss);
  auto newest = (*store)->MaterializeNewest();
  ASSERT_TRUE(newest.ok() && newest->has_value());
  EXPECT_EQ((*newest)->manifest().version(), 1u);
}

}  // namespace
}  // namespace freshet::publisher
