// Fused BatchNorm + activation (HoME's expert normalisation + Swish), forward and
// backward: the counterpart of cpu::BatchNorm followed by cpu::ActivationForward on the
// same (B, C) matrix (learner/cpu/expert_group.cc; math in docs/models.md §0).
//
//   training:  μ, σ² (biased, two-pass) per channel over B rows; x̂ = (x−μ)/√(σ²+ε)
//              running ← m·running + (1−m)·batch stat
//   inference: μ, σ² = running stats
//   zn = γ x̂ + β;   a = act(zn)   (Swish: zn·σ(β_s zn); ReLU; identity)
//
// Backward (training forward only): dzn = da ⊙ act'(zn);
//   dγ += Σ dzn·x̂;  dβ += Σ dzn;  dx += γ/(B√(σ²+ε)) (B·dzn − Σdzn − x̂ Σ dzn·x̂)
//
// Blocks are 32 channels × 8 row lanes: a warp reads 32 neighbouring channels of one
// row (coalesced), and the 8 lanes' partial sums are combined in shared memory.
//
// Thread-safety: stateless launchers.
#pragma once

#include <cuda_runtime.h>

#include "common/status.h"
#include "learner/cuda/activation.cuh"

namespace freshet::learner::cuda {

struct BatchNormShape {
  int batch = 0;     // B (≥ 2 in training mode)
  int channels = 0;  // C
  DeviceAct act = DeviceAct::kNone;
  float swish_beta = 1.f;
  float momentum = 0.99f;
  float eps = 1e-5f;
};

struct BatchNormTensors {
  const float* gamma = nullptr;  // (C)
  const float* beta = nullptr;   // (C)
  float* running_mean = nullptr; // (C), updated in training mode
  float* running_var = nullptr;  // (C), updated in training mode
  float* xhat = nullptr;         // (B, C) saved for backward (training)
  float* inv_std = nullptr;      // (C) saved for backward (training)
};

// x (B, C) → zn (B, C) (post-BN, pre-activation) and a (B, C).
[[nodiscard]] Status BatchNormActForward(const BatchNormShape& s, bool training, const float* x,
                                         const BatchNormTensors& t, float* zn, float* a, cudaStream_t stream);
// da (B, C) → dgamma, dbeta (C) and dx (B, C), all accumulated.
[[nodiscard]] Status BatchNormActBackward(const BatchNormShape& s, const BatchNormTensors& t, const float* zn,
                                          const float* da, float* dgamma, float* dbeta, float* dx,
                                          cudaStream_t stream);

}  // namespace freshet::learner::cuda
