// QueryGpu for builds without the CUDA backend (FRESHET_CUDA=OFF or no nvcc).
#include "learner/gpu.h"

namespace freshet::learner {

GpuInfo QueryGpu() {
  GpuInfo info;
  info.reason = "built without the CUDA backend (FRESHET_CUDA=OFF or nvcc not found)";
  return info;
}

Status GpuSaxpy(float, const std::vector<float>&, std::vector<float>*) {
  return FailedPreconditionError("built without the CUDA backend; rebuild with FRESHET_CUDA=AUTO and nvcc on PATH");
}

}  // namespace freshet::learner
