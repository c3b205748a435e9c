// Every layer's backward pass against central finite differences in double
// precision (tolerances explained in test_util.h). Loss = Σ R ⊙ Y for a fixed random
// R, so dL/dY = R.
#include "learner/cpu/layers.h"

#include <gtest/gtest.h>

#include "learner/cpu/expert_group.h"
#include "learner/cpu/loss.h"
#include "tests/learner/cpu/test_util.h"

namespace freshet::cpu {
namespace {

using testing::CheckTensor;
using testing::GradCheckResult;
using testing::RandomFill;
using M = Mat<double>;

double Dot(const M& r, const M& y) { return r.cwiseProduct(y).sum(); }

TEST(LayersTest, LinearGradients) {
  Rng rng(1);
  Linear<double> lin("lin", 4, 3, /*bias=*/true, &rng);
  RandomFill(&rng, 0.5, &lin.b.value);
  M x(5, 4), r(5, 3);
  RandomFill(&rng, 1.0, &x);
  RandomFill(&rng, 1.0, &r);
  auto loss = [&] { M y; lin.Forward(x, &y); return Dot(r, y); };
  M dx = M::Zero(5, 4);
  lin.Backward(x, r, &dx);
  GradCheckResult res;
  CheckTensor("w", lin.w.value.data(), lin.w.grad.data(), lin.w.value.size(), loss, &res);
  CheckTensor("b", lin.b.value.data(), lin.b.grad.data(), lin.b.value.size(), loss, &res);
  CheckTensor("x", x.data(), dx.data(), x.size(), loss, &res);
  EXPECT_GRADS_OK(res);
}

TEST(LayersTest, ActivationGradients) {
  Rng rng(2);
  M z(4, 6), r(4, 6);
  RandomFill(&rng, 2.0, &z);
  RandomFill(&rng, 1.0, &r);
  for (Act act : {Act::kRelu, Act::kSwish, Act::kNone}) {
    for (double beta : {1.0, 1.7}) {
      auto loss = [&] { M a; ActivationForward(act, beta, z, &a); return Dot(r, a); };
      M dz;
      ActivationBackward(act, beta, z, r, &dz);
      GradCheckResult res;
      CheckTensor("z", z.data(), dz.data(), z.size(), loss, &res);
      EXPECT_GRADS_OK(res);
    }
  }
  // Swish is never exactly zero off zero (why HoME uses it); ReLU is for z < 0.
  M a, neg = M::Constant(1, 1, -3.0);
  ActivationForward(Act::kSwish, 1.0, neg, &a);
  EXPECT_LT(a(0, 0), 0.0);
  ActivationForward(Act::kRelu, 1.0, neg, &a);
  EXPECT_EQ(a(0, 0), 0.0);
}

TEST(LayersTest, BatchNormTrainingGradients) {
  Rng rng(3);
  BatchNorm<double> bn("bn", 3, 0.9, 1e-5);
  RandomFill(&rng, 0.5, &bn.gamma.value);
  bn.gamma.value.array() += 1.0;
  RandomFill(&rng, 0.5, &bn.beta.value);
  M x(6, 3), r(6, 3);
  RandomFill(&rng, 2.0, &x);
  x.col(1).array() += 5.0;  // a shifted channel
  RandomFill(&rng, 1.0, &r);
  auto loss = [&] { M y; bn.Forward(x, true, &y); return Dot(r, y); };
  loss();
  M dx = M::Zero(6, 3);
  bn.Backward(r, &dx);
  GradCheckResult res;
  CheckTensor("gamma", bn.gamma.value.data(), bn.gamma.grad.data(), 3, loss, &res);
  CheckTensor("beta", bn.beta.value.data(), bn.beta.grad.data(), 3, loss, &res);
  CheckTensor("x", x.data(), dx.data(), x.size(), loss, &res);
  EXPECT_GRADS_OK(res);
}

TEST(LayersTest, BatchNormRunningStatsDriveInferenceMode) {
  BatchNorm<double> bn("bn", 2, 0.5, 0.0);
  M x(4, 2);
  x << 1, 10, 3, 10, 5, 14, 7, 14;  // col 0: mean 4, var 5; col 1: mean 12, var 4
  M y;
  bn.Forward(x, true, &y);
  EXPECT_NEAR(y.col(0).mean(), 0.0, 1e-12);  // training output uses batch stats
  EXPECT_NEAR(bn.running_mean(0), 0.5 * 0 + 0.5 * 4, 1e-12);
  EXPECT_NEAR(bn.running_var(1), 0.5 * 1 + 0.5 * 4, 1e-12);
  // Inference: (x − r_μ)/√r_σ² with r_μ = (2, 6), r_σ² = (3, 2.5).
  M one(1, 2);
  one << 2, 6;
  bn.Forward(one, false, &y);
  EXPECT_NEAR(y(0, 0), 0.0, 1e-12);
  EXPECT_NEAR(y(0, 1), 0.0, 1e-12);
  one << 2 + std::sqrt(3.0), 6;
  bn.Forward(one, false, &y);
  EXPECT_NEAR(y(0, 0), 1.0, 1e-12);
}

TEST(LayersTest, FeatureGateStartsAsIdentityAndHasGradients) {
  Rng rng(4);
  FeatureGate<double> fg("fg", 5, 2, &rng);
  M x(4, 5), r(4, 5), y;
  RandomFill(&rng, 1.0, &x);
  RandomFill(&rng, 1.0, &r);
  fg.Forward(x, &y);
  EXPECT_EQ(y, x) << "A = 0 at init: f = 2σ(0) = 1";
  // Up factor zero: only it gets gradient at the first step (B's gradient goes through A).
  M dx = M::Zero(4, 5);
  fg.Backward(x, r, &dx);
  EXPECT_GT(fg.up.grad.norm(), 0.0);
  EXPECT_EQ(fg.down.grad.norm(), 0.0);
  // Away from init every path must match finite differences.
  RandomFill(&rng, 0.7, &fg.up.value);
  fg.up.ZeroGrad();
  fg.down.ZeroGrad();
  auto loss = [&] { M out; fg.Forward(x, &out); return Dot(r, out); };
  loss();
  dx.setZero();
  fg.Backward(x, r, &dx);
  GradCheckResult res;
  CheckTensor("down", fg.down.value.data(), fg.down.grad.data(), fg.down.value.size(), loss, &res);
  CheckTensor("up", fg.up.value.data(), fg.up.grad.data(), fg.up.value.size(), loss, &res);
  CheckTensor("x", x.data(), dx.data(), x.size(), loss, &res);
  EXPECT_GRADS_OK(res);
  // The gate is capped at 2 (2σ < 2).
  M big = M::Constant(1, 5, 50.0);
  fg.Forward(big, &y);
  EXPECT_LE(y.maxCoeff(), 100.0 + 1e-9);
}

class MixtureGateTest : public ::testing::TestWithParam<std::tuple<bool, bool, bool>> {};

TEST_P(MixtureGateTest, Gradients) {
  const auto [softmax, bias, accumulate] = GetParam();
  Rng rng(5);
  const int n = 3, d = 4, in = 5, batch = 6;
  MixtureGate<double> gate("g", in, n, softmax ? MixtureGate<double>::Kind::kSoftmax : MixtureGate<double>::Kind::kSigmoid,
                           bias, &rng);
  // Experts live in two buffers: buffer a holds experts 0,1 (cols 0..2d), b holds expert 2 at block 1.
  M a(batch, 2 * d), b(batch, 2 * d), da = M::Zero(batch, 2 * d), db = M::Zero(batch, 2 * d);
  M x(batch, in), r(batch, d), base(batch, d);
  RandomFill(&rng, 1.0, &a);
  RandomFill(&rng, 1.0, &b);
  RandomFill(&rng, 1.0, &x);
  RandomFill(&rng, 1.0, &r);
  RandomFill(&rng, 1.0, &base);
  std::vector<MixtureGate<double>::ExpertView> views = {{&a, &da, 0}, {&a, &da, d}, {&b, &db, d}};
  auto loss = [&] {
    M h = base;
    gate.Forward(x, views, d, accumulate, &h);
    return Dot(r, h);
  };
  loss();
  if (softmax) {
    EXPECT_NEAR(gate.weights().row(0).sum(), 1.0, 1e-12);
  }
  M dx = M::Zero(batch, in);
  gate.Backward(x, views, d, r, &dx);
  std::vector<Param<double>*> params;
  gate.CollectParams(&params);
  GradCheckResult res;
  for (auto* p : params) CheckTensor(p->name, p->value.data(), p->grad.data(), p->value.size(), loss, &res);
  CheckTensor("x", x.data(), dx.data(), x.size(), loss, &res);
  CheckTensor("experts_a", a.data(), da.data(), a.size(), loss, &res);
  CheckTensor("experts_b", b.data(), db.data(), b.size(), loss, &res);
  EXPECT_GRADS_OK(res);
  EXPECT_EQ(db.leftCols(d).norm(), 0.0) << "block 0 of buffer b is not an expert of this gate";
}

INSTANTIATE_TEST_SUITE_P(AllKinds, MixtureGateTest,
                         ::testing::Combine(::testing::Bool(), ::testing::Bool(), ::testing::Bool()));

TEST(LayersTest, SoftmaxGateIsStableForHugeLogits) {
  Rng rng(6);
  MixtureGate<double> gate("g", 1, 2, MixtureGate<double>::Kind::kSoftmax, false, &rng);
  M x = M::Constant(2, 1, 1e4), e(2, 2), de = M::Zero(2, 2), h;
  e << 1, 2, 3, 4;
  gate.Forward(x, {{&e, &de, 0}, {&e, &de, 1}}, 1, false, &h);
  EXPECT_TRUE(h.allFinite());
  EXPECT_NEAR(gate.weights().row(0).sum(), 1.0, 1e-12);
}

TEST(LayersTest, MlpGradients) {
  Rng rng(7);
  Mlp<double> mlp("mlp", {4, 6, 5, 2}, Act::kRelu, true, &rng);
  M x(5, 4), r(5, 2);
  RandomFill(&rng, 1.0, &x);
  RandomFill(&rng, 1.0, &r);
  auto loss = [&] { M y; mlp.Forward(x, &y); return Dot(r, y); };
  loss();
  M dx = M::Zero(5, 4);
  mlp.Backward(x, r, &dx);
  std::vector<Param<double>*> params;
  mlp.CollectParams(&params);
  GradCheckResult res;
  for (auto* p : params) CheckTensor(p->name, p->value.data(), p->grad.data(), p->value.size(), loss, &res);
  CheckTensor("x", x.data(), dx.data(), x.size(), loss, &res);
  EXPECT_GRADS_OK(res);
}

struct ExpertCase {
  const char* name;
  bool bn;
  bool every_layer;
  Act out_act;
  int fg_rank;
};

class ExpertGroupTest : public ::testing::TestWithParam<ExpertCase> {};

TEST_P(ExpertGroupTest, Gradients) {
  const ExpertCase c = GetParam();
  Rng rng(8);
  ExpertSpec spec;
  spec.num_experts = 3;
  spec.input_dim = 5;
  spec.hidden = {4};
  spec.output_dim = 3;
  spec.output_act = c.out_act;
  spec.batch_norm = c.bn;
  spec.norm_every_layer = c.every_layer;
  spec.feature_gate_rank = c.fg_rank;
  ExpertGroup<double> group("e", spec, &rng);
  std::vector<Param<double>*> params;
  group.CollectParams(&params);
  for (auto* p : params) RandomFill(&rng, 0.5, &p->value);  // leave init: BN γ≠1, feature gate A≠0
  M x(7, 5), r(7, 9);
  RandomFill(&rng, 1.0, &x);
  RandomFill(&rng, 1.0, &r);
  auto loss = [&] { group.Forward(x, true); return Dot(r, group.output()); };
  loss();
  M dx = M::Zero(7, 5);
  group.Backward(x, r, &dx);
  GradCheckResult res;
  for (auto* p : params) CheckTensor(p->name, p->value.data(), p->grad.data(), p->value.size(), loss, &res);
  CheckTensor("x", x.data(), dx.data(), x.size(), loss, &res);
  EXPECT_GRADS_OK(res);
}

INSTANTIATE_TEST_SUITE_P(
    Variants, ExpertGroupTest,
    ::testing::Values(ExpertCase{"relu", false, false, Act::kRelu, 0},
                      ExpertCase{"bn_swish", true, false, Act::kSwish, 0},
                      ExpertCase{"bn_every_layer", true, true, Act::kSwish, 0},
                      ExpertCase{"feature_gate", false, false, Act::kRelu, 2},
                      ExpertCase{"home_all", true, false, Act::kSwish, 2}),
    [](const ::testing::TestParamInfo<ExpertCase>& i) { return std::string(i.param.name); });

TEST(LayersTest, ExpertsStartDifferent) {
  Rng rng(9);
  ExpertSpec spec;
  spec.num_experts = 4;
  spec.input_dim = 6;
  spec.output_dim = 5;
  ExpertGroup<double> group("e", spec, &rng);
  const M& w = group.layer(0).w.value;  // (6, 4·5)
  for (int i = 0; i < 4; ++i)
    for (int j = i + 1; j < 4; ++j)
      EXPECT_GT((w.middleCols(i * 5, 5) - w.middleCols(j * 5, 5)).norm(), 0.1 * w.middleCols(i * 5, 5).norm())
          << "experts " << i << " and " << j << " start (nearly) identical";
}

// ------------------------------------------------------------------------ loss

TEST(LossTest, MaskedLossGradientsAndEmptyTask) {
  Rng rng(10);
  std::vector<TaskSpec> tasks = {{"a", TaskKind::kBinary, 1.0, false},
                                 {"b", TaskKind::kRegression, 0.5, false},
                                 {"empty", TaskKind::kBinary, 3.0, false}};
  const int batch = 8;
  M z(batch, 3), y(batch, 3), mask(batch, 3), w(batch, 3);
  RandomFill(&rng, 2.0, &z);
  for (int b = 0; b < batch; ++b) {
    y(b, 0) = b % 2, y(b, 1) = rng.Normal(), y(b, 2) = 1;
    mask(b, 0) = b % 3 != 0, mask(b, 1) = b < 5, mask(b, 2) = 0;
    w(b, 0) = 0.5 + rng.Uniform(), w(b, 1) = 1.0, w(b, 2) = 1.0;
  }
  M dz;
  auto loss = [&] { M g; return MaskedMultiTaskLoss(tasks, z, y, mask, w, &g).total; };
  LossOutput<double> out = MaskedMultiTaskLoss(tasks, z, y, mask, w, &dz);
  EXPECT_EQ(out.observed, (std::vector<int>{5, 5, 0}));
  EXPECT_EQ(out.per_task[2], 0.0);
  EXPECT_EQ(dz.col(2).norm(), 0.0) << "a task with no observed label gets no gradient";
  // L_b = mean over the 5 observed samples of (z − y)², no matter how many are masked out.
  double mse = 0;
  for (int b = 0; b < 5; ++b) mse += (z(b, 1) - y(b, 1)) * (z(b, 1) - y(b, 1));
  EXPECT_NEAR(out.per_task[1], mse / 5, 1e-12);
  EXPECT_NEAR(out.total, out.per_task[0] + 0.5 * out.per_task[1], 1e-12);
  GradCheckResult res;
  CheckTensor("z", z.data(), dz.data(), z.size(), loss, &res);
  EXPECT_GRADS_OK(res);
}

TEST(LossTest, BceIsStableForLargeLogits) {
  std::vector<TaskSpec> tasks = {{"a", TaskKind::kBinary, 1.0, false}};
  M z(2, 1), y(2, 1), mask = M::Ones(2, 1), w = M::Ones(2, 1), dz;
  z << 800, -800;
  y << 0, 0;
  LossOutput<double> out = MaskedMultiTaskLoss(tasks, z, y, mask, w, &dz);
  EXPECT_NEAR(out.total, 400.0, 1e-9);  // (800 + 0)/2
  EXPECT_TRUE(dz.allFinite());
  Mat<float> dzf;
  LossOutput<float> outf = MaskedMultiTaskLoss<float>(tasks, z.cast<float>(), y.cast<float>(), mask.cast<float>(),
                                                      w.cast<float>(), &dzf);
  EXPECT_TRUE(std::isfinite(outf.total));
}

}  // namespace
}  // namespace freshet::cpu
