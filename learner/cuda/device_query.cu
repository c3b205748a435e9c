// QueryGpu and the saxpy smoke kernel for builds with the CUDA backend. No GPU (error
// 35, insufficient driver, count 0) is an ordinary answer, not a failure.
#include <cuda_runtime.h>

#include "learner/cuda/cuda_check.cuh"
#include "learner/gpu.h"

namespace freshet::learner {

GpuInfo QueryGpu() {
  GpuInfo info;
  info.compiled = true;
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess || count == 0) {
    info.reason = err != cudaSuccess ? std::string("cudaGetDeviceCount: ") + cudaGetErrorString(err)
                                     : "no CUDA device present";
    cudaGetLastError();  // clear the sticky error so later calls start clean
    return info;
  }
  cudaDeviceProp prop;
  err = cudaGetDeviceProperties(&prop, 0);
  if (err != cudaSuccess) {
    info.reason = std::string("cudaGetDeviceProperties: ") + cudaGetErrorString(err);
    return info;
  }
  info.available = true;
  info.device_count = count;
  info.name = prop.name;
  info.compute_major = prop.major;
  info.compute_minor = prop.minor;
  info.total_memory_bytes = prop.totalGlobalMem;
  return info;
}

namespace {
__global__ void saxpy_forward_kernel(int n, float a, const float* x, float* y) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i] = a * x[i] + y[i];
}
}  // namespace

Status GpuSaxpy(float a, const std::vector<float>& x, std::vector<float>* y) {
  if (x.size() != y->size()) return InvalidArgumentError("GpuSaxpy: x and y differ in length");
  GpuInfo info = QueryGpu();
  if (!info.available) return FailedPreconditionError("no GPU: " + info.reason);
  const int n = static_cast<int>(x.size());
  const size_t bytes = x.size() * sizeof(float);
  float* dx = nullptr;
  float* dy = nullptr;
  RETURN_IF_CUDA_ERROR(cudaMalloc(&dx, bytes));
  Status s = cuda::CudaStatus(cudaMalloc(&dy, bytes), "cudaMalloc", __FILE__, __LINE__);
  if (s.ok()) s = cuda::CudaStatus(cudaMemcpy(dx, x.data(), bytes, cudaMemcpyHostToDevice), "cudaMemcpy", __FILE__, __LINE__);
  if (s.ok()) s = cuda::CudaStatus(cudaMemcpy(dy, y->data(), bytes, cudaMemcpyHostToDevice), "cudaMemcpy", __FILE__, __LINE__);
  if (s.ok()) {
    saxpy_forward_kernel<<<(n + 255) / 256, 256>>>(n, a, dx, dy);
    s = cuda::CudaStatus(cudaGetLastError(), "launch saxpy_forward_kernel", __FILE__, __LINE__);
  }
  if (s.ok()) s = cuda::CudaStatus(cudaMemcpy(y->data(), dy, bytes, cudaMemcpyDeviceToHost), "cudaMemcpy", __FILE__, __LINE__);
  cudaFree(dx);
  cudaFree(dy);
  return s;
}

}  // namespace freshet::learner
