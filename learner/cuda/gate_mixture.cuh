// Fused gate softmax (or sigmoid) + expert mixture, forward and backward: the
// counterpart of cpu::MixtureGate (learner/cpu/layers.h; math in docs/models.md §0).
//
//   z = x W_g (+ b_g) (B, n)      cuBLAS GEMM
//   g = softmax(z) | σ(z)         ┐ one kernel, one block per row
//   h = [h +] Σ_i g_i ⊙ e_i (B, d) ┘
//
// Backward (one kernel per row, then two GEMMs):
//   de_i += g_i ⊙ dh;  a_i = ⟨dh, e_i⟩;  dz_j = g_j(a_j − Σ_i g_i a_i)  | a ⊙ g(1−g)
//   dW_g += xᵀ dz;  db_g += Σ dz;  dx += dz W_gᵀ
//
// Experts are column blocks of device matrices, described by GateExperts: expert i
// starts at value[i] (already offset to its first column) with row length ld[i].
// At most kMaxGateExperts experts per gate (checked on the host).
//
// Thread-safety: stateless launchers.
#pragma once

#include "learner/cuda/device.cuh"

namespace freshet::learner::cuda {

constexpr int kMaxGateExperts = 64;

struct GateExperts {
  int n = 0;
  const float* value[kMaxGateExperts] = {};
  float* grad[kMaxGateExperts] = {};  // same layout as value; Backward accumulates
  int ld[kMaxGateExperts] = {};
};

struct GateShape {
  int batch = 0;  // B
  int in = 0;     // selector width
  int d = 0;      // expert width
  bool softmax = true;  // false: per-entry sigmoid (HoME self gate)
};

// g: (B, n) gate weights out (kept for Backward and diagnostics). h: (B, d).
[[nodiscard]] Status MixtureGateForward(const DeviceContext& ctx, const GateShape& s, const float* x,
                                        const float* w, const float* b, const GateExperts& experts,
                                        bool accumulate, float* g, float* h);
// dz: (B, n) scratch. dw (in, n), db (n) or null, dx (B, in) or null accumulate.
[[nodiscard]] Status MixtureGateBackward(const DeviceContext& ctx, const GateShape& s, const float* x,
                                         const float* w, const GateExperts& experts, const float* g,
                                         const float* dh, float* dz, float* dw, float* db, float* dx);

}  // namespace freshet::learner::cuda
