// Writes whole rows into an embedding arena on the device: how rows the GPU has not
// held yet (new admissions, rows the host reused after an eviction) arrive from the
// host table, in one launch per batch instead of one copy per row.
//
//   arena[rows[i]·stride : +stride] = src[i·stride : +stride]   for i < n
//
// Thread-safety: stateless launcher.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "common/status.h"

namespace freshet::learner::cuda {

// REQUIRES: rows (n) distinct and inside the arena (the host checked them).
[[nodiscard]] Status ScatterRows(float* arena, int stride, const int32_t* rows, const float* src, int n,
                                 cudaStream_t stream);

}  // namespace freshet::learner::cuda
