// CUDA error handling for the learner's CUDA backend: every runtime call and every
// kernel launch is checked; failures become a Status naming the call and location.
#pragma once

#include <cuda_runtime.h>

#include <string>

#include "common/status.h"

namespace freshet::learner::cuda {

inline Status CudaStatus(cudaError_t err, const char* what, const char* file, int line) {
  if (err == cudaSuccess) return Status::Ok();
  return InternalError(std::string(what) + " failed at " + file + ":" + std::to_string(line) + ": " +
                       cudaGetErrorName(err) + " (" + cudaGetErrorString(err) + ")");
}

}  // namespace freshet::learner::cuda

// RETURN_IF_CUDA_ERROR(cudaMalloc(&p, n));
#define RETURN_IF_CUDA_ERROR(call) \
  RETURN_IF_ERROR(::freshet::learner::cuda::CudaStatus((call), #call, __FILE__, __LINE__))
// After each kernel launch.
#define RETURN_IF_LAUNCH_ERROR(kernel_name) \
  RETURN_IF_ERROR(::freshet::learner::cuda::CudaStatus(cudaGetLastError(), "launch " kernel_name, __FILE__, __LINE__))
