// One layer of an ExpertGroup as ONE strided-batched cuBLAS GEMM: the counterpart of
// the per-expert block products in cpu::ExpertGroup (learner/cpu/expert_group.cc).
// Same parameter layout: W (w_in, n·w_out) with expert e's weights in column block e,
// b (1, n·w_out).
//
//   input block e: in + e·in_stride, rows of length in_ld
//     layer l > 0:        in = a_{l-1} (B, n·w_in), in_ld = n·w_in, in_stride = w_in
//     gated layer 0:      in = xg (n, B, D) stacked, in_ld = D, in_stride = B·D
//     shared layer 0:     in = x (B, D), in_ld = D, in_stride = 0  (every expert reads x)
//   out (B, n·w_out): z_e = in_e · W_e + b_e
//
// Backward: dW_e += in_eᵀ dz_e; db += Σ dz; din_e = din_beta·din_e + dz_e W_eᵀ.
// With in_stride = 0 the input gradient of all experts lands in one matrix, which a
// batched GEMM cannot accumulate safely: then it is a single (B, n·w_out)·(n·w_out, D)
// GEMM instead (the CPU's "two GEMMs for all experts").
//
// Thread-safety: stateless launchers.
#pragma once

#include "learner/cuda/device.cuh"

namespace freshet::learner::cuda {

struct ExpertBlocks {
  int experts = 0;       // n
  int batch = 0;         // B
  int w_in = 0;
  int w_out = 0;
  int in_ld = 0;
  long long in_stride = 0;
};

[[nodiscard]] Status ExpertBlocksForward(const DeviceContext& ctx, const ExpertBlocks& s, const float* in,
                                         const float* w, const float* b, float* out);
// din may be null (no input gradient). din_beta: 0 overwrites, 1 accumulates.
[[nodiscard]] Status ExpertBlocksBackward(const DeviceContext& ctx, const ExpertBlocks& s, const float* in,
                                          const float* dz, const float* w, float* dw, float* db, float* din,
                                          float din_beta);

}  // namespace freshet::learner::cuda
