// Optimizers against their formulas, the training step, and save/restore: training
// N steps, saving, loading into a fresh Trainer and training M more must equal
// training N+M straight, bit for bit.
#include "learner/cpu/trainer.h"

#include <gtest/gtest.h>

#include <cstring>

#include "tests/learner/cpu/test_util.h"

namespace freshet::cpu {
namespace {

using testing::RandomBatch;
using testing::SmallConfig;
using testing::SmallTasks;

TEST(OptimizerTest, AdamMatchesFormula) {
  Param<double> p("p", 1, 2);
  p.value << 1.0, -2.0;
  DenseOptimizerConfig c;
  c.set_type(DENSE_ADAM);
  c.set_learning_rate(0.1);
  DenseOptimizer<double> opt(c, {&p});
  double m = 0, v = 0, w = 1.0;
  const double b1 = 0.9, b2 = 0.999, eps = 1e-8;
  for (int t = 1; t <= 3; ++t) {
    const double g = 0.5 * t;
    p.grad << g, 0.0;
    opt.Step();
    m = b1 * m + (1 - b1) * g;
    v = b2 * v + (1 - b2) * g * g;
    w -= 0.1 * (m / (1 - std::pow(b1, t))) / (std::sqrt(v / (1 - std::pow(b2, t))) + eps);
    EXPECT_NEAR(p.value(0, 0), w, 1e-6) << "step " << t;
  }
  EXPECT_NEAR(p.value(0, 1), -2.0, 1e-6);  // zero gradient: Adam does not move it (eps > 0)
}

TEST(OptimizerTest, AdagradMatchesFormula) {
  Param<double> p("p", 1, 1);
  p.value << 1.0;
  DenseOptimizerConfig c;
  c.set_type(DENSE_ADAGRAD);
  c.set_learning_rate(0.5);
  c.set_initial_accumulator(0.1);
  DenseOptimizer<double> opt(c, {&p});
  double acc = 0.1, w = 1.0;
  for (double g : {1.0, -2.0, 0.5}) {
    p.grad << g;
    opt.Step();
    acc += g * g;
    w -= 0.5 * g / (std::sqrt(acc) + 1e-8);
    EXPECT_NEAR(p.value(0, 0), w, 1e-7);
  }
}

EmbeddingTableOptions OneSlot(int state_width, double state_init) {
  EmbeddingTableOptions o;
  o.slot_dims = {2};
  o.cms_width = 64;
  o.state_width = state_width;
  o.state_init = state_init;
  o.init_std = 0.0;
  return o;
}

TEST(OptimizerTest, SparseAdagradAndFtrlMatchFormulas) {
  {
    EmbeddingTable<double> table(OneSlot(1, 0.1));
    const RowId row = table.LookupOrAdmit(0, 42, 0);
    SparseOptimizerConfig c;
    c.set_learning_rate(0.2);
    SparseOptimizer<double> opt(c);
    std::vector<Model<double>::SparseGrad> grads(1);
    grads[0].rows = {row};
    grads[0].grad.resize(1, 2);
    grads[0].grad << 1.0, -3.0;
    opt.Step(&table, grads);
    // Config values are floats (0.2f, 0.1f): agreement to ~1e-8 relative, not 1e-16.
    EXPECT_NEAR(table.Weights(row)[0], -0.2 * 1.0 / std::sqrt(1.1), 1e-6);
    EXPECT_NEAR(table.Weights(row)[1], 0.2 * 3.0 / std::sqrt(9.1), 1e-6);
    EXPECT_NEAR(table.State(row)[1], 9.1, 1e-6);
  }
  {
    EmbeddingTable<double> table(OneSlot(2, 0.0));
    const RowId row = table.LookupOrAdmit(0, 42, 0);
    SparseOptimizerConfig c;
    c.set_type(SPARSE_FTRL);
    c.set_ftrl_alpha(0.5);
    c.set_ftrl_beta(1.0);
    c.set_ftrl_l1(0.5);
    c.set_ftrl_l2(0.1);
    SparseOptimizer<double> opt(c);
    std::vector<Model<double>::SparseGrad> grads(1);
    grads[0].rows = {row};
    grads[0].grad.resize(1, 2);
    grads[0].grad << 2.0, 0.3;  // |z| = 2 > λ1 moves; |z| = 0.3 ≤ λ1 stays at exactly 0
    opt.Step(&table, grads);
    // σ = (√4 − 0)/0.5 = 4; z = 2 − 4·0 = 2; n = 4; w = −(2 − 0.5)/((1 + 2)/0.5 + 0.1)
    EXPECT_NEAR(table.Weights(row)[0], -1.5 / 6.1, 1e-6);
    EXPECT_EQ(table.Weights(row)[1], 0.0);
  }
}

LearnerConfig TrainConfig(ModelFamily family, bool ftrl) {
  LearnerConfig c = SmallConfig(family);
  if (ftrl) {
    c.mutable_sparse_optimizer()->set_type(SPARSE_FTRL);
    c.mutable_dense_optimizer()->set_type(DENSE_ADAGRAD);
  }
  c.mutable_embedding()->set_min_count(2);  // admission state must survive restore too
  c.mutable_dense_optimizer()->set_learning_rate(0.01);
  return c;
}

std::unique_ptr<Trainer<float>> NewTrainer(const LearnerConfig& c) {
  auto t = Trainer<float>::Create(c, SmallTasks());
  EXPECT_TRUE(t.ok()) << t.status();
  return std::move(t).value();
}

class SaveRestoreTest : public ::testing::TestWithParam<std::tuple<ModelFamily, bool>> {};

TEST_P(SaveRestoreTest, TrainSaveLoadTrainEqualsStraight) {
  const auto [family, ftrl] = GetParam();
  const LearnerConfig config = TrainConfig(family, ftrl);
  std::vector<Batch> batches;
  for (int i = 0; i < 7; ++i) batches.push_back(RandomBatch(config.model(), 3, 32, 100 + i, i == 2 ? 0 : -1));
  const int n = 3;

  auto straight = NewTrainer(config);
  std::vector<float> straight_loss;
  for (size_t i = 0; i < batches.size(); ++i) {
    auto r = straight->Train(batches[i], 1000 * i);
    ASSERT_TRUE(r.ok()) << r.status();
    straight_loss.push_back(r->loss);
  }

  auto first = NewTrainer(config);
  for (int i = 0; i < n; ++i) ASSERT_TRUE(first->Train(batches[i], 1000 * i).ok());
  const std::string saved = first->SaveState();
  first.reset();
  auto resumed = NewTrainer(config);
  ASSERT_TRUE(resumed->LoadState(saved).ok());
  EXPECT_EQ(resumed->SaveState(), saved) << "save → load → save is not the identity";
  for (size_t i = n; i < batches.size(); ++i) {
    auto r = resumed->Train(batches[i], 1000 * i);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(std::memcmp(&r->loss, &straight_loss[i], sizeof(float)), 0)
        << "step " << i << ": " << r->loss << " vs " << straight_loss[i];
  }
  EXPECT_EQ(resumed->steps(), straight->steps());
  EXPECT_TRUE(resumed->SaveState() == straight->SaveState()) << "final states differ";
}

INSTANTIATE_TEST_SUITE_P(Families, SaveRestoreTest,
                         ::testing::Values(std::make_tuple(FAMILY_PLE, false), std::make_tuple(FAMILY_HOME, false),
                                           std::make_tuple(FAMILY_MMOE, true)));

TEST(TrainerTest, LoadRejectsCorruptOrForeignState) {
  auto a = NewTrainer(TrainConfig(FAMILY_PLE, false));
  const std::string saved = a->SaveState();
  EXPECT_EQ(a->LoadState(saved.substr(0, saved.size() / 2)).code(), StatusCode::kDataLoss);
  EXPECT_EQ(a->LoadState("garbage").code(), StatusCode::kDataLoss);
  auto b = NewTrainer(TrainConfig(FAMILY_MMOE, false));
  EXPECT_EQ(b->LoadState(saved).code(), StatusCode::kInvalidArgument);
}

TEST(TrainerTest, LossGoesDownOnALearnableTask) {
  // Labels are a fixed function of the dense features and of one id slot; a working
  // forward/backward/optimizer chain must fit them.
  LearnerConfig config = SmallConfig(FAMILY_PLE);
  config.mutable_dense_optimizer()->set_learning_rate(0.01);
  auto trainer = NewTrainer(config);
  auto make = [&](uint64_t seed) {
    Batch b = RandomBatch(config.model(), 3, 64, seed, -1, 10);
    for (int i = 0; i < b.size; ++i) {
      const float s = b.dense(i, 0) - b.dense(i, 2);
      b.labels(i, 0) = s > 0;
      b.labels(i, 1) = b.sparse[0].offsets[i + 1] > b.sparse[0].offsets[i] && b.sparse[0].ids[b.sparse[0].offsets[i]] < 5;
      b.labels(i, 2) = 2 * s;
      b.masks.row(i).setOnes();
    }
    return b;
  };
  double early = 0, late = 0;
  for (int step = 0; step < 300; ++step) {
    Batch b = make(step);
    auto r = trainer->Train(b, step);
    ASSERT_TRUE(r.ok());
    if (step < 20) early += r->loss;
    if (step >= 280) late += r->loss;
  }
  EXPECT_LT(late, 0.5 * early);
}

TEST(TrainerTest, PredictUsesRunningStatsAndRejectsBadBatches) {
  LearnerConfig config = SmallConfig(FAMILY_HOME);
  auto trainer = NewTrainer(config);
  Batch b = RandomBatch(config.model(), 3, 16, 3);
  auto r = trainer->Train(b, 1);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->predictions.rows(), 16);
  EXPECT_TRUE((r->predictions.col(0).array() > 0).all() && (r->predictions.col(0).array() < 1).all());
  auto p = trainer->Predict(b);
  ASSERT_TRUE(p.ok());
  // BN in inference mode uses running stats (≈ init after one step): not the batch stats.
  EXPECT_GT((*p - r->predictions).norm(), 1e-4);
  Batch bad = b;
  bad.dense.resize(16, 1);
  EXPECT_EQ(trainer->Train(bad, 2).status().code(), StatusCode::kInvalidArgument);
  bad = b;
  bad.sparse.pop_back();
  EXPECT_EQ(trainer->Predict(bad).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace freshet::cpu
