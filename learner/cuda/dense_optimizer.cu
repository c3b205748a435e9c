// Dense Adam / Adagrad update kernels; see dense_optimizer.cuh.
#include "learner/cuda/dense_optimizer.cuh"

#include "learner/cuda/cuda_check.cuh"
#include "learner/cuda/device_math.cuh"

namespace freshet::learner::cuda {
namespace {

constexpr int kBlock = 256;

__global__ void adam_update_kernel(AdamStep s, float* w, const float* g, float* m, float* v, long long n) {
  FRESHET_GRID_STRIDE_LOOP(i, n) {
    const float gi = g[i];
    const float mi = s.beta1 * m[i] + (1.f - s.beta1) * gi;
    const float vi = s.beta2 * v[i] + (1.f - s.beta2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    w[i] -= s.lr * (mi / s.c1) / (sqrtf(vi / s.c2) + s.eps);
  }
}

__global__ void dense_adagrad_update_kernel(float lr, float eps, float* w, const float* g, float* a, long long n) {
  FRESHET_GRID_STRIDE_LOOP(i, n) {
    const float gi = g[i];
    a[i] += gi * gi;
    w[i] -= lr * gi / (sqrtf(a[i]) + eps);
  }
}

}  // namespace

Status AdamUpdate(const AdamStep& s, float* w, const float* g, float* m, float* v, long long n, cudaStream_t stream) {
  if (n < 0) return InvalidArgumentError("AdamUpdate: negative size");
  if (s.c1 == 0.f || s.c2 == 0.f) return InvalidArgumentError("AdamUpdate: step t must be >= 1");
  if (n == 0) return Status::Ok();
  adam_update_kernel<<<GridFor(n, kBlock), kBlock, 0, stream>>>(s, w, g, m, v, n);
  RETURN_IF_LAUNCH_ERROR("adam_update_kernel");
  return Status::Ok();
}

Status DenseAdagradUpdate(float lr, float eps, float* w, const float* g, float* a, long long n, cudaStream_t stream) {
  if (n < 0) return InvalidArgumentError("DenseAdagradUpdate: negative size");
  if (n == 0) return Status::Ok();
  dense_adagrad_update_kernel<<<GridFor(n, kBlock), kBlock, 0, stream>>>(lr, eps, w, g, a, n);
  RETURN_IF_LAUNCH_ERROR("dense_adagrad_update_kernel");
  return Status::Ok();
}

}  // namespace freshet::learner::cuda
