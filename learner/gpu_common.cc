// DescribeGpu, shared by the CUDA and no-CUDA builds; see gpu.h.
#include "learner/gpu.h"

#include <sstream>
#include <string>

namespace freshet::learner {

std::string DescribeGpu(const GpuInfo& info) {
  std::ostringstream os;
  if (!info.available) {
    os << "gpu=none cuda_compiled=" << (info.compiled ? "true" : "false") << " reason=\"" << info.reason << "\"";
    return os.str();
  }
  os << "gpu=\"" << info.name << "\" devices=" << info.device_count << " sm=" << info.compute_major
     << info.compute_minor << " memory_gib=" << info.total_memory_bytes / (1024.0 * 1024 * 1024);
  return os.str();
}

StatusOr<BackendChoice> ResolveBackend(Backend requested, const GpuInfo& gpu) {
  const std::string no_device = "no CUDA device: " + (gpu.reason.empty() ? std::string("none found") : gpu.reason);
  switch (requested) {
    case BACKEND_CPU:
      return BackendChoice{BACKEND_CPU, "learner.backend is BACKEND_CPU"};
    case BACKEND_CUDA:
      if (!gpu.available)
        return InvalidArgumentError("learner.backend: BACKEND_CUDA requested but " + no_device +
                                    "; use BACKEND_AUTO or BACKEND_CPU on this machine");
      if (!kCudaTrainerAvailable)
        return UnimplementedError("learner.backend: BACKEND_CUDA: the CUDA trainer is not implemented yet "
                                  "(only the CUDA ops are); use BACKEND_AUTO or BACKEND_CPU");
      return BackendChoice{BACKEND_CUDA, "learner.backend is BACKEND_CUDA"};
    case BACKEND_AUTO:
    default:
      if (!gpu.available) return BackendChoice{BACKEND_CPU, no_device};
      if (!kCudaTrainerAvailable)
        return BackendChoice{BACKEND_CPU, "a CUDA device is present but the CUDA trainer is not implemented yet"};
      return BackendChoice{BACKEND_CUDA, "CUDA device " + gpu.name};
  }
}

}  // namespace freshet::learner
