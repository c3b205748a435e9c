// Sparse Adagrad and FTRL-Proximal updates of embedding rows on the device, the
// counterpart of cpu::SparseOptimizer::Step (formulas in learner/cpu/optimizer.h).
// Rows live in a per-slot arena with the CPU table's layout (embedding_bag.cuh):
// [ w (dim) | state ], Adagrad state = accumulator (dim), FTRL state = z (dim), n (dim).
//
//   SparseAdagradUpdate(arena, stride, dim, rows, grad, U, lr, eps, stream);
//
// REQUIRES: rows (U) are distinct (one thread per element, no atomics). The host
// bounds-checks U and dim; row indices must lie inside the arena (the host map
// produced them).
//
// Thread-safety: stateless launchers.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "common/status.h"

namespace freshet::learner::cuda {

struct FtrlParams {
  float alpha = 0.05f, beta = 1.f, l1 = 0.f, l2 = 0.f;
};

// a ← a + g²;  w ← w − lr·g/(√a + ε).  grad: (U, dim).
[[nodiscard]] Status SparseAdagradUpdate(float* arena, int stride, int dim, const int32_t* rows, const float* grad,
                                         int num_rows, float lr, float eps, cudaStream_t stream);
// σ = (√(n+g²) − √n)/α; z ← z + g − σw; n ← n + g²; w = prox(z, n).
[[nodiscard]] Status SparseFtrlUpdate(float* arena, int stride, int dim, const int32_t* rows, const float* grad,
                                      int num_rows, const FtrlParams& p, cudaStream_t stream);

}  // namespace freshet::learner::cuda
