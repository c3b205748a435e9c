// ReLU / Swish / identity forward and backward kernels; see activation.cuh.
#include "learner/cuda/activation.cuh"

#include "learner/cuda/cuda_check.cuh"
#include "learner/cuda/device_math.cuh"

namespace freshet::learner::cuda {
namespace {

constexpr int kBlock = 256;

__global__ void activation_forward_kernel(DeviceAct act, float beta, const float* z, float* a, long long n) {
  FRESHET_GRID_STRIDE_LOOP(i, n) a[i] = ActF(act, beta, z[i]);
}

__global__ void activation_backward_kernel(DeviceAct act, float beta, const float* z, const float* da, float* dz,
                                           long long n) {
  FRESHET_GRID_STRIDE_LOOP(i, n) dz[i] = ActBackwardF(act, beta, z[i], da[i]);
}

}  // namespace

Status ActivationForward(DeviceAct act, float beta, const float* z, float* a, long long n, cudaStream_t stream) {
  if (n < 0) return InvalidArgumentError("ActivationForward: negative size");
  if (n == 0) return Status::Ok();
  activation_forward_kernel<<<GridFor(n, kBlock), kBlock, 0, stream>>>(act, beta, z, a, n);
  RETURN_IF_LAUNCH_ERROR("activation_forward_kernel");
  return Status::Ok();
}

Status ActivationBackward(DeviceAct act, float beta, const float* z, const float* da, float* dz, long long n,
                          cudaStream_t stream) {
  if (n < 0) return InvalidArgumentError("ActivationBackward: negative size");
  if (n == 0) return Status::Ok();
  activation_backward_kernel<<<GridFor(n, kBlock), kBlock, 0, stream>>>(act, beta, z, da, dz, n);
  RETURN_IF_LAUNCH_ERROR("activation_backward_kernel");
  return Status::Ok();
}

}  // namespace freshet::learner::cuda
