// CUDA error handling for the learner's CUDA backend: every runtime call, every
// cuBLAS call and every kernel launch is checked; failures become a Status naming the
// call and location. Host-only (no device code), so plain C++ files may include it.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <string>

#include "common/status.h"

namespace freshet::learner::cuda {

inline Status CudaStatus(cudaError_t err, const char* what, const char* file, int line) {
  if (err == cudaSuccess) return Status::Ok();
  return InternalError(std::string(what) + " failed at " + file + ":" + std::to_string(line) + ": " +
                       cudaGetErrorName(err) + " (" + cudaGetErrorString(err) + ")");
}

inline Status CublasStatus(cublasStatus_t err, const char* what, const char* file, int line) {
  if (err == CUBLAS_STATUS_SUCCESS) return Status::Ok();
  return InternalError(std::string(what) + " failed at " + file + ":" + std::to_string(line) + ": " +
                       cublasGetStatusName(err) + " (" + cublasGetStatusString(err) + ")");
}

// Grid size for a grid-stride loop over n items: enough blocks to fill the device,
// never zero, never more than the launch limit we use everywhere.
inline int GridFor(long long n, int block) {
  long long blocks = (n + block - 1) / block;
  if (blocks < 1) blocks = 1;
  if (blocks > 65535) blocks = 65535;
  return static_cast<int>(blocks);
}

}  // namespace freshet::learner::cuda

// RETURN_IF_CUDA_ERROR(cudaMalloc(&p, n));
#define RETURN_IF_CUDA_ERROR(call) \
  RETURN_IF_ERROR(::freshet::learner::cuda::CudaStatus((call), #call, __FILE__, __LINE__))
// RETURN_IF_CUBLAS_ERROR(cublasSgemm(...));
#define RETURN_IF_CUBLAS_ERROR(call) \
  RETURN_IF_ERROR(::freshet::learner::cuda::CublasStatus((call), #call, __FILE__, __LINE__))
// After each kernel launch.
#define RETURN_IF_LAUNCH_ERROR(kernel_name) \
  RETURN_IF_ERROR(::freshet::learner::cuda::CudaStatus(cudaGetLastError(), "launch " kernel_name, __FILE__, __LINE__))
