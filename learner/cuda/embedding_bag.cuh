// Embedding bags over CSR ids on the device: the pooling of cpu::Model::EmbedBatch and
// the row-gradient scatter of cpu::Model::Backward (learner/cpu/model.cc).
//
// Row storage is one arena per slot with the CPU EmbeddingTable's row layout,
// `stride` = dim·(1 + state_width) floats per row: [ w (dim) | optimizer state ].
// The id → row map stays on the host; it resolves the batch's ids to two arrays:
//
//   occurrence (nnz)  per id occurrence: index u into the batch's distinct rows, or −1
//                     (id not admitted / unknown: pools as zeros, gets no gradient)
//   rows       (U)    per distinct row u: its row in the arena
//   offsets    (B+1)  the slot's CSR offsets; bag b = occurrences [offsets[b], offsets[b+1])
//
//   x[b, column : column+dim]  = Σ_{j in bag b, u=occ[j] ≥ 0} arena[rows[u]·stride : +dim]  (÷ |bag| if mean)
//   grad[u, :]                += scale_b · dx[b, column : column+dim]   (scale_b = 1/|bag| if mean)
//
// Forward sums each bag in id order (like the CPU loop); backward uses atomicAdd, so
// repeated ids within a batch sum in an unspecified order (float rounding only).
//
// Thread-safety: stateless launchers.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "common/status.h"

namespace freshet::learner::cuda {

struct BagShape {
  int batch = 0;    // B
  int dim = 0;      // slot width
  int stride = 0;   // floats per arena row (≥ dim)
  int column = 0;   // first column of the slot in x / dx
  int ld = 0;       // row length of x / dx (D_in)
  bool mean = false;
};

// Writes x[:, column : column+dim] for every bag (other columns untouched).
[[nodiscard]] Status EmbeddingBagForward(const BagShape& shape, const float* arena, const int32_t* offsets,
                                         const int32_t* occurrence, const int32_t* rows, float* x,
                                         cudaStream_t stream);
// Accumulates grad (U, dim) += per-occurrence slices of dx. Zero grad first.
[[nodiscard]] Status EmbeddingBagBackward(const BagShape& shape, const float* dx, const int32_t* offsets,
                                          const int32_t* occurrence, float* grad, cudaStream_t stream);

}  // namespace freshet::learner::cuda
