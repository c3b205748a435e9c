// HoME feature gate x' = x ⊙ 2σ(x B A) on the device, forward and backward: the
// counterpart of cpu::FeatureGate (learner/cpu/layers.h; docs/models.md §0, §3.5).
// P = BA is never materialised: two GEMMs go through the rank-l bottleneck.
//
//   forward:  t = x·down (B, l);  u = t·up (B, D);  f = 2σ(u);  xg = x ⊙ f
//   backward: du = dxg ⊙ x ⊙ f(1 − f/2);  dx += dxg ⊙ f            (one kernel)
//             dup += tᵀ du;  dt = du upᵀ;  ddown += xᵀ dt;  dx += dt downᵀ   (GEMMs)
//
// Thread-safety: stateless launchers.
#pragma once

#include "learner/cuda/device.cuh"

namespace freshet::learner::cuda {

struct FeatureGateShape {
  int batch = 0;  // B
  int dim = 0;    // D
  int rank = 0;   // l
};

// down (D, l), up (l, D). Writes t (B, l), f (B, D) (kept for backward) and xg (B, D).
[[nodiscard]] Status FeatureGateForward(const DeviceContext& ctx, const FeatureGateShape& s, const float* x,
                                        const float* down, const float* up, float* t, float* f, float* xg);
// du (B, D) and dt (B, l) are scratch. ddown, dup, dx accumulate.
[[nodiscard]] Status FeatureGateBackward(const DeviceContext& ctx, const FeatureGateShape& s, const float* x,
                                         const float* down, const float* up, const float* t, const float* f,
                                         const float* dxg, float* du, float* dt, float* ddown, float* dup, float* dx);

}  // namespace freshet::learner::cuda
