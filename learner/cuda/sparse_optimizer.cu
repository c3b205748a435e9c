// Sparse Adagrad / FTRL row updates, one thread per (row, element); see
// sparse_optimizer.cuh. The float expressions follow cpu::SparseOptimizer term by term.
#include "learner/cuda/sparse_optimizer.cuh"

#include "learner/cuda/cuda_check.cuh"
#include "learner/cuda/device_math.cuh"

namespace freshet::learner::cuda {
namespace {

constexpr int kBlock = 256;

// One thread per (row u, element c); kFtrl picks the update. Rows are distinct, so
// no two threads touch the same weights or state.
template <bool kFtrl>
__global__ void sparse_update_kernel(float* arena, int stride, int dim, const int32_t* rows, const float* grad,
                                     int num_rows, float lr, float eps, FtrlParams p) {
  const long long n = static_cast<long long>(num_rows) * dim;
  FRESHET_GRID_STRIDE_LOOP(i, n) {
    const int c = static_cast<int>(i % dim);
    float* w = arena + static_cast<long long>(rows[i / dim]) * stride;
    const float g = grad[i];
    if (!kFtrl) {
      float* acc = w + dim;  // Adagrad accumulator
      acc[c] += g * g;
      w[c] -= lr * g / (sqrtf(acc[c]) + eps);
      continue;
    }
    float* z = w + dim;       // [dim, 2·dim)
    float* nn = w + 2 * dim;  // [2·dim, 3·dim)
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
  sparse_update_kernel<false><<<GridFor(static_cast<long long>(num_rows) * dim, kBlock), kBlock, 0, stream>>>(
      arena, stride, dim, rows, grad, num_rows, lr, eps, FtrlParams{});
  RETURN_IF_LAUNCH_ERROR("sparse_update_kernel<adagrad>");
  return Status::Ok();
}

Status SparseFtrlUpdate(float* arena, int stride, int dim, const int32_t* rows, const float* grad, int num_rows,
                        const FtrlParams& p, cudaStream_t stream) {
  RETURN_IF_ERROR(CheckRows(stride, dim, num_rows, 2));
  if (p.alpha <= 0.f) return InvalidArgumentError("sparse FTRL: alpha must be > 0");
  if (num_rows == 0) return Status::Ok();
  sparse_update_kernel<true><<<GridFor(static_cast<long long>(num_rows) * dim, kBlock), kBlock, 0, stream>>>(
      arena, stride, dim, rows, grad, num_rows, 0.f, 0.f, p);
  RETURN_IF_LAUNCH_ERROR("sparse_update_kernel<ftrl>");
  return Status::Ok();
}

}  // namespace freshet::learner::cuda
