// ModelUpdate ⇄ CPU model: a FULL reproduces the learner's model exactly (scores
// bit-identical to Trainer::Predict); a DELTA applied onto the previous FULL equals
// the newer FULL (parameters, rows, scores), including evicted rows; bad updates are
// refused with their cause.
#include "publisher/model_update.h"

#include <gtest/gtest.h>

#include <cstring>
#include <set>

#include "common/check.h"
#include "learner/cpu/loss.h"
#include "learner/cpu/trainer.h"
#include "tests/learner/cpu/test_util.h"

namespace freshet::publisher {
namespace {

using cpu::EmbeddingKey;
using cpu::testing::RandomBatch;
using cpu::testing::SmallConfig;
using cpu::testing::SmallTasks;

struct Fixture {
  LearnerConfig config;
  std::vector<TaskConfig> tasks = SmallTasks();
  std::unique_ptr<cpu::Trainer<float>> trainer;
  int64_t now_ms = 1000;
  uint64_t seed = 100;

  explicit Fixture(ModelFamily family, int64_t ttl_ms = 0) : config(SmallConfig(family)) {
    config.mutable_embedding()->set_ttl_ms(ttl_ms);
    auto t = cpu::Trainer<float>::Create(config, tasks);
    CHECK_OK(t.status());
    trainer = std::move(*t);
  }
  // Trains `steps` batches; returns the keys the batches touched.
  std::vector<EmbeddingKey> Train(int steps, int vocab = 20) {
    std::vector<EmbeddingKey> touched;
    for (int i = 0; i < steps; ++i) {
      Batch b = RandomBatch(config.model(), 3, 16, seed++, -1, vocab);
      for (size_t s = 0; s < b.sparse.size(); ++s)
        for (uint64_t id : b.sparse[s].ids) touched.push_back({static_cast<int32_t>(s), id});
      now_ms += 100;
      auto r = trainer->Train(b, now_ms);
      CHECK_OK(r.status());
    }
    return touched;
  }
  std::unique_ptr<ServingModel> Serving() {
    auto m = BuildServingModel(config, tasks);
    CHECK_OK(m.status());
    return std::move(*m);
  }
  ModelManifest Manifest(uint64_t version, uint64_t base) {
    ModelManifest m;
    m.set_version(version);
    m.set_base_version(base);
    m.set_train_step(static_cast<uint64_t>(trainer->steps()));
    return m;
  }
};

cpu::Mat<float> Score(ServingModel* model, const Batch& batch) {
  model->Forward(batch, /*training=*/false, 0);
  cpu::Mat<float> out;
  cpu::PredictionsFromLogits(model->tasks(), model->logits(), &out);
  return out;
}

void ExpectSameModel(const ServingModel& a, const ServingModel& b) {
  ASSERT_EQ(a.params().size(), b.params().size());
  for (size_t i = 0; i < a.params().size(); ++i)
    EXPECT_TRUE(a.params()[i]->value == b.params()[i]->value) << a.params()[i]->name;
  for (size_t i = 0; i < a.state_buffers().size(); ++i)
    EXPECT_TRUE(*a.state_buffers()[i] == *b.state_buffers()[i]) << "BN buffer " << i;
  EXPECT_EQ(a.embeddings().stats().rows, b.embeddings().stats().rows);
  int64_t compared = 0;
  a.embeddings().ForEachRow([&](const EmbeddingKey& key, const float* w) {
    const cpu::RowId row = b.embeddings().Lookup(key.slot, key.id);
    ASSERT_TRUE(row.valid()) << "slot " << key.slot << " id " << key.id;
    const float* v = b.embeddings().Weights(row);
    for (int d = 0; d < a.embeddings().dim(key.slot); ++d) EXPECT_EQ(w[d], v[d]);
    ++compared;
  });
  EXPECT_GT(compared, 0);
}

void ExpectBitIdentical(const cpu::Mat<float>& a, const cpu::Mat<float>& b) {
  ASSERT_EQ(a.rows(), b.rows());
  ASSERT_EQ(a.cols(), b.cols());
  EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0);
}

class ModelUpdateTest : public ::testing::TestWithParam<ModelFamily> {};

TEST_P(ModelUpdateTest, FullScoresEqualTheLearnersBitForBit) {
  Fixture f(GetParam());
  f.Train(20);
  if (GetParam() == FAMILY_HOME) {
    ASSERT_FALSE(f.trainer->model().state_buffers().empty()) << "HoME has BatchNorm";
  }
  const ModelUpdate full = MakeFullUpdate(f.trainer->model(), f.Manifest(1, 0));
  EXPECT_EQ(full.manifest().kind(), UPDATE_FULL);
  EXPECT_EQ(full.manifest().sparse_rows_added(), static_cast<uint64_t>(f.trainer->model().embeddings().stats().rows));
  // Through the wire format, as serving receives it.
  ModelUpdate received;
  ASSERT_TRUE(received.ParseFromString(full.SerializeAsString()));
  auto serving = f.Serving();
  ASSERT_TRUE(ApplyUpdate(received, serving.get()).ok());
  ExpectSameModel(f.trainer->model(), *serving);
  // Includes ids the model has never seen (they pool as zeros on both sides).
  const Batch probe = RandomBatch(f.config.model(), 3, 32, 999, -1, 30);
  auto expected = f.trainer->Predict(probe);
  ASSERT_TRUE(expected.ok());
  ExpectBitIdentical(Score(serving.get(), probe), *expected);
}

TEST_P(ModelUpdateTest, DeltaOntoPreviousFullEqualsNewerFull) {
  Fixture f(GetParam(), /*ttl_ms=*/1500);
  f.Train(10);
  (void)f.trainer->model().embeddings().DrainEvictionLog();
  auto v1 = f.Serving();
  ASSERT_TRUE(ApplyUpdate(MakeFullUpdate(f.trainer->model(), f.Manifest(1, 0)), v1.get()).ok());

  // Version 2: more training on a wider vocabulary (new rows), then TTL eviction of
  // rows not touched for 1.5 s.
  DeltaContent delta;
  delta.touched = f.Train(10, /*vocab=*/40);
  f.now_ms += 1000;
  const int64_t evicted = f.trainer->model().embeddings().EvictExpired(f.now_ms);
  delta.evicted = f.trainer->model().embeddings().DrainEvictionLog();
  ASSERT_GT(evicted, 0) << "the test needs evictions";
  ASSERT_EQ(delta.evicted.size(), static_cast<size_t>(evicted));

  const ModelUpdate d = MakeDeltaUpdate(f.trainer->model(), f.Manifest(2, 1), delta);
  EXPECT_EQ(d.manifest().kind(), UPDATE_DELTA);
  EXPECT_EQ(d.manifest().base_version(), 1u);
  EXPECT_EQ(d.manifest().sparse_rows_deleted(), static_cast<uint64_t>(evicted));

  auto v2 = f.Serving();
  CopyModel(*v1, v2.get());
  ASSERT_TRUE(ApplyUpdate(d, v2.get()).ok());
  auto v2_full = f.Serving();
  ASSERT_TRUE(ApplyUpdate(MakeFullUpdate(f.trainer->model(), f.Manifest(2, 0)), v2_full.get()).ok());
  ExpectSameModel(*v2_full, *v2);
  ExpectSameModel(f.trainer->model(), *v2);
  for (const EmbeddingKey& k : delta.evicted)
    EXPECT_FALSE(v2->embeddings().Lookup(k.slot, k.id).valid()) << "evicted row still served";

  const Batch probe = RandomBatch(f.config.model(), 3, 32, 4242, -1, 40);
  auto expected = f.trainer->Predict(probe);
  ASSERT_TRUE(expected.ok());
  ExpectBitIdentical(Score(v2.get(), probe), *expected);
  ExpectBitIdentical(Score(v2_full.get(), probe), *expected);
  // The copy the delta started from still serves version 1.
  const cpu::Mat<float> old_scores = Score(v1.get(), probe);
  EXPECT_NE(std::memcmp(old_scores.data(), expected->data(), old_scores.size() * sizeof(float)), 0);
}

INSTANTIATE_TEST_SUITE_P(Families, ModelUpdateTest, ::testing::Values(FAMILY_MMOE, FAMILY_HOME));

TEST(ModelUpdateErrorsTest, DeltaOntoTheWrongBaseFailsTheDenseCrc) {
  Fixture f(FAMILY_MMOE);
  f.Train(3);
  auto v1 = f.Serving();
  ASSERT_TRUE(ApplyUpdate(MakeFullUpdate(f.trainer->model(), f.Manifest(1, 0)), v1.get()).ok());
  f.Train(6);               // versions 2 and 3; serving never got 2
  ModelUpdate d = MakeDeltaUpdate(f.trainer->model(), f.Manifest(3, 2), {});
  // Keep one dense tensor, as DropUnchangedDense would if the others had not changed
  // since the base: they must already match, and on this base they do not.
  d.mutable_dense()->DeleteSubrange(1, d.dense_size() - 1);
  auto copy = f.Serving();
  CopyModel(*v1, copy.get());
  Status s = ApplyUpdate(d, copy.get());
  EXPECT_EQ(s.code(), StatusCode::kDataLoss) << s;
}

TEST(ModelUpdateErrorsTest, RefusesOtherModelsAndMalformedUpdates) {
  Fixture f(FAMILY_MMOE);
  f.Train(2);
  const ModelUpdate good = MakeFullUpdate(f.trainer->model(), f.Manifest(1, 0));

  Fixture other(FAMILY_PLE);
  auto other_serving = other.Serving();
  Status s = ApplyUpdate(good, other_serving.get());
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition) << s;
  EXPECT_NE(s.message().find("fingerprint"), std::string::npos) << s;

  auto expect_invalid = [&](ModelUpdate u, const std::string& what, const std::string& text) {
    auto m = f.Serving();
    Status st = ApplyUpdate(u, m.get());
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << what << ": " << st;
    EXPECT_NE(st.message().find(text), std::string::npos) << what << ": " << st;
  };
  ModelUpdate u = good;
  u.mutable_dense(0)->set_shape(0, 999);
  expect_invalid(u, "wrong shape", "has shape");
  u = good;
  u.mutable_dense(0)->set_name("no.such.param");
  expect_invalid(u, "unknown tensor", "is not a model parameter");
  u = good;
  u.mutable_dense()->RemoveLast();
  expect_invalid(u, "missing BN/param in FULL", "lacks");
  u = good;
  ASSERT_GT(u.sparse_size(), 0);
  u.mutable_sparse(0)->set_slot(17);
  expect_invalid(u, "bad slot", "sparse slots");
  u = good;
  u.mutable_sparse(0)->mutable_values()->RemoveLast();
  expect_invalid(u, "short row values", "values for");
  u = good;
  u.mutable_manifest()->set_kind(UPDATE_KIND_UNSPECIFIED);
  expect_invalid(u, "no kind", "no kind");

  // A FULL onto a model that already holds rows would keep stale rows: refused.
  auto used = f.Serving();
  ASSERT_TRUE(ApplyUpdate(good, used.get()).ok());
  EXPECT_EQ(ApplyUpdate(good, used.get()).code(), StatusCode::kFailedPrecondition);
}

TEST(EmbeddingTableServingTest, UpsertAndEraseKeepTheTableConsistent) {
  cpu::EmbeddingTableOptions o;
  o.slot_dims = {2, 3};
  o.cms_width = 1;
  cpu::EmbeddingTable<float> table(o);
  const float a[] = {1, 2}, b[] = {3, 4, 5}, c[] = {6, 7};
  table.UpsertRow(0, 10, a);
  table.UpsertRow(1, 10, b);
  table.UpsertRow(0, 10, c);  // overwrite
  EXPECT_EQ(table.stats().rows, 2);
  EXPECT_EQ(table.Weights(table.Lookup(0, 10))[1], 7.0f);
  EXPECT_EQ(table.Weights(table.Lookup(1, 10))[2], 5.0f);
  EXPECT_TRUE(table.EraseRow(0, 10));
  EXPECT_FALSE(table.EraseRow(0, 10));
  EXPECT_FALSE(table.Lookup(0, 10).valid());
  EXPECT_TRUE(table.DrainEvictionLog().empty()) << "serving erasures are not evictions";
  table.UpsertRow(0, 11, a);  // reuses the freed row
  std::set<uint64_t> ids;
  table.ForEachRow([&](const EmbeddingKey& k, const float*) { ids.insert(k.id * 10 + k.slot); });
  EXPECT_EQ(ids, (std::set<uint64_t>{101, 110}));
  EXPECT_EQ(table.bytes_used(), table.RowBytes(0) + table.RowBytes(1));
}

}  // namespace
}  // namespace freshet::publisher
