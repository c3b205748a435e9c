// Row scatter kernel; see row_scatter.cuh.
#include "learner/cuda/row_scatter.cuh"

#include "learner/cuda/cuda_check.cuh"
#include "learner/cuda/device_math.cuh"

namespace freshet::learner::cuda {
namespace {

__global__ void row_scatter_forward_kernel(float* arena, int stride, const int32_t* rows, const float* src, int n) {
  const long long total = static_cast<long long>(n) * stride;
  FRESHET_GRID_STRIDE_LOOP(i, total) {
    const long long r = i / stride;
    arena[static_cast<long long>(rows[r]) * stride + i % stride] = src[i];
  }
}

}  // namespace

Status ScatterRows(float* arena, int stride, const int32_t* rows, const float* src, int n, cudaStream_t stream) {
  if (stride <= 0 || n < 0) return InvalidArgumentError("ScatterRows: bad shape");
  if (n == 0) return Status::Ok();
  row_scatter_forward_kernel<<<GridFor(static_cast<long long>(n) * stride, 256), 256, 0, stream>>>(arena, stride, rows,
                                                                                                   src, n);
  RETURN_IF_LAUNCH_ERROR("row_scatter_forward_kernel");
  return Status::Ok();
}

}  // namespace freshet::learner::cuda
