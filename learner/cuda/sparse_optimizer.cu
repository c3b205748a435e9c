// Sparse Adagrad / FTRL row updates, one thread per (row, element); see
// sparse_optimizer.cuh. The float expressions follow cpu::SparseOptimizer term by term.
#include "learner/cuda/sparse_optimizer.cuh"

#include "learner/cuda/cuda_check.cuh"

namespace freshet::learner::cuda {
namespace {

constexpr int kBlock = 256;

__global__ void sparse_adagrad_update_kernel(float* arena, int stride, int dim, const int32_t* rows,
                                             const float* grad, int num_rows, float lr, float eps) {
  const long long n = static_cast<long long>(num_rows) * dim;
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<long long>(gridDim.x) * blockDim.x) {
    const long long u = i / dim;
    const int c = static_cast<int>(i % dim);
    float* w = arena + static_cast<long long>(rows[u]) * stride;
    float* acc = w + dim;
    const float g = grad[i];
    acc[c] += g * g;
    w[c] -= lr * g / (sqrtf(acc[c]) + eps);
  }
}

__global__ void sparse_ftrl_update_kernel(float* arena, int stride, int dim, const int32_t* rows, const float* grad,
                                          int num_rows, FtrlParams p) {
  const long long n = static_cast<long long>(num_rows) * dim;
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<long long>(gridDim.x) * blockDim.x) {
    const long long u = i / dim;
    const int c = static_cast<int>(i % dim);
    float* w = arena + static_cast<long long>(rows[u]) * stride;
    float* z = w + dim;      // [dim, 2·dim)
    float* nn = w + 2 * dim; // [2·dim, 3·dim)
    const float g = grad[i];
    const float sigma = (sqrtf(nn[c] + g * g) - sqrtf(nn[c])) / p.alpha;
    z[c] += g - sigma * w[c];
    nn[c] += g * g;
    const float zc = z[c];
    w[c] = fabsf(zc) <= p.l1 ? 0.f : -(zc - (zc > 0.f ? p.l1 : -p.l1)) / ((p.beta + sqrtf(nn[c])) / p.alpha + p.l2);
  }
}

Status CheckRows(int stride, int dim, int num_rows, int state_width) {
  if (dim <= 0 || num_rows < 0 || stride < dim * (1 + state_width))
    return InvalidArgumentError("sparse update: bad shape (dim " + std::to_string(dim) + ", stride " +
                                std::to_string(stride) + ", rows " + std::to_string(num_rows) + ")");
  return Status::Ok();
}

}  // namespace

Status SparseAdagradUpdate(float* arena, int stride, int dim, const int32_t* rows, const float* grad, int num_rows,
                           float lr, float eps, cudaStream_t stream) {
  RETURN_IF_ERROR(CheckRows(stride, dim, num_rows, 1));
  if (num_rows == 0) return Status::Ok();
  sparse_adagrad_update_kernel<<<GridFor(static_cast<long long>(num_rows) * dim, kBlock), kBlock, 0, stream>>>(
      arena, stride, dim, rows, grad, num_rows, lr, eps);
  RETURN_IF_LAUNCH_ERROR("sparse_adagrad_update_kernel");
  return Status::Ok();
}

Status SparseFtrlUpdate(float* arena, int stride, int dim, const int32_t* rows, const float* grad, int num_rows,
                        const FtrlParams& p, cudaStream_t stream) {
  RETURN_IF_ERROR(CheckRows(stride, dim, num_rows, 2));
  if (p.alpha <= 0.f) return InvalidArgumentError("sparse FTRL: alpha must be > 0");
  if (num_rows == 0) return Status::Ok();
  sparse_ftrl_update_kernel<<<GridFor(static_cast<long long>(num_rows) * dim, kBlock), kBlock, 0, stream>>>(
      arena, stride, dim, rows, grad, num_rows, p);
  RETURN_IF_LAUNCH_ERROR("sparse_ftrl_update_kernel");
  return Status::Ok();
}

}  // namespace freshet::learner::cuda
