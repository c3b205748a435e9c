// Linear layer y = x W + b on the device: the counterpart of cpu::Linear
// (learner/cpu/layers.h), same parameter shapes, W (in, out) row-major, b (1, out).
//
//   LinearForward(ctx, x, B, in, w, b, out, y);          // y (B, out) overwritten
//   LinearBackward(ctx, x, dy, B, in, w, out, dw, db, dx);  // dW += xᵀdy, db += Σdy, dx += dy Wᵀ
//
// b / db / dx may be null (no bias, no input gradient). Thread-safety: stateless.
#pragma once

#include <cuda_runtime.h>

#include "learner/cuda/device.cuh"

namespace freshet::learner::cuda {

// y (B, out) = x (B, in) · w (in, out) [+ b (out)].
[[nodiscard]] Status LinearForward(const DeviceContext& ctx, const float* x, int batch, int in, const float* w,
                                   const float* b, int out, float* y);
// dw (in, out) += xᵀ dy; db (out) += column sums of dy; dx (B, in) += dy wᵀ.
[[nodiscard]] Status LinearBackward(const DeviceContext& ctx, const float* x, const float* dy, int batch, int in,
                                    const float* w, int out, float* dw, float* db, float* dx);

// y (rows, cols) += b (cols) on every row.
[[nodiscard]] Status BiasAddForward(float* y, const float* b, int rows, int cols, cudaStream_t stream);
// out (cols) += Σ_rows m (rows, cols): the bias gradient.
[[nodiscard]] Status ColumnSumAccumulate(const float* m, int rows, int cols, float* out, cudaStream_t stream);

}  // namespace freshet::learner::cuda
