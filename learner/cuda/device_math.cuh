// Device-side pieces shared by the kernels of learner/cuda/: the grid-stride loop,
// the sigmoid and activation formulas, and the block tree sum. One copy of each, so
// the standalone activation kernels and the fused BatchNorm + activation cannot drift
// apart, and every sigmoid rounds the same way. Device code: include from .cu files.
#pragma once

#include <cuda_runtime.h>

#include "learner/cuda/activation.cuh"

// for (long long i = ...; i < n; ...) over the whole grid; pair with GridFor(n, block).
#define FRESHET_GRID_STRIDE_LOOP(i, n)                                                          \
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < (n); \
       i += static_cast<long long>(gridDim.x) * blockDim.x)

namespace freshet::learner::cuda {

__device__ __forceinline__ float SigmoidF(float x) { return 1.f / (1.f + expf(-x)); }

// act(v): ReLU, Swish v·σ(βv), identity.
__device__ __forceinline__ float ActF(DeviceAct act, float beta, float v) {
  if (act == DeviceAct::kRelu) return v > 0.f ? v : 0.f;
  if (act == DeviceAct::kSwish) return v * SigmoidF(beta * v);
  return v;
}

// d · act'(v), in the order cpu::ActivationBackward computes it (ReLU selects d or 0,
// so a non-finite d on the flat side does not leak through as NaN).
__device__ __forceinline__ float ActBackwardF(DeviceAct act, float beta, float v, float d) {
  if (act == DeviceAct::kRelu) return v > 0.f ? d : 0.f;
  if (act == DeviceAct::kSwish) {
    const float s = SigmoidF(beta * v);
    return d * (s * (1.f + beta * v * (1.f - s)));  // σ(βv)(1 + βv(1 − σ(βv)))
  }
  return d;
}

// Σ v over the block, returned to every thread. REQUIRES: every thread of the block
// calls it; blockDim.x is a power of two; red holds blockDim.x floats.
__device__ __forceinline__ float BlockSum(float v, float* red) {
  red[threadIdx.x] = v;
  __syncthreads();
  for (int stride = blockDim.x / 2; stride > 0; stride /= 2) {
    if (threadIdx.x < stride) red[threadIdx.x] += red[threadIdx.x + stride];
    __syncthreads();
  }
  const float out = red[0];
  __syncthreads();  // red is reused by the next call
  return out;
}

}  // namespace freshet::learner::cuda
