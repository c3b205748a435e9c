// Parity of the CUDA embedding, optimizer and loss ops with the CPU reference
// (learner/cpu/model.cc's bag pooling, optimizer.h, loss.h), on fresh random inputs.
// Skips with "no CUDA device: ..." where no GPU is present.
#include <gtest/gtest.h>

#include <unordered_map>

#include "learner/cpu/loss.h"
#include "learner/cpu/optimizer.h"
#include "learner/cuda/dense_optimizer.cuh"
#include "learner/cuda/embedding_bag.cuh"
#include "learner/cuda/masked_loss.cuh"
#include "learner/cuda/sparse_optimizer.cuh"
#include "tests/learner/cuda/parity_util.h"

// Inside testing:: so parity_util.h's helpers need no using-declarations.
namespace freshet::learner::cuda::testing {
namespace {


// The slot's ids resolved like cpu::Model::EmbedBatch: distinct rows in first-seen
// order, −1 for ids that have no row (every 5th id here).
struct ResolvedSlot {
  std::vector<int32_t> offsets, occurrence, rows;
};

ResolvedSlot RandomSlot(cpu::Rng* rng, int batch, int arena_rows) {
  ResolvedSlot s;
  s.offsets.push_back(0);
  std::unordered_map<int32_t, int32_t> local;
  for (int b = 0; b < batch; ++b) {
    const int n = static_cast<int>(rng->Next() % 5);  // empty bags included
    for (int j = 0; j < n; ++j) {
      const int32_t row = static_cast<int32_t>(rng->Next() % arena_rows);
      if (rng->Next() % 5 == 0) {
        s.occurrence.push_back(-1);
        continue;
      }
      auto [it, inserted] = local.emplace(row, static_cast<int32_t>(s.rows.size()));
      if (inserted) s.rows.push_back(row);
      s.occurrence.push_back(it->second);
    }
    s.offsets.push_back(static_cast<int32_t>(s.occurrence.size()));
  }
  return s;
}

DeviceBuffer<int32_t> Ints(const DeviceContext& ctx, const std::vector<int32_t>& v) {
  DeviceBuffer<int32_t> d;
  EXPECT_TRUE(d.Upload(v, ctx.compute()).ok());
  return d;
}

// Forward sums each bag in id order like the CPU (bit-equal up to FMA); backward's
// atomicAdd order is unspecified, so repeated rows differ by float rounding: 1e-5.
TEST(CudaSparseOpsTest, EmbeddingBagForwardBackward) {
  FRESHET_CUDA_CONTEXT_OR_SKIP(ctx);
  for (const bool mean : {false, true}) {
    cpu::Rng rng(mean ? 21 : 22);
    const int B = 40, dim = 6, stride = dim * 2, rows = 15, column = 4, ld = 13;
    MatF arena = Random(&rng, rows, stride), dx = Random(&rng, B, ld);
    ResolvedSlot s = RandomSlot(&rng, B, rows);
    // Reference: the loops of cpu::Model::EmbedBatch / Backward for one slot.
    MatF x = MatF::Zero(B, ld), grad = MatF::Zero(static_cast<int>(s.rows.size()), dim);
    for (int b = 0; b < B; ++b) {
      const int n = s.offsets[b + 1] - s.offsets[b];
      const float scale = mean && n > 0 ? 1.f / n : 1.f;
      for (int j = s.offsets[b]; j < s.offsets[b + 1]; ++j) {
        const int u = s.occurrence[j];
        if (u < 0) continue;
        x.row(b).segment(column, dim) += arena.row(s.rows[u]).head(dim);
        grad.row(u) += scale * dx.row(b).segment(column, dim);
      }
      if (mean && n > 0) x.row(b).segment(column, dim) /= static_cast<float>(n);
    }
    auto ga = ToDevice(*ctx, arena), gx = ToDevice(*ctx, MatF::Zero(B, ld)), gdx = ToDevice(*ctx, dx);
    auto off = Ints(*ctx, s.offsets), occ = Ints(*ctx, s.occurrence), rws = Ints(*ctx, s.rows);
    auto gg = ToDevice(*ctx, MatF::Zero(static_cast<int>(s.rows.size()), dim));
    const BagShape shape{B, dim, stride, column, ld, mean};
    ASSERT_TRUE(EmbeddingBagForward(shape, ga.data(), off.data(), occ.data(), rws.data(), gx.data(), ctx->compute()).ok());
    ASSERT_TRUE(EmbeddingBagBackward(shape, gdx.data(), off.data(), occ.data(), gg.data(), ctx->compute()).ok());
    ExpectClose("x", x, ToHost(*ctx, gx, B, ld), 1e-6, 1e-6);
    ExpectClose("row grads", grad, ToHost(*ctx, gg, static_cast<int>(s.rows.size()), dim), 1e-5, 1e-5);
  }
}

// Sparse Adagrad and FTRL against cpu::SparseOptimizer on a real EmbeddingTable: the
// rows (weights + state, the table's layout) are copied into a device arena, both
// sides take 3 steps with fresh gradients, rows and states are compared. Element-wise
// float math with sqrtf (correctly rounded) vs std::sqrt: 1e-5 relative.
TEST(CudaSparseOpsTest, SparseAdagradAndFtrlUpdates) {
  FRESHET_CUDA_CONTEXT_OR_SKIP(ctx);
  for (const bool ftrl : {false, true}) {
    SparseOptimizerConfig config;
    config.set_type(ftrl ? SPARSE_FTRL : SPARSE_ADAGRAD);
    config.set_ftrl_l1(0.01f);
    config.set_ftrl_l2(0.1f);
    cpu::SparseOptimizer<float> opt(config);
    cpu::EmbeddingTableOptions options;
    options.slot_dims = {5};
    options.cms_width = 64;
    options.state_width = opt.state_width();
    options.state_init = ftrl ? 0.0 : 0.1;
    cpu::EmbeddingTable<float> table(options);
    const int dim = 5, stride = dim * (1 + opt.state_width()), U = 9;
    std::vector<cpu::Model<float>::SparseGrad> grads(1);
    MatF arena(U, stride);
    std::vector<int32_t> rows;
    for (int u = 0; u < U; ++u) {
      const cpu::RowId id = table.LookupOrAdmit(0, 100 + u, 0);
      ASSERT_TRUE(id.valid());
      grads[0].rows.push_back(id);
      rows.push_back(u);  // the device arena holds row u at index u
    }
    for (int u = 0; u < U; ++u)
      for (int c = 0; c < stride; ++c) arena(u, c) = table.Weights(grads[0].rows[u])[c];
    auto ga = ToDevice(*ctx, arena);
    auto grows = Ints(*ctx, rows);
    cpu::Rng rng(ftrl ? 23 : 24);
    for (int step = 0; step < 3; ++step) {
      grads[0].grad = Random(&rng, U, dim);
      opt.Step(&table, grads);
      auto gg = ToDevice(*ctx, grads[0].grad);
      if (ftrl) {
        const FtrlParams p{config.ftrl_alpha(), config.ftrl_beta(), config.ftrl_l1(), config.ftrl_l2()};
        ASSERT_TRUE(SparseFtrlUpdate(ga.data(), stride, dim, grows.data(), gg.data(), U, p, ctx->compute()).ok());
      } else {
        ASSERT_TRUE(SparseAdagradUpdate(ga.data(), stride, dim, grows.data(), gg.data(), U, config.learning_rate(),
                                        config.epsilon(), ctx->compute()).ok());
      }
    }
    for (int u = 0; u < U; ++u)
      for (int c = 0; c < stride; ++c) arena(u, c) = table.Weights(grads[0].rows[u])[c];
    ExpectClose(ftrl ? "ftrl rows+state" : "adagrad rows+state", arena, ToHost(*ctx, ga, U, stride), 1e-6, 1e-5);
  }
}

// Masked loss with a regression task, loss weights, importance weights and one task
// with no observed label. L_k is a tree sum on the GPU vs a sequential one: 1e-5.
TEST(CudaSparseOpsTest, MaskedLossForwardBackward) {
  FRESHET_CUDA_CONTEXT_OR_SKIP(ctx);
  cpu::Rng rng(25);
  const int B = 300, T = 4;
  std::vector<cpu::TaskSpec> tasks(T);
  tasks[1].loss_weight = 0.5;
  tasks[2].kind = cpu::TaskKind::kRegression;
  tasks[2].loss_weight = 2.0;
  MatF logits = Random(&rng, B, T, 3.0), labels(B, T), masks(B, T), weights(B, T), dlogits;
  for (int b = 0; b < B; ++b)
    for (int k = 0; k < T; ++k) {
      labels(b, k) = k == 2 ? static_cast<float>(rng.Normal()) : static_cast<float>(rng.Next() % 2);
      masks(b, k) = (k == 3 || rng.Uniform() < 0.3) ? 0.f : 1.f;
      weights(b, k) = static_cast<float>(0.5 + rng.Uniform());
    }
  cpu::LossOutput<float> ref = cpu::MaskedMultiTaskLoss(tasks, logits, labels, masks, weights, &dlogits);
  MatF preds;
  cpu::PredictionsFromLogits(tasks, logits, &preds);

  std::vector<bool> regression;
  std::vector<double> omega;
  for (const auto& t : tasks) regression.push_back(t.kind == cpu::TaskKind::kRegression), omega.push_back(t.loss_weight);
  auto lt = MakeLossTasks(regression, omega);
  ASSERT_TRUE(lt.ok());
  auto gl = ToDevice(*ctx, logits), gy = ToDevice(*ctx, labels), gm = ToDevice(*ctx, masks), gw = ToDevice(*ctx, weights);
  auto gd = ToDevice(*ctx, MatF::Zero(B, T)), per = ToDevice(*ctx, MatF::Zero(1, T)), gp = ToDevice(*ctx, MatF::Zero(B, T));
  DeviceBuffer<int> observed;
  ASSERT_TRUE(observed.Resize(T).ok());
  ASSERT_TRUE(MaskedLossForwardBackward(*lt, B, gl.data(), gy.data(), gm.data(), gw.data(), gd.data(), per.data(),
                                        observed.data(), ctx->compute()).ok());
  ASSERT_TRUE(PredictionsFromLogits(*lt, B, gl.data(), gp.data(), ctx->compute()).ok());
  MatF per_task(1, T);
  for (int k = 0; k < T; ++k) per_task(0, k) = ref.per_task[k];
  ExpectClose("L_k", per_task, ToHost(*ctx, per, 1, T), 1e-5, 1e-5);
  ExpectClose("dlogits", dlogits, ToHost(*ctx, gd, B, T), 1e-7, 1e-5);
  ExpectClose("predictions", preds, ToHost(*ctx, gp, B, T), 1e-6, 1e-6);
  auto obs = observed.Download(ctx->compute());
  ASSERT_TRUE(obs.ok());
  for (int k = 0; k < T; ++k) EXPECT_EQ((*obs)[k], ref.observed[k]) << "task " << k;
  EXPECT_EQ((*obs)[3], 0);
}

// Adam and dense Adagrad against cpu::DenseOptimizer over 4 steps with fresh
// gradients. Element-wise float math: 1e-6 absolute on O(1) weights.
TEST(CudaSparseOpsTest, DenseAdamAndAdagrad) {
  FRESHET_CUDA_CONTEXT_OR_SKIP(ctx);
  for (const bool adam : {true, false}) {
    DenseOptimizerConfig config;
    config.set_type(adam ? DENSE_ADAM : DENSE_ADAGRAD);
    config.set_learning_rate(0.01f);
    cpu::Rng rng(adam ? 26 : 27);
    cpu::Param<float> p("p", 7, 13);
    p.value = Random(&rng, 7, 13);
    auto gv = ToDevice(*ctx, p.value);
    auto m = ToDevice(*ctx, adam ? MatF::Zero(7, 13) : MatF::Constant(7, 13, config.initial_accumulator()));
    auto v = ToDevice(*ctx, MatF::Zero(7, 13));
    cpu::DenseOptimizer<float> opt(config, {&p});
    for (int t = 1; t <= 4; ++t) {
      p.grad = Random(&rng, 7, 13);
      opt.Step();
      auto gg = ToDevice(*ctx, p.grad);
      if (adam) {
        const AdamStep s = AdamStep::At(config.learning_rate(), config.beta1(), config.beta2(), config.epsilon(), t);
        ASSERT_TRUE(AdamUpdate(s, gv.data(), gg.data(), m.data(), v.data(), p.value.size(), ctx->compute()).ok());
      } else {
        ASSERT_TRUE(DenseAdagradUpdate(config.learning_rate(), config.epsilon(), gv.data(), gg.data(), m.data(),
                                       p.value.size(), ctx->compute()).ok());
      }
    }
    ExpectClose(adam ? "adam" : "adagrad", p.value, ToHost(*ctx, gv, 7, 13), 1e-6, 1e-5);
  }
}

// Host-side checks need no GPU: bad shapes are errors before any launch.
TEST(CudaSparseOpsTest, BadShapesAreErrorsNotCrashes) {
  EXPECT_FALSE(MakeLossTasks({}, {}).ok());
  EXPECT_FALSE(MakeLossTasks(std::vector<bool>(kMaxLossTasks + 1, false), std::vector<double>(kMaxLossTasks + 1, 1)).ok());
  const BagShape bad{4, 8, 4, 0, 8, false};  // stride < dim
  EXPECT_EQ(EmbeddingBagForward(bad, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(SparseAdagradUpdate(nullptr, 4, 4, nullptr, nullptr, 1, 0.1f, 1e-8f, nullptr).code(),
            StatusCode::kInvalidArgument);  // stride leaves no room for the accumulator
}

}  // namespace
}  // namespace freshet::learner::cuda::testing
