// VersionDiff (ops/version_diff.h): norms and row counts against values worked out
// in the test from the inputs, and GET /v1/diff over a real admin server reading a
// SnapshotStore on a temp-dir RocksDB (a FULL and a DELTA onto it), including the
// errors for a missing version and a malformed query.
#include "ops/version_diff.h"

#include <gtest/gtest.h>

#include <cmath>

#include "common/http_client.h"
#include "store/kv_store.h"
#include "tests/learner/online_test_util.h"

namespace freshet::ops {
namespace {

using learner::testutil::TempDir;

ModelUpdate Full(uint64_t version) {
  ModelUpdate u;
  u.mutable_manifest()->set_version(version);
  u.mutable_manifest()->set_kind(UPDATE_FULL);
  u.mutable_manifest()->set_train_step(version * 100);
  return u;
}

void AddDense(ModelUpdate* u, const std::string& name, std::vector<int64_t> shape, std::vector<float> values) {
  DenseTensor* t = u->add_dense();
  t->set_name(name);
  for (int64_t s : shape) t->add_shape(s);
  for (float v : values) t->add_values(v);
}

void AddRows(ModelUpdate* u, uint32_t slot, uint32_t dim, std::vector<uint64_t> ids, std::vector<float> values) {
  SparseRows* r = u->add_sparse();
  r->set_slot(slot);
  r->set_dim(dim);
  for (uint64_t id : ids) r->add_ids(id);
  for (float v : values) r->add_values(v);
}

const TensorDiff* Find(const VersionDiff& d, const std::string& name) {
  for (const TensorDiff& t : d.tensors)
    if (t.name == name) return &t;
  return nullptr;
}

TEST(VersionDiffTest, DenseNormsAndChangeKinds) {
  ModelUpdate a = Full(1), b = Full(2);
  AddDense(&a, "w", {2, 2}, {1, 2, 3, 4});
  AddDense(&b, "w", {2, 2}, {1, 2.5f, 3, 2});
  AddDense(&a, "same", {3}, {0.5f, -1, 2});
  AddDense(&b, "same", {3}, {0.5f, -1, 2});
  AddDense(&a, "gone", {1}, {7});
  AddDense(&b, "new", {2}, {3, 4});
  AddDense(&a, "grew", {2}, {1, 1});
  AddDense(&b, "grew", {3}, {1, 1, 1});
  auto d = DiffVersions(a, b, a.manifest(), b.manifest());
  ASSERT_TRUE(d.ok()) << d.status();

  const TensorDiff* w = Find(*d, "w");
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->change, TensorDiff::Change::kChanged);
  // Differences (0, 0.5, 0, −2): ‖·‖ = sqrt(0.25 + 4); ‖from‖ = sqrt(1 + 4 + 9 + 16).
  EXPECT_NEAR(w->l2_diff, std::sqrt(4.25), 1e-9);
  EXPECT_NEAR(w->l2_from, std::sqrt(30.0), 1e-9);
  EXPECT_NEAR(w->l2_to, std::sqrt(1 + 6.25 + 9 + 4), 1e-9);
  EXPECT_NEAR(w->relative, std::sqrt(4.25) / std::sqrt(30.0), 1e-12);
  EXPECT_EQ(w->shape, (std::vector<int64_t>{2, 2}));

  EXPECT_EQ(Find(*d, "same")->change, TensorDiff::Change::kUnchanged);
  EXPECT_EQ(Find(*d, "same")->l2_diff, 0);
  EXPECT_EQ(Find(*d, "gone")->change, TensorDiff::Change::kRemoved);
  EXPECT_EQ(Find(*d, "new")->change, TensorDiff::Change::kAdded);
  EXPECT_NEAR(Find(*d, "new")->l2_to, 5, 1e-12);
  EXPECT_EQ(Find(*d, "grew")->change, TensorDiff::Change::kReshaped);
  ASSERT_EQ(d->tensors.size(), 5u);
  EXPECT_TRUE(std::is_sorted(d->tensors.begin(), d->tensors.end(),
                             [](const TensorDiff& x, const TensorDiff& y) { return x.name < y.name; }));

  const std::string text = DiffText(*d);
  EXPECT_NE(text.find("dense tensors: 4 of 5 changed"), std::string::npos) << text;
  EXPECT_EQ(text.find("same"), std::string::npos) << "unchanged tensors are not listed: " << text;
  const std::string json = DiffJson(*d);
  EXPECT_NE(json.find("\"name\":\"gone\",\"shape\":[1],\"change\":\"removed\""), std::string::npos) << json;
}

TEST(VersionDiffTest, EmbeddingRowsAddedChangedRemovedPerSlot) {
  ModelUpdate a = Full(3), b = Full(9);
  // Slot 0: id 1 removed, id 2 changed, id 3 unchanged, id 4 added.
  AddRows(&a, 0, 2, {1, 2, 3}, {1, 1, 2, 2, 3, 3});
  AddRows(&b, 0, 2, {2, 3, 4}, {2, 5, 3, 3, 4, 4});
  // Slot 5 only in `to` (a new feature's first rows); rows may come in several blocks.
  AddRows(&b, 5, 1, {10}, {0.5f});
  AddRows(&b, 5, 1, {11}, {0.25f});
  auto d = DiffVersions(a, b, a.manifest(), b.manifest());
  ASSERT_TRUE(d.ok()) << d.status();
  ASSERT_EQ(d->tables.size(), 2u);
  const TableDiff& s0 = d->tables[0];
  EXPECT_EQ(s0.slot, 0u);
  EXPECT_EQ(s0.dim, 2u);
  EXPECT_EQ(s0.added, 1u);
  EXPECT_EQ(s0.changed, 1u);
  EXPECT_EQ(s0.removed, 1u);
  EXPECT_EQ(s0.unchanged, 1u);
  EXPECT_NEAR(s0.l2_diff, 3.0, 1e-12);  // only id 2 changed: (2,2) → (2,5)
  const TableDiff& s5 = d->tables[1];
  EXPECT_EQ(s5.slot, 5u);
  EXPECT_EQ(s5.added, 2u);
  EXPECT_EQ(s5.changed + s5.removed + s5.unchanged, 0u);
}

TEST(VersionDiffTest, SlotWidthChangeIsAnError) {
  ModelUpdate a = Full(1), b = Full(2);
  AddRows(&a, 4, 2, {1}, {1, 1});
  AddRows(&b, 4, 3, {1}, {1, 1, 1});
  auto d = DiffVersions(a, b, a.manifest(), b.manifest());
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.status().message().find("slot 4 changed width from 2 to 3"), std::string::npos) << d.status();
}

TEST(VersionDiffTest, MetricsSideBySide) {
  ModelUpdate a = Full(1), b = Full(2);
  (*a.mutable_manifest()->mutable_metrics())["auc/click"] = 0.61;
  (*b.mutable_manifest()->mutable_metrics())["auc/click"] = 0.65;
  (*b.mutable_manifest()->mutable_metrics())["log_loss/click"] = 0.4;
  auto d = DiffVersions(a, b, a.manifest(), b.manifest());
  ASSERT_TRUE(d.ok());
  ASSERT_EQ(d->metrics.size(), 2u);
  EXPECT_EQ(d->metrics[0].name, "auc/click");
  EXPECT_DOUBLE_EQ(*d->metrics[0].from, 0.61);
  EXPECT_DOUBLE_EQ(*d->metrics[0].to, 0.65);
  EXPECT_FALSE(d->metrics[1].from.has_value());
  const std::string text = DiffText(*d);
  EXPECT_NE(text.find("auc/click"), std::string::npos) << text;
  EXPECT_NE(text.find("+0.04"), std::string::npos) << text;
}

// A FULL and a DELTA onto it in a real store, diffed over HTTP: the DELTA's rows are
// materialized onto the FULL before comparing, so unchanged rows count as unchanged.
TEST(VersionDiffTest, AdminEndpointDiffsStoredVersionsAndNamesMissingOnes) {
  TempDir dir("version_diff");
  store::KvStore::Options so;
  so.path = dir.path.string();
  so.families = publisher::SnapshotStore::Families();
  auto db = store::KvStore::Open(so);
  ASSERT_TRUE(db.ok()) << db.status();
  auto snapshots = publisher::SnapshotStore::Open(db->get(), 3);
  ASSERT_TRUE(snapshots.ok()) << snapshots.status();
  ModelUpdate v1 = Full(1);
  AddDense(&v1, "tower.click.w0", {1, 2}, {3, 4});
  AddRows(&v1, 0, 1, {1, 2, 3}, {1, 2, 3});
  ASSERT_TRUE((*snapshots)->Write(v1).ok());
  ModelUpdate v2;
  v2.mutable_manifest()->set_version(2);
  v2.mutable_manifest()->set_kind(UPDATE_DELTA);
  v2.mutable_manifest()->set_base_version(1);
  AddDense(&v2, "tower.click.w0", {1, 2}, {3, 0});
  AddRows(&v2, 0, 1, {2, 9}, {2.5f, 1});  // 2 changed, 9 added
  EvictedRows* e = v2.add_evicted();
  e->set_slot(0);
  e->add_ids(3);
  ASSERT_TRUE((*snapshots)->Write(v2).ok());

  MetricsRegistry metrics;
  AdminServer::Options ao;
  ao.port = 0;
  AdminServer admin(ao, &metrics);
  RegisterVersionDiff(&admin, snapshots->get());
  ASSERT_TRUE(admin.Start().ok());

  auto ok = HttpGet("127.0.0.1", admin.port(), "/v1/diff?from=1&to=2&format=text");
  ASSERT_TRUE(ok.ok()) << ok.status();
  ASSERT_EQ(ok->status, 200) << ok->body;
  EXPECT_NE(ok->body.find("diff v1 -> v2"), std::string::npos) << ok->body;
  EXPECT_NE(ok->body.find("dense tensors: 1 of 1 changed"), std::string::npos) << ok->body;
  // slot 0: added 1 (9), changed 1 (2), removed 1 (3, evicted), unchanged 1 (1); ‖diff‖ = 0.5.
  EXPECT_NE(ok->body.find("  0      1             1          1          1          1          0.5"), std::string::npos)
      << ok->body;

  auto json = HttpGet("127.0.0.1", admin.port(), "/v1/diff?from=1&to=2");
  ASSERT_TRUE(json.ok());
  EXPECT_EQ(json->status, 200);
  // (3,4) → (3,0): ‖(0,−4)‖ / ‖(3,4)‖ = 4/5.
  EXPECT_NE(json->body.find("\"l2_diff\":4,\"l2_from\":5,\"l2_to\":3,\"relative\":0.8"), std::string::npos)
      << json->body;

  auto missing = HttpGet("127.0.0.1", admin.port(), "/v1/diff?from=1&to=42");
  ASSERT_TRUE(missing.ok());
  EXPECT_EQ(missing->status, 404);
  EXPECT_NE(missing->body.find("v42 is not in the snapshot store"), std::string::npos) << missing->body;
  EXPECT_NE(missing->body.find("stored: v1..v2"), std::string::npos) << missing->body;

  auto bad = HttpGet("127.0.0.1", admin.port(), "/v1/diff?from=1");
  ASSERT_TRUE(bad.ok());
  EXPECT_EQ(bad->status, 400);
  EXPECT_NE(bad->body.find("to is missing"), std::string::npos) << bad->body;
  admin.Stop();
}

}  // namespace
}  // namespace freshet::ops
