// Parity of the CUDA dense ops with the CPU reference layers (learner/cpu/layers.h,
// expert_group.h), forward and backward, on fresh random inputs. Skips with "no CUDA
// device: ..." where no GPU is present.
//
// Tolerances: both sides compute in float. GEMMs on the GPU sum in another order
// (and with FMA), so a dot product of length K differs by ~K·ε·Σ|terms|; with K ≤ 64
// and O(1) inputs that is ≤ ~1e-5 absolute. atol 1e-4, rtol 1e-4 leaves 10× margin
// and still catches a wrong transpose, block or missing term (errors of O(0.1)).
#include <gtest/gtest.h>

#include "learner/cpu/expert_group.h"
#include "learner/cpu/layers.h"
#include "learner/cuda/activation.cuh"
#include "learner/cuda/batchnorm_act.cuh"
#include "learner/cuda/expert_blocks.cuh"
#include "learner/cuda/feature_gate.cuh"
#include "learner/cuda/gate_mixture.cuh"
#include "learner/cuda/linear.cuh"
#include "tests/learner/cuda/parity_util.h"

// Inside testing:: so parity_util.h's helpers need no using-declarations.
namespace freshet::learner::cuda::testing {
namespace {


constexpr double kGemmTol = 1e-4;

TEST(CudaDenseOpsTest, LinearForwardBackward) {
  FRESHET_CUDA_CONTEXT_OR_SKIP(ctx);
  cpu::Rng rng(11);
  const int B = 37, in = 19, out = 23;
  cpu::Linear<float> lin("lin", in, out, /*bias=*/true, &rng);
  lin.b.value = Random(&rng, 1, out, 0.5);
  MatF x = Random(&rng, B, in), dy = Random(&rng, B, out), y, dx = MatF::Zero(B, in);
  lin.Forward(x, &y);
  lin.Backward(x, dy, &dx);

  auto dxx = ToDevice(*ctx, x), dw = ToDevice(*ctx, lin.w.value), db = ToDevice(*ctx, lin.b.value);
  auto ddy = ToDevice(*ctx, dy), dyy = ToDevice(*ctx, MatF::Zero(B, out));
  auto gw = ToDevice(*ctx, MatF::Zero(in, out)), gb = ToDevice(*ctx, MatF::Zero(1, out));
  auto gx = ToDevice(*ctx, MatF::Zero(B, in));
  ASSERT_TRUE(LinearForward(*ctx, dxx.data(), B, in, dw.data(), db.data(), out, dyy.data()).ok());
  ASSERT_TRUE(LinearBackward(*ctx, dxx.data(), ddy.data(), B, in, dw.data(), out, gw.data(), gb.data(), gx.data()).ok());
  ExpectClose("y", y, ToHost(*ctx, dyy, B, out), kGemmTol, kGemmTol);
  ExpectClose("dW", lin.w.grad, ToHost(*ctx, gw, in, out), kGemmTol, kGemmTol);
  ExpectClose("db", lin.b.grad, ToHost(*ctx, gb, 1, out), kGemmTol, kGemmTol);
  ExpectClose("dx", dx, ToHost(*ctx, gx, B, in), kGemmTol, kGemmTol);
}

// Element-wise only: expf differs from std::exp by ≤ 2 ulp, so 1e-6 relative.
TEST(CudaDenseOpsTest, ActivationsForwardBackward) {
  FRESHET_CUDA_CONTEXT_OR_SKIP(ctx);
  cpu::Rng rng(12);
  const int rows = 9, cols = 33;
  MatF z = Random(&rng, rows, cols, 2.0), da = Random(&rng, rows, cols);
  auto dz = ToDevice(*ctx, z), dda = ToDevice(*ctx, da), out = ToDevice(*ctx, MatF::Zero(rows, cols));
  for (cpu::Act act : {cpu::Act::kRelu, cpu::Act::kSwish, cpu::Act::kNone}) {
    const DeviceAct dact = static_cast<DeviceAct>(static_cast<int>(act));
    MatF a, g;
    cpu::ActivationForward(act, 1.3f, z, &a);
    cpu::ActivationBackward(act, 1.3f, z, da, &g);
    ASSERT_TRUE(ActivationForward(dact, 1.3f, dz.data(), out.data(), z.size(), ctx->compute()).ok());
    ExpectClose("act", a, ToHost(*ctx, out, rows, cols), 1e-6, 1e-6);
    ASSERT_TRUE(ActivationBackward(dact, 1.3f, dz.data(), dda.data(), out.data(), z.size(), ctx->compute()).ok());
    ExpectClose("act grad", g, ToHost(*ctx, out, rows, cols), 1e-6, 1e-6);
  }
}

// Two-layer ReLU experts: layer 0 one GEMM for all experts (shared input), layer 1
// one strided-batched GEMM over the experts' blocks; both directions.
TEST(CudaDenseOpsTest, ExpertBlocksMatchExpertGroup) {
  FRESHET_CUDA_CONTEXT_OR_SKIP(ctx);
  cpu::Rng rng(13);
  cpu::ExpertSpec spec;
  spec.num_experts = 3, spec.input_dim = 10, spec.hidden = {6}, spec.output_dim = 5;
  const int B = 21, n = 3, D = 10, H = 6, d = 5;
  cpu::ExpertGroup<float> group("g", spec, &rng);
  MatF x = Random(&rng, B, D), dout = Random(&rng, B, n * d), dx = MatF::Zero(B, D);
  group.Forward(x, /*training=*/true);
  group.Backward(x, dout, &dx);
  auto& l0 = group.layer(0);
  auto& l1 = group.layer(1);

  auto gx = ToDevice(*ctx, x), w0 = ToDevice(*ctx, l0.w.value), b0 = ToDevice(*ctx, l0.b.value);
  auto w1 = ToDevice(*ctx, l1.w.value), b1 = ToDevice(*ctx, l1.b.value);
  auto z0 = ToDevice(*ctx, MatF::Zero(B, n * H)), a0 = ToDevice(*ctx, MatF::Zero(B, n * H));
  auto z1 = ToDevice(*ctx, MatF::Zero(B, n * d)), a1 = ToDevice(*ctx, MatF::Zero(B, n * d));
  const ExpertBlocks s0{n, B, D, H, D, 0}, s1{n, B, H, d, n * H, H};
  ASSERT_TRUE(ExpertBlocksForward(*ctx, s0, gx.data(), w0.data(), b0.data(), z0.data()).ok());
  ASSERT_TRUE(ActivationForward(DeviceAct::kRelu, 1.f, z0.data(), a0.data(), B * n * H, ctx->compute()).ok());
  ASSERT_TRUE(ExpertBlocksForward(*ctx, s1, a0.data(), w1.data(), b1.data(), z1.data()).ok());
  ASSERT_TRUE(ActivationForward(DeviceAct::kRelu, 1.f, z1.data(), a1.data(), B * n * d, ctx->compute()).ok());
  ExpectClose("output", group.output(), ToHost(*ctx, a1, B, n * d), kGemmTol, kGemmTol);

  auto gdout = ToDevice(*ctx, dout), dz1 = ToDevice(*ctx, MatF::Zero(B, n * d));
  auto da0 = ToDevice(*ctx, MatF::Zero(B, n * H)), ddx = ToDevice(*ctx, MatF::Zero(B, D));
  auto dw0 = ToDevice(*ctx, MatF::Zero(D, n * H)), db0 = ToDevice(*ctx, MatF::Zero(1, n * H));
  auto dw1 = ToDevice(*ctx, MatF::Zero(H, n * d)), db1 = ToDevice(*ctx, MatF::Zero(1, n * d));
  ASSERT_TRUE(ActivationBackward(DeviceAct::kRelu, 1.f, z1.data(), gdout.data(), dz1.data(), B * n * d, ctx->compute()).ok());
  ASSERT_TRUE(ExpertBlocksBackward(*ctx, s1, a0.data(), dz1.data(), w1.data(), dw1.data(), db1.data(), da0.data(), 0.f).ok());
  ASSERT_TRUE(ActivationBackward(DeviceAct::kRelu, 1.f, z0.data(), da0.data(), da0.data(), B * n * H, ctx->compute()).ok());
  ASSERT_TRUE(ExpertBlocksBackward(*ctx, s0, gx.data(), da0.data(), w0.data(), dw0.data(), db0.data(), ddx.data(), 1.f).ok());
  ExpectClose("dW1", l1.w.grad, ToHost(*ctx, dw1, H, n * d), kGemmTol, kGemmTol);
  ExpectClose("db1", l1.b.grad, ToHost(*ctx, db1, 1, n * d), kGemmTol, kGemmTol);
  ExpectClose("dW0", l0.w.grad, ToHost(*ctx, dw0, D, n * H), kGemmTol, kGemmTol);
  ExpectClose("db0", l0.b.grad, ToHost(*ctx, db0, 1, n * H), kGemmTol, kGemmTol);
  ExpectClose("dx", dx, ToHost(*ctx, ddx, B, D), kGemmTol, kGemmTol);
}

// BN sums over B rows in another order (lane-parallel); B = 64 keeps the mean/var
// differences ~1e-6 relative; the backward's Σ terms scale with B, so 2e-4.
TEST(CudaDenseOpsTest, BatchNormSwishForwardBackward) {
  FRESHET_CUDA_CONTEXT_OR_SKIP(ctx);
  cpu::Rng rng(14);
  const int B = 64, C = 45;  // C not a multiple of the 32-channel block
  cpu::BatchNorm<float> bn("bn", C, 0.9f, 1e-5f);
  bn.gamma.value = Random(&rng, 1, C, 0.3);
  bn.gamma.value.array() += 1.f;
  bn.beta.value = Random(&rng, 1, C, 0.3);
  MatF x = Random(&rng, B, C, 2.0), da = Random(&rng, B, C), zn, a, dzn, dx = MatF::Zero(B, C);
  x.col(3).array() += 4.f;
  bn.Forward(x, /*training=*/true, &zn);
  cpu::ActivationForward(cpu::Act::kSwish, 1.f, zn, &a);
  cpu::ActivationBackward(cpu::Act::kSwish, 1.f, zn, da, &dzn);
  bn.Backward(dzn, &dx);

  auto gx = ToDevice(*ctx, x), gamma = ToDevice(*ctx, MatF(bn.gamma.value)), beta = ToDevice(*ctx, MatF(bn.beta.value));
  auto rm = ToDevice(*ctx, MatF::Zero(1, C)), rv = ToDevice(*ctx, MatF::Ones(1, C));
  auto xhat = ToDevice(*ctx, MatF::Zero(B, C)), inv = ToDevice(*ctx, MatF::Zero(1, C));
  auto gzn = ToDevice(*ctx, MatF::Zero(B, C)), ga = ToDevice(*ctx, MatF::Zero(B, C));
  BatchNormShape s{B, C, DeviceAct::kSwish, 1.f, 0.9f, 1e-5f};
  BatchNormTensors t{gamma.data(), beta.data(), rm.data(), rv.data(), xhat.data(), inv.data()};
  ASSERT_TRUE(BatchNormActForward(s, true, gx.data(), t, gzn.data(), ga.data(), ctx->compute()).ok());
  ExpectClose("zn", zn, ToHost(*ctx, gzn, B, C), 1e-5, 1e-5);
  ExpectClose("a", a, ToHost(*ctx, ga, B, C), 1e-5, 1e-5);
  ExpectClose("running_mean", MatF(bn.running_mean), ToHost(*ctx, rm, 1, C), 1e-5, 1e-5);
  ExpectClose("running_var", MatF(bn.running_var), ToHost(*ctx, rv, 1, C), 1e-5, 1e-5);

  auto gda = ToDevice(*ctx, da), dg = ToDevice(*ctx, MatF::Zero(1, C)), dbeta = ToDevice(*ctx, MatF::Zero(1, C));
  auto gdx = ToDevice(*ctx, MatF::Zero(B, C));
  ASSERT_TRUE(BatchNormActBackward(s, t, gzn.data(), gda.data(), dg.data(), dbeta.data(), gdx.data(), ctx->compute()).ok());
  ExpectClose("dgamma", bn.gamma.grad, ToHost(*ctx, dg, 1, C), 2e-4, 2e-4);
  ExpectClose("dbeta", bn.beta.grad, ToHost(*ctx, dbeta, 1, C), 2e-4, 2e-4);
  ExpectClose("dx", dx, ToHost(*ctx, gdx, B, C), 2e-4, 2e-4);

  // Inference mode reads the running statistics both sides just updated.
  MatF zn_inf, a_inf;
  bn.Forward(x, /*training=*/false, &zn_inf);
  ASSERT_TRUE(BatchNormActForward(s, false, gx.data(), t, gzn.data(), ga.data(), ctx->compute()).ok());
  ExpectClose("zn (inference)", zn_inf, ToHost(*ctx, gzn, B, C), 1e-5, 1e-5);
}

TEST(CudaDenseOpsTest, FeatureGateForwardBackward) {
  FRESHET_CUDA_CONTEXT_OR_SKIP(ctx);
  cpu::Rng rng(15);
  const int B = 17, D = 12, l = 3;
  cpu::FeatureGate<float> fg("fg", D, l, &rng);
  fg.up.value = Random(&rng, l, D, 0.5);  // away from the identity start, so f ≠ 1
  MatF x = Random(&rng, B, D), dxg = Random(&rng, B, D), xg, dx = MatF::Zero(B, D);
  fg.Forward(x, &xg);
  fg.Backward(x, dxg, &dx);

  auto gx = ToDevice(*ctx, x), down = ToDevice(*ctx, fg.down.value), up = ToDevice(*ctx, fg.up.value);
  auto t = ToDevice(*ctx, MatF::Zero(B, l)), f = ToDevice(*ctx, MatF::Zero(B, D)), gxg = ToDevice(*ctx, MatF::Zero(B, D));
  const FeatureGateShape s{B, D, l};
  ASSERT_TRUE(FeatureGateForward(*ctx, s, gx.data(), down.data(), up.data(), t.data(), f.data(), gxg.data()).ok());
  ExpectClose("xg", xg, ToHost(*ctx, gxg, B, D), kGemmTol, kGemmTol);
  auto gdxg = ToDevice(*ctx, dxg), du = ToDevice(*ctx, MatF::Zero(B, D)), dt = ToDevice(*ctx, MatF::Zero(B, l));
  auto ddown = ToDevice(*ctx, MatF::Zero(D, l)), dup = ToDevice(*ctx, MatF::Zero(l, D)), gdx = ToDevice(*ctx, MatF::Zero(B, D));
  ASSERT_TRUE(FeatureGateBackward(*ctx, s, gx.data(), down.data(), up.data(), t.data(), f.data(), gdxg.data(), du.data(),
                                  dt.data(), ddown.data(), dup.data(), gdx.data()).ok());
  ExpectClose("ddown", fg.down.grad, ToHost(*ctx, ddown, D, l), kGemmTol, kGemmTol);
  ExpectClose("dup", fg.up.grad, ToHost(*ctx, dup, l, D), kGemmTol, kGemmTol);
  ExpectClose("dx", dx, ToHost(*ctx, gdx, B, D), kGemmTol, kGemmTol);
}

// Softmax (MMoE/PLE gates, with bias) and sigmoid (HoME self gate, accumulating).
TEST(CudaDenseOpsTest, GateMixtureForwardBackward) {
  FRESHET_CUDA_CONTEXT_OR_SKIP(ctx);
  for (const bool softmax : {true, false}) {
    cpu::Rng rng(softmax ? 16 : 17);
    const int B = 29, in = 11, n = 5, d = 7;
    using Gate = cpu::MixtureGate<float>;
    Gate gate("gate", in, n, softmax ? Gate::Kind::kSoftmax : Gate::Kind::kSigmoid, /*bias=*/softmax, &rng);
    std::vector<cpu::Param<float>*> params;
    gate.CollectParams(&params);
    MatF x = Random(&rng, B, in), e = Random(&rng, B, n * d + 3), de = MatF::Zero(B, n * d + 3);
    MatF h0 = Random(&rng, B, d), h = h0, dh = Random(&rng, B, d), dx = MatF::Zero(B, in);
    std::vector<Gate::ExpertView> views;
    for (int i = 0; i < n; ++i) views.push_back({&e, &de, 3 + i * d});  // column offset 3: not at 0
    gate.Forward(x, views, d, /*accumulate=*/!softmax, &h);
    gate.Backward(x, views, d, dh, &dx);

    auto gx = ToDevice(*ctx, x), ge = ToDevice(*ctx, e), gde = ToDevice(*ctx, MatF::Zero(B, n * d + 3));
    auto w = ToDevice(*ctx, params[0]->value);
    DeviceBuffer<float> b;
    if (softmax) b = ToDevice(*ctx, params[1]->value);
    auto g = ToDevice(*ctx, MatF::Zero(B, n)), gh = ToDevice(*ctx, h0);
    GateExperts ex;
    ex.n = n;
    for (int i = 0; i < n; ++i) ex.value[i] = ge.data() + 3 + i * d, ex.grad[i] = gde.data() + 3 + i * d, ex.ld[i] = n * d + 3;
    const GateShape s{B, in, d, softmax};
    ASSERT_TRUE(MixtureGateForward(*ctx, s, gx.data(), w.data(), softmax ? b.data() : nullptr, ex, !softmax, g.data(), gh.data()).ok());
    ExpectClose("g", gate.weights(), ToHost(*ctx, g, B, n), 1e-5, 1e-5);
    ExpectClose("h", h, ToHost(*ctx, gh, B, d), kGemmTol, kGemmTol);

    auto gdh = ToDevice(*ctx, dh), dz = ToDevice(*ctx, MatF::Zero(B, n)), dw = ToDevice(*ctx, MatF::Zero(in, n));
    auto db = ToDevice(*ctx, MatF::Zero(1, n)), gdx = ToDevice(*ctx, MatF::Zero(B, in));
    ASSERT_TRUE(MixtureGateBackward(*ctx, s, gx.data(), w.data(), ex, g.data(), gdh.data(), dz.data(), dw.data(),
                                    softmax ? db.data() : nullptr, gdx.data()).ok());
    ExpectClose("de", de, ToHost(*ctx, gde, B, n * d + 3), kGemmTol, kGemmTol);
    ExpectClose("dW", params[0]->grad, ToHost(*ctx, dw, in, n), kGemmTol, kGemmTol);
    if (softmax) ExpectClose("db", params[1]->grad, ToHost(*ctx, db, 1, n), kGemmTol, kGemmTol);
    ExpectClose("dx", dx, ToHost(*ctx, gdx, B, in), kGemmTol, kGemmTol);
  }
}

}  // namespace
}  // namespace freshet::learner::cuda::testing
