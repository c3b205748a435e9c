// ReLU / Swish / identity forward and backward kernels; see activation.cuh.
#include "learner/cuda/activation.cuh"

#include "learner/cuda/cuda_check.cuh"

namespace freshet::learner::cuda {
namespace {

constexpr int kBlock = 256;

__device__ __forceinline__ float SigmoidF(float x) { return 1.f / (1.f + expf(-x)); }

__global__ void activation_forward_kernel(int act, float beta, const float* z, float* a, long long n) {
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<long long>(gridDim.x) * blockDim.x) {
    const float v = z[i];
    if (act == static_cast<int>(DeviceAct::kRelu)) a[i] = v > 0.f ? v : 0.f;
    else if (act == static_cast<int>(DeviceAct::kSwish)) a[i] = v * SigmoidF(beta * v);
    else a[i] = v;
  }
}

__global__ void activation_backward_kernel(int act, float beta, const float* z, const float* da, float* dz,
                                           long long n) {
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<long long>(gridDim.x) * blockDim.x) {
    const float v = z[i];
    if (act == static_cast<int>(DeviceAct::kRelu)) {
      dz[i] = v > 0.f ? da[i] : 0.f;
    } else if (act == static_cast<int>(DeviceAct::kSwish)) {
      const float s = SigmoidF(beta * v);
      dz[i] = da[i] * s * (1.f + beta * v * (1.f - s));  // σ(βz)(1 + βz(1 − σ(βz)))
    } else {
      dz[i] = da[i];
    }
  }
}

}  // namespace

Status ActivationForward(DeviceAct act, float beta, const float* z, float* a, long long n, cudaStream_t stream) {
  if (n < 0) return InvalidArgumentError("ActivationForward: negative size");
  if (n == 0) return Status::Ok();
  activation_forward_kernel<<<GridFor(n, kBlock), kBlock, 0, stream>>>(static_cast<int>(act), beta, z, a, n);
  RETURN_IF_LAUNCH_ERROR("activation_forward_kernel");
  return Status::Ok();
}

Status ActivationBackward(DeviceAct act, float beta, const float* z, const float* da, float* dz, long long n,
                          cudaStream_t stream) {
  if (n < 0) return InvalidArgumentError("ActivationBackward: negative size");
  if (n == 0) return Status::Ok();
  activation_backward_kernel<<<GridFor(n, kBlock), kBlock, 0, stream>>>(static_cast<int>(act), beta, z, da, dz, n);
  RETURN_IF_LAUNCH_ERROR("activation_backward_kernel");
  return Status::Ok();
}

}  // namespace freshet::learner::cuda
