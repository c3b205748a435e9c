// Linear forward/backward: two cuBLAS GEMMs plus the bias kernels; see linear.cuh.
#include "learner/cuda/linear.cuh"

#include "learner/cuda/device_math.cuh"
#include "learner/cuda/gemm.cuh"

namespace freshet::learner::cuda {
namespace {

constexpr int kBlock = 256;

__global__ void bias_add_forward_kernel(float* y, const float* b, int rows, int cols) {
  const long long n = static_cast<long long>(rows) * cols;
  FRESHET_GRID_STRIDE_LOOP(i, n)
    y[i] += b[i % cols];
}

// One thread per column walks the rows: neighbouring threads read neighbouring
// addresses, so every row is one coalesced read. Sums in a register, in row order.
__global__ void column_sum_backward_kernel(const float* m, int rows, int cols, float* out) {
  for (int c = blockIdx.x * blockDim.x + threadIdx.x; c < cols; c += gridDim.x * blockDim.x) {
    float s = 0.f;
    for (int r = 0; r < rows; ++r) s += m[static_cast<long long>(r) * cols + c];
    out[c] += s;
  }
}

}  // namespace

Status BiasAddForward(float* y, const float* b, int rows, int cols, cudaStream_t stream) {
  if (rows < 0 || cols < 0) return InvalidArgumentError("BiasAddForward: negative size");
  if (rows == 0 || cols == 0) return Status::Ok();
  bias_add_forward_kernel<<<GridFor(static_cast<long long>(rows) * cols, kBlock), kBlock, 0, stream>>>(y, b, rows, cols);
  RETURN_IF_LAUNCH_ERROR("bias_add_forward_kernel");
  return Status::Ok();
}

Status ColumnSumAccumulate(const float* m, int rows, int cols, float* out, cudaStream_t stream) {
  if (rows < 0 || cols < 0) return InvalidArgumentError("ColumnSumAccumulate: negative size");
  if (rows == 0 || cols == 0) return Status::Ok();
  column_sum_backward_kernel<<<GridFor(cols, kBlock), kBlock, 0, stream>>>(m, rows, cols, out);
  RETURN_IF_LAUNCH_ERROR("column_sum_backward_kernel");
  return Status::Ok();
}

Status LinearForward(const DeviceContext& ctx, const float* x, int batch, int in, const float* w, const float* b,
                     int out, float* y) {
  RETURN_IF_ERROR(Gemm(ctx.cublas(), false, false, batch, out, in, 1.f, x, in, w, out, 0.f, y, out));
  if (b != nullptr) RETURN_IF_ERROR(BiasAddForward(y, b, batch, out, ctx.compute()));
  return Status::Ok();
}

Status LinearBackward(const DeviceContext& ctx, const float* x, const float* dy, int batch, int in, const float* w,
                      int out, float* dw, float* db, float* dx) {
  // dW (in, out) += xᵀ (in, B) · dy (B, out)
  RETURN_IF_ERROR(Gemm(ctx.cublas(), true, false, in, out, batch, 1.f, x, in, dy, out, 1.f, dw, out));
  if (db != nullptr) RETURN_IF_ERROR(ColumnSumAccumulate(dy, batch, out, db, ctx.compute()));
  // dx (B, in) += dy (B, out) · Wᵀ (out, in)
  if (dx != nullptr) RETURN_IF_ERROR(Gemm(ctx.cublas(), false, true, batch, in, out, 1.f, dy, out, w, out, 1.f, dx, in));
  return Status::Ok();
}

}  // namespace freshet::learner::cuda
